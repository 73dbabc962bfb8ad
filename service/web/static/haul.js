// Live numbers for the jobs list and a job's page: the SSE extension opens one
// EventSource per page (sse-connect); state changes re-render that job's row or panel,
// and progress ticks only move the bar and figures, without a request.
(function () {
  "use strict";
  function size(n) {
    if (n === null || n === undefined) return "";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function eta(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
  }
  function show(data) {
    var box = document.getElementById("progress-" + data.job_id);
    if (!box) return;
    var bar = box.querySelector("progress");
    if (bar && data.progress !== null && data.progress !== undefined) {
      bar.value = data.progress;
      bar.textContent = Math.round(data.progress * 100) + "%";
    }
    var done = size(data.bytes_done), total = size(data.bytes_total);
    box.querySelector("[data-bytes]").textContent = total ? done + " of " + total : done;
    box.querySelector("[data-speed]").textContent = data.speed ? size(data.speed) + "/s" : "";
    box.querySelector("[data-eta]").textContent = data.eta !== null && data.eta !== undefined ? "ETA " + eta(data.eta) : "";
    var phase = document.getElementById("phase-" + data.job_id);
    if (phase && data.phase) phase.textContent = data.phase;
  }
  // A state change re-renders the job's panel (its page) or row (a list), one request
  // per job at a time: a change that arrives meanwhile asks for one more afterwards,
  // so the last one always wins and nothing is swapped into a replaced element.
  var busy = {}, again = {};
  function refresh(id) {
    if (busy[id]) { again[id] = true; return; }
    var el = document.getElementById("panel-" + id) || document.getElementById("job-" + id);
    if (!el) return;
    var which = el.id, url = "/jobs/" + id + (which.indexOf("panel-") === 0 ? "/panel" : "/row");
    busy[id] = true;
    fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (response.redirected) { window.location.href = response.url; return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      var current = document.getElementById(which);
      if (!html || !current) return;
      current.outerHTML = html;
      var fresh = document.getElementById(which);
      if (fresh) htmx.process(fresh);
    }).finally(function () {
      busy[id] = false;
      if (again[id]) { again[id] = false; refresh(id); }
    });
  }
  document.body.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail.source;
    if (source.hauled) return;
    source.hauled = true;
    source.addEventListener("progress", function (message) { show(JSON.parse(message.data)); });
    source.addEventListener("state", function (message) { refresh(JSON.parse(message.data).job_id); });
  });
  // Forms send their token with htmx requests too.
  document.body.addEventListener("htmx:configRequest", function (event) {
    var token = document.querySelector("meta[name=csrf-token]");
    if (token) event.detail.headers["X-CSRF-Token"] = token.content;
  });
})();
