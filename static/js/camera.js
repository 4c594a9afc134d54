// The front camera: preview it in a <video>, take a burst of JPEG frames from it.
(function (global) {
  "use strict";
  function open(video) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject(new Error("no_camera"));
    }
    return navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } }
    }).then(function (stream) {
      video.srcObject = stream;
      video.muted = true;
      video.setAttribute("playsinline", "");
      return video.play().then(function () { return stream; });
    });
  }
  function frame(video) {
    var canvas = document.createElement("canvas");
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.85); });
  }
  // `count` frames spread over `spanMs`: enough to see a blink or a turn of the head.
  function burst(video, count, spanMs) {
    var frames = [];
    return new Promise(function (resolve) {
      (function next() {
        frame(video).then(function (blob) {
          frames.push(blob);
          if (frames.length >= count) { resolve(frames); return; }
          window.setTimeout(next, spanMs / Math.max(1, count - 1));
        });
      })();
    });
  }
  function close(stream) {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
  }
  global.VeriSkillCamera = { open: open, frame: frame, burst: burst, close: close };
})(window);
