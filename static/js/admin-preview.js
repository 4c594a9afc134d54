// The admin's preview of a processed lesson: its HLS playlist (in `data-src`) in a <video>.
(function () {
  "use strict";
  var video = document.getElementById("preview");
  if (!video) { return; }
  VeriSkillHls.attach(video, video.dataset.src, function (message) {
    var box = document.getElementById("preview-error");
    box.textContent = message;
    box.hidden = false;
  });
})();
