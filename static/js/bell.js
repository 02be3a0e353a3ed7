// The bell in the top bar: its unread count follows new notifications without a reload.
(function () {
  "use strict";
  const bell = document.querySelector("a.bell");
  if (!bell) return;
  const every = Math.max(5000, parseInt(bell.dataset.pollMs, 10) || 15000);

  function show(unread) {
    let badge = bell.querySelector(".badge");
    if (unread > 0) {
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "badge";
        badge.setAttribute("data-testid", "unread-count");
        bell.appendChild(badge);
      }
      badge.textContent = String(unread);
    } else if (badge) {
      badge.remove();
    }
    bell.setAttribute("aria-label", "Notifications, " + unread + " unread");
  }

  async function poll() {
    if (document.hidden) return;
    try {
      const response = await fetch("/api/notifications/?unread=true&page_size=1", { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      if (typeof data.unread === "number") show(data.unread);
    } catch (error) {
      // Offline for a moment: the next tick tries again.
    }
  }
  window.setInterval(poll, every);
})();
