// Attaches an HLS stream to a <video>: hls.js where Media Source Extensions exist, the
// browser's own HLS elsewhere (iOS Safari). Starts on the lowest rendition, so a weak
// network gets a picture fast; hls.js moves up as bandwidth allows.
(function (global) {
  "use strict";
  function attach(video, url, onError) {
    if (global.Hls && global.Hls.isSupported()) {
      var hls = new global.Hls({ startLevel: 0, capLevelToPlayerSize: true });
      hls.on(global.Hls.Events.ERROR, function (_event, data) {
        if (data.fatal && onError) { onError(data.type + ": " + data.details); }
      });
      hls.loadSource(url);
      hls.attachMedia(video);
      return hls;
    }
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
      return null;
    }
    if (onError) { onError("hls_unsupported"); }
    return null;
  }
  global.VeriSkillHls = { attach: attach };
})(window);
