// Enrolling one's face: a photo from the camera (or a file) sent to /api/v1/me/face. The
// page's translated messages come in the `data-messages` attribute of #enrol.
(function () {
  "use strict";
  var box = document.getElementById("enrol");
  if (!box) { return; }
  var messages = JSON.parse(box.dataset.messages);
  var video = document.getElementById("camera");
  var result = document.getElementById("result");
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var stream = null;
  VeriSkillCamera.open(video).then(function (s) { stream = s; }).catch(function () {
    var take = document.getElementById("take");
    take.disabled = true;
    take.setAttribute("aria-disabled", "true");
  });
  function send(blob) {
    var form = new FormData();
    form.append("image", blob, "face.jpg");
    result.textContent = "…";
    fetch("/api/v1/me/face", { method: "PUT", body: form, credentials: "same-origin",
                               headers: { "X-CSRFToken": csrf } })
      .then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); })
      .then(function (reply) {
        if (reply[0] === 200) {
          // A new photo after studying waits for staff: say so, never an empty green box.
          var active = reply[1].status === "active";
          result.className = active ? "flash flash-success" : "flash";
          result.textContent = active ? messages.passed : messages.pending_approval;
          document.getElementById("continue").hidden = false;
          VeriSkillCamera.close(stream);
        } else {
          var error = reply[1].error || {};
          result.className = "error-summary";
          result.textContent = messages[error.code] || error.message || "";
        }
      });
  }
  document.getElementById("take").addEventListener("click", function () {
    VeriSkillCamera.frame(video).then(send);
  });
  document.getElementById("upload").addEventListener("change", function (event) {
    if (event.target.files.length) { send(event.target.files[0]); }
  });
})();
