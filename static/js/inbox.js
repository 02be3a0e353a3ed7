// The conversation view: new messages and delivery states appear without a reload (polling the thread
// fragment), Ctrl/Cmd+Enter sends, the thread stays scrolled to the newest message.
(function () {
  "use strict";
  const holder = document.getElementById("thread");
  const composer = document.getElementById("composer");

  function threadBox() { return holder ? holder.querySelector("[data-thread-version]") : null; }
  function atBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 40; }
  function toBottom() { const box = threadBox(); if (box) box.scrollTop = box.scrollHeight; }

  if (composer) {
    const text = composer.querySelector("textarea[name=text]");
    text.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (text.value.trim()) composer.requestSubmit();
      }
    });
    composer.addEventListener("submit", function () {
      composer.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    });
  }

  let leaving = false;
  if (!holder) return;
  // Drafts in the thread (draft mode): Ctrl/Cmd+Enter sends the draft being edited. Delegated, because the
  // thread is replaced as it grows.
  holder.addEventListener("keydown", function (event) {
    const area = event.target;
    if (!(event.key === "Enter" && (event.ctrlKey || event.metaKey)) || !area.closest) return;
    const form = area.closest("form.draft-editor");
    if (!form) return;
    event.preventDefault();
    if (area.value.trim()) form.requestSubmit();
  });
  holder.addEventListener("submit", function (event) {
    leaving = true;
    event.target.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  });
  // A draft being edited is never replaced under the person's hands: the poll waits until it is sent.
  function editingDraft() {
    return Array.prototype.some.call(holder.querySelectorAll("form.draft-editor textarea"), function (area) {
      return area === document.activeElement || area.value !== area.defaultValue;
    });
  }
  toBottom();
  const url = holder.dataset.threadUrl;
  const every = Math.max(1000, parseInt(holder.dataset.pollMs, 10) || 3000);
  let busy = false;

  window.addEventListener("pagehide", function () { leaving = true; });
  if (composer) composer.addEventListener("submit", function () { leaving = true; });
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () { leaving = true; });
  });

  async function poll() {
    // data-paused on the thread holds live updates (tests pause them around their own writes).
    if (busy || leaving || document.hidden || holder.dataset.paused || editingDraft()) return;
    busy = true;
    holder.dataset.busy = "1";
    try {
      const response = await fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
      if (!response.ok) return;
      const html = await response.text();
      const next = new DOMParser().parseFromString(html, "text/html").querySelector("[data-thread-version]");
      const current = threadBox();
      if (!next || !current || next.dataset.threadVersion === current.dataset.threadVersion) return;
      const stick = atBottom(current);
      current.replaceWith(document.importNode(next, true));
      if (stick) toBottom();
    } catch (error) {
      // A dropped poll is retried on the next tick; the page keeps what it shows.
    } finally {
      busy = false;
      delete holder.dataset.busy;
    }
  }
  window.setInterval(poll, every);
})();
