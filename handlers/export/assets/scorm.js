/* coursegen SCO runtime: finds the LMS API the standard way (window.parent chain, then the
   opener's), initialises on load, sets completion when the lesson's video has been watched
   or its quiz submitted, reports the score against the mastery score, records every answer
   as an interaction, and commits and terminates on unload. SCORM 1.2 ("API") or SCORM 2004
   ("API_1484_11"), chosen by <html data-scorm>. Written for coursegen; no network. */
(function () {
  "use strict";
  var root = document.documentElement;
  var v2004 = root.getAttribute("data-scorm") === "2004";
  var NAME = v2004 ? "API_1484_11" : "API";
  var M = v2004
    ? { init: "Initialize", get: "GetValue", set: "SetValue", commit: "Commit", finish: "Terminate", err: "GetLastError" }
    : { init: "LMSInitialize", get: "LMSGetValue", set: "LMSSetValue", commit: "LMSCommit", finish: "LMSFinish", err: "LMSGetLastError" };
  var mastery = parseFloat(root.getAttribute("data-mastery") || "80");
  var state = { api: null, version: v2004 ? "2004" : "1.2", errors: [], initialised: false, finished: false, quizDone: false };
  window.coursegenScorm = state;

  function search(win) {
    for (var hops = 0; win && hops < 500; hops++) {
      try {
        if (win[NAME]) return win[NAME];
      } catch (e) { return null; }  // another origin: stop climbing
      if (!win.parent || win.parent === win) return null;
      win = win.parent;
    }
    return null;
  }

  function locate() {
    var api = search(window);
    if (!api && window.opener) api = search(window.opener);
    if (!api && window.top && window.top.opener) api = search(window.top.opener);
    return api;
  }

  function call(method, a, b) {
    if (!state.api) return "";
    var result = b === undefined ? state.api[method](a) : state.api[method](a, b);
    var code = String(state.api[M.err]());
    if (code !== "0") state.errors.push({ call: method, element: a, value: b, code: code });
    return String(result);
  }
  function get(k) { return call(M.get, k); }
  function set(k, v) { return call(M.set, k, String(v)); }

  function pad(n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; }
  function timespan(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return v2004 ? "PT" + h + "H" + m + "M" + sec + "S" : pad(h, 4) + ":" + pad(m, 2) + ":" + pad(sec, 2);
  }
  function clockTime(d) { return pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2); }
  function stamp(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1, 2) + "-" + pad(d.getDate(), 2) + "T" + clockTime(d);
  }
  function cut(text, n) { return Array.from(String(text)).slice(0, n).join(""); }
  var started = new Date();

  function status(text) {
    var el = document.getElementById("lms-status");
    if (el) el.textContent = text;
  }

  function initialise() {
    state.api = locate();
    if (!state.api) { status("No LMS found: this lesson works, but nothing is recorded."); return; }
    state.initialised = call(M.init, "") === "true";
    status(state.initialised ? "Connected to the LMS (SCORM " + state.version + ")." : "The LMS refused to start this lesson.");
    if (!state.initialised) return;
    if (v2004) {
      var c = get("cmi.completion_status");
      if (c === "unknown" || c === "not attempted" || c === "") set("cmi.completion_status", "incomplete");
      var passing = parseFloat(get("cmi.scaled_passing_score"));
      if (isFinite(passing)) mastery = passing * 100;
    } else {
      if (get("cmi.core.lesson_status") === "not attempted") set("cmi.core.lesson_status", "incomplete");
      var ms = parseFloat(get("cmi.student_data.mastery_score"));
      if (isFinite(ms)) mastery = ms;
    }
  }

  function complete() {
    if (!state.initialised) return;
    if (v2004) {
      set("cmi.completion_status", "completed");
    } else {
      var now = get("cmi.core.lesson_status");
      if (now !== "passed" && now !== "failed") set("cmi.core.lesson_status", "completed");
    }
    call(M.commit, "");
  }

  function record(detail) {
    if (!state.initialised || state.quizDone) return;
    state.quizDone = true;
    var pct = detail.max ? (100 * detail.score) / detail.max : 0;
    var passed = pct >= mastery;
    var when = new Date();
    detail.results.forEach(function (r) {
      var n = parseInt(get("cmi.interactions._count"), 10) || 0;
      var p = "cmi.interactions." + n + ".";
      var type = r.kind === "choice" ? "choice" : "fill-in";
      set(p + "id", r.id);
      set(p + "type", type);
      if (v2004) {
        set(p + "timestamp", stamp(when));
        set(p + "weighting", "1");
        set(p + "description", cut(r.prompt, 250));
        set(p + "correct_responses.0.pattern", cut(r.pattern, 250));
        set(p + "learner_response", cut(r.response, 250));
        set(p + "result", r.correct ? "correct" : "incorrect");
      } else {
        set(p + "time", clockTime(when));
        set(p + "weighting", "1");
        set(p + "correct_responses.0.pattern", cut(r.pattern, 255));
        set(p + "student_response", cut(r.response, 255));
        set(p + "result", r.correct ? "correct" : "wrong");
      }
    });
    if (v2004) {
      set("cmi.score.raw", detail.score);
      set("cmi.score.min", 0);
      set("cmi.score.max", detail.max);
      set("cmi.score.scaled", detail.max ? (detail.score / detail.max).toFixed(4) : "0");
      set("cmi.success_status", passed ? "passed" : "failed");
      set("cmi.completion_status", "completed");
    } else {
      set("cmi.core.score.raw", detail.score);
      set("cmi.core.score.min", 0);
      set("cmi.core.score.max", detail.max);
      set("cmi.core.lesson_status", passed ? "passed" : "failed");
    }
    call(M.commit, "");
  }

  function finish() {
    if (!state.initialised || state.finished) return;
    state.finished = true;
    if (v2004) {
      set("cmi.session_time", timespan(new Date() - started));
      set("cmi.exit", "normal");
    } else {
      set("cmi.core.session_time", timespan(new Date() - started));
      set("cmi.core.exit", "");
    }
    call(M.commit, "");
    call(M.finish, "");
  }

  document.addEventListener("coursegen:watched", complete);
  document.addEventListener("coursegen:quiz", function (ev) { record(ev.detail); });
  window.addEventListener("pagehide", finish);
  window.addEventListener("beforeunload", finish);
  window.addEventListener("unload", finish);
  initialise();
})();
