/* coursegen lesson player: every [data-seek] element seeks the video to its time, a SCO's
   video plays its lesson's span and reports when that span has been watched, and each
   form.quiz is graded in the page (feedback per question and a score). No network. */
(function () {
  "use strict";
  var video = document.getElementById("player");

  function seek(t) {
    if (!video || !isFinite(t)) return;
    video.currentTime = t;
    var playing = video.play();
    if (playing && playing.catch) playing.catch(function () {});
  }

  document.addEventListener("click", function (ev) {
    var el = ev.target && ev.target.closest ? ev.target.closest("[data-seek]") : null;
    if (!el) return;
    ev.preventDefault();
    seek(parseFloat(el.getAttribute("data-seek")));
  });

  if (video && video.hasAttribute("data-end")) {
    var start = parseFloat(video.getAttribute("data-start") || "0");
    var end = parseFloat(video.getAttribute("data-end"));
    var watched = false;
    var done = function () {
      if (watched) return;
      watched = true;
      video.pause();  // the lesson's span ends here
      document.documentElement.setAttribute("data-watched", "true");
      document.dispatchEvent(new CustomEvent("coursegen:watched"));
    };
    video.addEventListener("loadedmetadata", function () {
      if (video.currentTime < start) video.currentTime = start;
    });
    video.addEventListener("timeupdate", function () {
      if (video.currentTime >= end - 0.25) done();
    });
    video.addEventListener("ended", done);
  }

  function norm(text) {
    return String(text).normalize("NFC").trim().replace(/\s+/g, " ").toLowerCase();
  }

  function grade(form) {
    var key = JSON.parse(document.getElementById(form.getAttribute("data-key")).textContent);
    var results = [];
    var score = 0;
    key.forEach(function (q, i) {
      var box = form.querySelector('[data-question="' + i + '"]');
      var response = "";
      if (q.kind === "choice") {
        var picked = box.querySelector("input:checked");
        response = picked ? picked.value : "";
      } else {
        response = box.querySelector("input[type=text]").value;
      }
      var correct = q.kind === "choice" ? response === q.correct : norm(response) === norm(q.answer);
      if (correct) score += 1;
      var feedback = box.querySelector(".feedback");
      feedback.textContent = (correct ? "Correct. " : "Not quite: the answer is \u201c" + q.answer + "\u201d. ") + q.explanation;
      feedback.className = "feedback " + (correct ? "right" : "wrong");
      feedback.hidden = false;
      box.setAttribute("data-result", correct ? "correct" : "wrong");
      results.push({
        id: q.id, kind: q.kind, prompt: q.prompt, response: response,
        pattern: q.kind === "choice" ? q.correct : q.answer, correct: correct
      });
    });
    form.querySelectorAll("input, button").forEach(function (el) { el.disabled = true; });
    form.setAttribute("data-score", String(score));
    form.querySelector(".score").textContent = "Score: " + score + " / " + key.length;
    var total = document.getElementById("total-score");
    if (total) {
      var got = 0, max = 0, done = 0, all = document.querySelectorAll("form.quiz");
      all.forEach(function (f) {
        max += JSON.parse(document.getElementById(f.getAttribute("data-key")).textContent).length;
        if (f.hasAttribute("data-score")) { got += parseInt(f.getAttribute("data-score"), 10); done += 1; }
      });
      total.textContent = "Course score: " + got + " / " + max + " (" + done + " of " + all.length + " quizzes answered)";
    }
    document.dispatchEvent(new CustomEvent("coursegen:quiz", {
      detail: { form: form.id, results: results, score: score, max: key.length }
    }));
  }

  document.querySelectorAll("form.quiz").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      grade(form);
    });
  });
})();
