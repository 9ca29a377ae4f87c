// All of an action's cameras side by side on one clock (the action's wall-clock time, device clock offsets
// already applied by the server). One master clock; each camera's video is kept at clock - clip start, its
// clip switched as the clock passes from one file to the next. Plain JS, no build step.
(function () {
  "use strict";
  var root = document.querySelector("section.sync");
  if (!root) return;
  var cameras = JSON.parse(root.dataset.cameras);
  var viewStart = +root.dataset.viewStart, viewEnd = +root.dataset.viewEnd;
  var button = root.querySelector(".sync-play"), slider = root.querySelector(".sync-seek");
  var output = root.querySelector(".sync-clock");
  var format = new Intl.DateTimeFormat(root.dataset.lang === "zh" ? "zh-CN" : "en-GB", {
    timeZone: root.dataset.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  var DRIFT = 0.35; // seconds a video may stray from the clock before it is put back
  var anchorClock = +root.dataset.actionStart, anchorPerf = performance.now(), playing = false;
  // Nothing is fetched until someone asks to play or seek: viewing the action is not an evidence read.
  var armed = false;
  var sound = false;
  var tiles = Array.prototype.map.call(root.querySelectorAll(".sync-tile"), function (el, i) {
    var tile = { el: el, video: el.querySelector("video"), state: el.querySelector(".sync-state"),
      clips: cameras[i].clips, clip: null };
    if (!sound && tile.clips.length) { tile.video.muted = false; sound = true; } // sound from the first camera
    return tile;
  });

  function now() {
    return playing ? anchorClock + (performance.now() - anchorPerf) : anchorClock;
  }

  function clipAt(tile, clock) {
    for (var i = 0; i < tile.clips.length; i++) {
      if (tile.clips[i].start <= clock && clock < tile.clips[i].end) return tile.clips[i];
    }
    return null;
  }

  function follow(tile, clock) {
    if (!armed) return;
    var clip = clipAt(tile, clock), video = tile.video;
    if (clip !== tile.clip) {
      tile.clip = clip;
      if (clip) {
        video.src = clip.src;
        video.dataset.recording = clip.id;
        video.dataset.clipStart = clip.start;
      } else {
        video.pause();
        delete video.dataset.recording;
      }
    }
    tile.el.classList.toggle("idle", !clip);
    tile.state.textContent = clip ? "" : root.dataset.notRecording;
    if (!clip) return;
    var target = (clock - clip.start) / 1000;
    if (video.readyState >= 1 && !video.seeking && Math.abs(video.currentTime - target) > DRIFT) {
      video.currentTime = target;
    }
    if (playing && video.paused) video.play().catch(function () {});
    if (!playing && !video.paused) video.pause();
  }

  function sync() {
    var clock = now();
    if (clock >= viewEnd) { pause(); clock = anchorClock = viewEnd; }
    root.dataset.clock = Math.round(clock);
    output.textContent = format.format(new Date(clock));
    if (document.activeElement !== slider) slider.value = clock;
    tiles.forEach(function (tile) { follow(tile, clock); });
  }

  function seek(clock, asked) {
    if (asked !== false) armed = true;
    anchorClock = Math.min(Math.max(clock, viewStart), viewEnd);
    anchorPerf = performance.now();
    sync();
  }

  function play() {
    armed = true;
    if (now() >= viewEnd) anchorClock = viewStart;
    anchorPerf = performance.now();
    playing = true;
    button.textContent = button.dataset.pause;
    sync();
  }

  function pause() {
    anchorClock = now();
    playing = false;
    button.textContent = button.dataset.play;
    tiles.forEach(function (tile) { tile.video.pause(); });
  }

  button.addEventListener("click", function () { if (playing) pause(); else play(); });
  slider.addEventListener("input", function () { seek(+slider.value); });
  tiles.forEach(function (tile) {
    tile.video.addEventListener("loadedmetadata", sync);
  });
  window.setInterval(sync, 200);
  window.bwcSync = { seek: seek, play: play, pause: pause, now: now };
  var at = +(new URLSearchParams(window.location.search).get("at") || "");
  seek(at > 0 ? at : anchorClock, false);
})();
