/* A minimal LMS for the tests: reads the package's imsmanifest.xml, installs a scorm-again
   runtime as window.API (SCORM 1.2) or window.API_1484_11 (SCORM 2004) with the item's
   mastery score, opens one SCO in the iframe and records every API call it makes. */
(function () {
  "use strict";
  var h = { items: [], calls: [], version: null, api: null, terminated: false, initialised: false };
  window.harness = h;

  h.load = function (manifestUrl) {
    return fetch(manifestUrl).then(function (r) { return r.text(); }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, "application/xml");
      var version = doc.querySelector("schemaversion").textContent.indexOf("2004") === 0 ? "2004" : "1.2";
      var resources = {};
      doc.querySelectorAll("resource").forEach(function (r) { resources[r.getAttribute("identifier")] = r.getAttribute("href"); });
      h.version = version;
      h.items = Array.prototype.map.call(doc.querySelectorAll("item[identifierref]"), function (item) {
        var mastery = item.getElementsByTagName("adlcp:masteryscore")[0];
        var measure = item.getElementsByTagName("imsss:minNormalizedMeasure")[0];
        return {
          id: item.getAttribute("identifier"),
          title: item.querySelector("title").textContent,
          href: new URL(resources[item.getAttribute("identifierref")], new URL(manifestUrl, location.href)).href,
          mastery: mastery ? mastery.textContent : null,
          passing: measure ? measure.textContent : null
        };
      });
      return h.items;
    });
  };

  function wrap(real, names) {
    var api = {};
    names.forEach(function (name) {
      api[name] = function () {
        var args = Array.prototype.slice.call(arguments);
        var result = real[name].apply(real, args);
        var code = String(real.lastErrorCode);
        h.calls.push({ method: name, args: args, result: String(result), error: code });
        if (name === "LMSInitialize" || name === "Initialize") h.initialised = String(result) === "true";
        if (name === "LMSFinish" || name === "Terminate") h.terminated = String(result) === "true";
        document.getElementById("log").textContent += name + "(" + args.join(", ") + ") = " + result + (code !== "0" ? " [error " + code + "]" : "") + "\n";
        return result;
      };
    });
    return api;
  }

  h.open = function (index) {
    var item = h.items[index];
    var settings = { autocommit: false, logLevel: 5 };
    h.calls = []; h.terminated = false; h.initialised = false;
    document.getElementById("log").textContent = "";
    document.getElementById("what").textContent = "SCORM " + h.version + " \u00b7 " + item.title;
    if (h.version === "2004") {
      h.real = new window.Scorm2004API(settings);
      if (item.passing) h.real.loadFromJSON({ scaled_passing_score: item.passing });
      window.API_1484_11 = wrap(h.real, ["Initialize", "Terminate", "GetValue", "SetValue", "Commit", "GetLastError", "GetErrorString", "GetDiagnostic"]);
    } else {
      h.real = new window.Scorm12API(settings);
      if (item.mastery) h.real.loadFromJSON({ student_data: { mastery_score: item.mastery } });
      window.API = wrap(h.real, ["LMSInitialize", "LMSFinish", "LMSGetValue", "LMSSetValue", "LMSCommit", "LMSGetLastError", "LMSGetErrorString", "LMSGetDiagnostic"]);
    }
    document.getElementById("sco").src = item.href;
  };

  h.close = function () { document.getElementById("sco").src = "about:blank"; };

  /* What the runtime holds now (its own rendering of the CMI data model). */
  h.cmi = function () {
    var rendered = h.real.renderCommitCMI(true);
    return JSON.parse(JSON.stringify(rendered.cmi || rendered));
  };
})();
