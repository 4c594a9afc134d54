// The lesson player. It reports what it is doing; the server decides what counts.
//
// A study session opens when the page loads. While the video plays, a heartbeat goes to the
// server every HEARTBEAT_S seconds (and at play, pause, end and when the page is hidden) with
// the playback position. The page never claims time watched: the server credits from its
// own clock and records. Skipping past the furthest point watched, playing faster than 1x,
// or watching with the page hidden earns nothing, so the player steers the trainee away from
// those instead of letting them lose time unknowingly.
(function () {
  "use strict";
  var box = document.getElementById("player");
  if (!box) { return; }
  var video = document.getElementById("video");
  var note = document.getElementById("note");
  var creditedEl = document.getElementById("credited");
  var pendingEl = document.getElementById("pending");
  var coverageEl = document.getElementById("coverage");
  var completeEl = document.getElementById("complete");
  var qualitySelect = document.getElementById("quality");
  var captionSelect = document.getElementById("captions");
  var reasons = JSON.parse(box.dataset.reasons || "{}");
  // The server's limits, from the page: the player never keeps copies of its own.
  var limits = JSON.parse(box.dataset.limits || "{}");
  var heartbeatMs = Number(box.dataset.heartbeatS) * 1000;
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var session = null;
  var seq = 0;  // heartbeats of this session, so the server counts a repeated one once
  var furthest = 0;
  var timer = null;

  function say(text) { if (text) { note.textContent = text; } }

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  function api(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        return { status: response.status, data: data, retryAfter: response.headers.get("Retry-After") };
      });
    });
  }

  // Face checks: the server asks (at the start, at moments it alone chooses, and to confirm
  // the last stretch of a lesson); the video stays paused until the check is decided. The
  // dialog says what is happening: the prompt and a count-down before the camera takes its
  // photos, judging (a spinner and the seconds waited), a retry with the tries left, or the
  // final result. It is a native modal <dialog>: the page behind is inert while it is open.
  var dialog = document.getElementById("check");
  var panel = dialog.querySelector(".check-panel");
  var checkCamera = document.getElementById("check-camera");
  var checkStatus = document.getElementById("check-status");
  var checkTries = document.getElementById("check-tries");
  var spinner = document.getElementById("check-spinner");
  var waited = document.getElementById("check-waited");
  var shootButton = document.getElementById("check-shoot");
  var continueButton = document.getElementById("check-continue");
  var intro = document.getElementById("check-intro");
  var introText = intro.textContent;
  var faceMessages = JSON.parse(dialog.dataset.messages || "{}");
  var challenges = JSON.parse(dialog.dataset.challenges || "{}");
  var pendingCheck = null;
  var cameraStream = null;
  var countdown = null;
  var lead = null;
  var judgingTimer = null;
  var returnFocus = null;
  // What the camera button does now: "shoot" (take the photos before the count-down ends),
  // "camera" (try opening the camera again), or null (disabled: opening, capturing, judging).
  var shootAction = null;

  function fill(text, n) { return (text || "").replace("{n}", String(n)); }
  function status(text) { checkStatus.textContent = text || ""; }

  function showTries(check) {
    var left = (check.max_attempts || 1) - (check.attempts || 0);
    checkTries.textContent = check.attempts ? fill(faceMessages.tries_left, left) : "";
  }

  // The camera button: enabled only when pressing it does something. A disabled button is
  // also aria-disabled and loses focus to the panel first, so focus never leaves the dialog.
  function setShoot(action) {
    shootAction = action;
    var enabled = action !== null;
    if (!enabled && document.activeElement === shootButton) { panel.focus(); }
    shootButton.disabled = !enabled;
    shootButton.setAttribute("aria-disabled", enabled ? "false" : "true");
    shootButton.textContent = action === "camera"
      ? dialog.dataset.retryCameraText : dialog.dataset.shootText;
  }

  // While the server judges (4-6 s, longer in a worker queue): a spinner, the seconds waited,
  // and the panel marked busy. The status line (aria-live) says what is happening.
  function judging(on) {
    window.clearInterval(judgingTimer);
    spinner.hidden = !on;
    waited.textContent = "";
    dialog.classList.toggle("is-judging", on);
    if (on) {
      panel.setAttribute("aria-busy", "true");
      var started = Date.now();
      judgingTimer = window.setInterval(function () {
        waited.textContent = fill(dialog.dataset.waitedText, Math.round((Date.now() - started) / 1000));
      }, 1000);
    } else {
      panel.removeAttribute("aria-busy");
    }
  }

  function openDialog() {
    if (dialog.open) { return; }
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else {
      dialog.setAttribute("open", "");
    }
    panel.focus();
  }

  function openCamera(check) {
    setShoot(null);
    var ready = cameraStream ? Promise.resolve(cameraStream) : VeriSkillCamera.open(checkCamera);
    ready.then(function (stream) {
      cameraStream = stream;
      prepare(check);
    }).catch(function () {
      status(faceMessages.no_camera);
      setShoot("camera");
    });
  }

  function showCheck(check) {
    if (!check || (pendingCheck && pendingCheck.id === check.id)) { return; }
    pendingCheck = check;
    video.pause();
    if (!dialog.open) {
      returnFocus = document.activeElement;
    }
    continueButton.hidden = true;
    judging(false);
    openDialog();
    status("");
    showTries(check);
    intro.textContent = check.kind === "closing" ? faceMessages.closing : introText;
    document.getElementById("check-challenge").textContent = challenges[check.challenge] || "";
    var deadline = Date.parse(check.expires_at);
    window.clearInterval(countdown);
    countdown = window.setInterval(function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      document.getElementById("check-countdown").textContent = clock(left);
    }, 500);
    openCamera(check);
  }

  // Count down before the burst: a person needs the prompt on screen for a moment before
  // they can blink or turn their head on cue. The camera button skips the rest of the wait.
  function prepare(check) {
    var seconds = check.challenge ? limits.prompt_lead_s : limits.prompt_lead_still_s;
    if (check.kind === "closing") { seconds += limits.prompt_lead_closing_extra_s; }
    function tick() {
      if (pendingCheck !== check) { window.clearInterval(lead); return; }
      if (seconds <= 0) { window.clearInterval(lead); answer(); return; }
      status(fill(faceMessages.get_ready, seconds));
      seconds -= 1;
    }
    window.clearInterval(lead);
    judging(false);
    setShoot("shoot");
    tick();
    lead = window.setInterval(tick, 1000);
  }

  function closeCheck(message) {
    pendingCheck = null;
    window.clearInterval(countdown);
    window.clearInterval(lead);
    judging(false);
    setShoot(null);
    VeriSkillCamera.close(cameraStream);
    cameraStream = null;
    if (dialog.open) { dialog.close(); }
    if (returnFocus && returnFocus.focus && document.contains(returnFocus)) {
      returnFocus.focus();
    }
    returnFocus = null;
    say(message);
  }

  function answer() {
    if (!pendingCheck) { return; }
    var check = pendingCheck;
    window.clearInterval(lead);
    setShoot(null);
    status(faceMessages.capturing);
    VeriSkillCamera.burst(checkCamera, limits.burst_frames, limits.burst_span_ms).then(function (frames) {
      status(faceMessages.checking);
      judging(true);
      var form = new FormData();
      frames.forEach(function (blob, index) { form.append("frames", blob, index + ".jpg"); });
      return fetch("/api/v1/checks/" + check.id, {
        method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrf }
      }).then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); });
    }).then(function (reply) {
      // Where workers judge checks the answer is queued (202): wait for their verdict, as
      // for an earlier answer still being judged.
      var busy = reply[0] === 409 && reply[1].error && reply[1].error.code === "check_judging";
      return reply[0] === 202 || busy ? verdictOf(check) : reply;
    }).then(function (reply) {
      judging(false);
      var data = reply[1];
      if (reply[0] === 200 && data.passed) {
        closeCheck(faceMessages.passed);
        beat();  // the confirmed time (and a lesson completed by it) shows at once
        return;
      }
      var code = reply[0] === 200 ? data.code : (data.error && data.error.result) || "expired";
      var why = faceMessages[code] || (data.error && data.error.message) || "";
      if (reply[0] === 200 && data.retry) {
        check.attempts = data.attempts;
        showTries(check);
        status(why);
        window.setTimeout(function () { prepare(check); }, 1500);
        return;
      }
      if (reply[0] >= 400 && reply[0] < 500 && data.error && data.error.code !== "check_closed") {
        status(why);  // refused before judging (not a photo, too large): the check is open
        window.setTimeout(function () { prepare(check); }, 1500);
        return;
      }
      // Decided and failed: the time since the last passed check is void; studying goes on.
      status(why + " " + (faceMessages.failed_final || ""));
      checkTries.textContent = "";
      continueButton.hidden = false;
      continueButton.focus();
    });
  }

  shootButton.addEventListener("click", function () {
    if (!pendingCheck || shootAction === null) { return; }
    if (shootAction === "camera") { openCamera(pendingCheck); } else { answer(); }
  });
  continueButton.addEventListener("click", function () { closeCheck(""); beat(); });
  // Escape must not dismiss a check the server is waiting for; if the browser closes the
  // dialog anyway (a repeated Escape), it opens again.
  dialog.addEventListener("cancel", function (event) { event.preventDefault(); });
  dialog.addEventListener("close", function () {
    if (pendingCheck) { openDialog(); }
  });
  // Tab and Shift+Tab go round the dialog's enabled controls; with none (while judging) focus
  // stays on the panel. The modal dialog already keeps focus off the page behind it; this
  // also keeps it off the browser's own toolbar.
  dialog.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") { return; }
    var stops = [shootButton, continueButton].filter(function (el) {
      return !el.disabled && !el.hidden;
    });
    event.preventDefault();
    if (!stops.length) { panel.focus(); return; }
    var at = stops.indexOf(document.activeElement);
    var next = event.shiftKey
      ? (at <= 0 ? stops.length - 1 : at - 1)
      : (at === -1 || at === stops.length - 1 ? 0 : at + 1);
    stops[next].focus();
  });

  // Poll the check about once a second while a worker judges it; the state it ends in reads
  // like the answer's own verdict (passed, code, retry).
  function verdictOf(check) {
    return new Promise(function (resolve) {
      function poll() {
        api("GET", "/api/v1/checks/" + check.id).then(function (reply) {
          if (reply.status === 200 && reply.data.status === "judging") {
            window.setTimeout(poll, 1000);
            return;
          }
          resolve([reply.status, reply.data]);
        }).catch(function () { window.setTimeout(poll, 1000); });  // offline: keep asking
      }
      window.setTimeout(poll, 1000);
    });
  }

  function show(state) {
    if (state.check) { showCheck(state.check); }
    creditedEl.textContent = clock(state.lesson_verified_s + state.lesson_pending_s);
    pendingEl.hidden = !(state.lesson_pending_s > 0);
    pendingEl.textContent = fill(box.dataset.pendingText, clock(state.lesson_pending_s));
    coverageEl.value = state.coverage;
    completeEl.hidden = !state.completed;
    furthest = Math.max(furthest, state.furthest_s);
    if (state.reason && reasons[state.reason] && state.reason !== "first_heartbeat") {
      say(reasons[state.reason]);
    } else if (state.credited_s > 0) {
      say(box.dataset.countingText || "");
    }
  }

  // A server past its capacity sheds a heartbeat with 503 and Retry-After, having recorded
  // nothing: it is sent again (with the position and state of that moment) after the time
  // asked plus up to a second of jitter, so shed players do not come back all at once. The
  // rules pay a stretch of up to one and a half heartbeats, so a retry within that costs no
  // study time. A newer heartbeat meanwhile makes the retry unnecessary.
  var retryTimer = null;

  function retryLater(retryAfter) {
    var seconds = Number(retryAfter);
    if (!(seconds >= 0)) { seconds = 2; }
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(beat, (seconds + Math.random()) * 1000);
  }

  function beat() {
    if (!session) { return; }
    window.clearTimeout(retryTimer);
    var playing = !video.paused && !video.ended;
    seq += 1;
    api("POST", "/api/v1/sessions/" + session + "/heartbeats", {
      position_s: Math.min(video.currentTime || 0, video.duration || Infinity),
      hidden: document.visibilityState === "hidden",
      playing: playing,
      seq: seq
    }).then(function (reply) {
      if (reply.status === 200) { show(reply.data); return; }
      if (reply.status === 503 && reply.data.error && reply.data.error.code === "overloaded") {
        retryLater(reply.retryAfter);
        return;
      }
      if (reply.status === 409 && reply.data.error && reply.data.error.code === "session_ended") {
        stop();
        video.pause();
      }
      say(reply.data.error ? reply.data.error.message : "");
    }).catch(function () { /* offline: the server will see the gap */ });
  }

  function start() {
    if (timer === null) { timer = window.setInterval(beat, heartbeatMs); }
  }
  function stop() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
  }

  // A pause (the end of the video pauses too) is reported at once: the stretch played
  // before it is paid, nothing after it until playing resumes.
  video.addEventListener("play", function () {
    if (pendingCheck) { video.pause(); return; }
    beat();
    start();
  });
  video.addEventListener("pause", function () { beat(); stop(); });
  video.addEventListener("ratechange", function () {
    if (video.playbackRate > 1) { video.playbackRate = 1; }
  });
  video.addEventListener("seeking", function () {
    if (video.currentTime > furthest + limits.skip_tolerance_s) {
      video.currentTime = furthest;
      say(reasons.ahead_of_furthest);
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && !video.paused) {
      video.pause();  // the pause handler reports it; hidden time never counts
    }
  });

  api("POST", "/api/v1/lessons/" + box.dataset.lessonId + "/sessions").then(function (reply) {
    if (reply.status !== 201) {
      say(reply.data.error ? reply.data.error.message : "");
      return;
    }
    session = reply.data.id;
    showCheck(reply.data.check);
    furthest = reply.data.furthest_s;
    var hls = VeriSkillHls.attach(video, reply.data.playlist_url, say);
    video.addEventListener("loadedmetadata", function () {
      if (reply.data.resume_s > 1) { video.currentTime = reply.data.resume_s; }
    }, { once: true });
    if (!hls) { return; }
    hls.on(Hls.Events.MANIFEST_PARSED, function () {
      hls.levels.forEach(function (level, index) {
        var option = document.createElement("option");
        option.value = index;
        option.textContent = level.height + "p";
        qualitySelect.appendChild(option);
      });
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function () {
      hls.subtitleTracks.forEach(function (track, index) {
        var option = document.createElement("option");
        option.value = index;
        option.textContent = track.name || track.lang;
        captionSelect.appendChild(option);
      });
    });
    qualitySelect.addEventListener("change", function () {
      hls.currentLevel = Number(qualitySelect.value);
    });
    captionSelect.addEventListener("change", function () {
      hls.subtitleTrack = Number(captionSelect.value);
      hls.subtitleDisplay = Number(captionSelect.value) >= 0;
    });
  });
})();
