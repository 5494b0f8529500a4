// The queue's live update: every 20 s, ask whether the queue changed (same filters); if it
// did, say so in a polite live region with a link to reload. The page never reloads by
// itself (WCAG 2.2.1): the analyst decides when.
"use strict";
(function () {
  var box = document.getElementById("updates");
  if (!box || !window.fetch) return;
  var known = box.dataset.stamp;
  async function poll() {
    try {
      var r = await fetch(box.dataset.url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (!r.ok) return;
      var state = await r.json();
      if (state.stamp !== known) {
        box.querySelector("span").textContent = box.dataset.changed.replace("{n}", state.new);
        box.hidden = false;
      }
    } catch (e) { /* offline for a moment: the next poll tries again */ }
  }
  setInterval(poll, 20000);
})();
