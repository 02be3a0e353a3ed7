// The lead page: confirm before marking a lead lost, and the status toast whose Undo lasts a few seconds.
(function () {
  "use strict";

  Array.prototype.forEach.call(document.querySelectorAll("[data-confirm]"), function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  var toast = document.querySelector("[data-undo-toast]");
  if (!toast) { return; }
  var left = parseInt(toast.getAttribute("data-seconds"), 10) || 10;
  var countdown = toast.querySelector("[data-undo-countdown]");
  // The address loses ?undo= so a reload does not offer the undo again.
  var url = new URL(window.location.href);
  url.searchParams.delete("undo");
  window.history.replaceState(null, "", url.toString());
  function tick() {
    if (countdown) { countdown.textContent = left + " s"; }
    if (left <= 0) {
      // Keep it while someone is about to press it.
      if (toast.contains(document.activeElement)) { window.setTimeout(tick, 1000); return; }
      toast.hidden = true;
      return;
    }
    left -= 1;
    window.setTimeout(tick, 1000);
  }
  tick();
})();
