// Keeps the lesson rows of an admin page current while their videos are processed.
(function () {
  "use strict";
  var busy = ["uploading", "queued", "processing"];
  function refresh(row) {
    fetch("/api/v1/lessons/" + row.dataset.lessonId, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (lesson) {
        if (!lesson) { return; }
        row.querySelector("[data-field=progress]").value = lesson.progress;
        row.querySelector("[data-field=percent]").textContent = Math.round(lesson.progress) + "%";
        if (lesson.status !== row.dataset.status) { window.location.reload(); }
      });
  }
  function tick() {
    var rows = document.querySelectorAll(".lesson[data-lesson-id]");
    var pending = Array.prototype.filter.call(rows, function (row) {
      return busy.indexOf(row.dataset.status) !== -1;
    });
    pending.forEach(refresh);
    if (pending.length) { window.setTimeout(tick, 2000); }
  }
  tick();
})();
