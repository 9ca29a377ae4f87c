// The action's timeline: a click on a bar opens the player at the moment clicked; a click on a shortfall
// seeks the synchronised player below to it (or opens the page there). Plain JS, no build step.
(function () {
  "use strict";
  document.querySelectorAll("svg.timeline a.bar-link").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var rect = link.querySelector("rect").getBoundingClientRect();
      var start = +link.dataset.start, end = +link.dataset.end;
      if (!(rect.width > 0) || !(end > start)) return;
      var share = Math.min(Math.max((event.clientX - rect.left) / rect.width, 0), 1);
      var url = new URL(link.getAttribute("href"), window.location.href);
      url.searchParams.set("t", (share * (end - start) / 1000).toFixed(2));
      event.preventDefault();
      window.location.assign(url.toString());
    });
  });
  document.querySelectorAll("a.shortfall-link, a.seek-link").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (!window.bwcSync) return; // no player on this page: follow the link
      event.preventDefault();
      window.bwcSync.seek(+link.dataset.at);
      document.getElementById("sync").scrollIntoView();
    });
  });
})();
