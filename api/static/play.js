// The player page: start at ?t=SECONDS (a click on the timeline says where). Plain JS, no build step.
(function () {
  "use strict";
  var media = document.querySelector(".player video, .player audio");
  var at = parseFloat(new URLSearchParams(window.location.search).get("t") || "");
  if (!media || !(at > 0)) return;
  var note = document.querySelector(".player-start");
  function seek() {
    media.currentTime = Math.min(at, isFinite(media.duration) ? media.duration : at);
  }
  if (media.readyState >= 1) seek();
  else media.addEventListener("loadedmetadata", seek, { once: true });
  if (note) {
    note.textContent = note.dataset.text.replace("{t}", at.toFixed(1));
    note.hidden = false;
  }
})();
