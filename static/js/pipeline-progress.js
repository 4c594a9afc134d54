// Keeps the lesson rows of an admin page current while their videos arrive and are processed:
// progress moves in place; when a lesson changes state the page reloads (the browser keeps the
// scroll position). Lessons still waiting for their upload are asked about less often, and
// nothing is asked while the tab is hidden.
(function () {
  "use strict";
  var BUSY_MS = 2000;
  var WAITING_MS = 10000;
  var busy = ["uploading", "queued", "processing"];
  var waiting = ["awaiting_upload"];
  var timer = null;
  var asking = false;

  function rows(states) {
    var all = document.querySelectorAll(".lesson[data-lesson-id]");
    return Array.prototype.filter.call(all, function (row) {
      return states.indexOf(row.dataset.status) !== -1;
    });
  }

  function refresh(row) {
    return fetch("/api/v1/lessons/" + row.dataset.lessonId, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (lesson) {
        if (!lesson) { return; }
        row.querySelector("[data-field=progress]").value = lesson.progress;
        row.querySelector("[data-field=percent]").textContent = Math.round(lesson.progress) + "%";
        if (lesson.status !== row.dataset.status) { window.location.reload(); }
      })
      .catch(function () { /* a weak network: the next turn asks again */ });
  }

  function tick() {
    timer = null;
    if (document.hidden || asking) { return; }
    var active = rows(busy);
    var idle = rows(waiting);
    asking = true;
    Promise.all(active.concat(idle).map(refresh)).then(function () {
      asking = false;
      if ((active.length || idle.length) && !document.hidden) {
        timer = window.setTimeout(tick, active.length ? BUSY_MS : WAITING_MS);
      }
    });
  }

  var live = document.getElementById("pipeline-live");
  if (live && (rows(busy).length || rows(waiting).length)) { live.hidden = false; }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null) { tick(); }
  });
  tick();
})();
