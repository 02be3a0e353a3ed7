// Review queue: keyboard shortcuts and selection. Every action is a plain form post; this only drives them.
(function () {
  "use strict";

  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  var cards = $all("[data-card]");
  var current = -1;

  function setCurrent(index, scroll) {
    if (!cards.length) { return; }
    current = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach(function (card, i) {
      card.classList.toggle("current", i === current);
      card.setAttribute("aria-current", i === current ? "true" : "false");
    });
    var card = cards[current];
    card.focus({ preventScroll: !scroll });
    if (scroll) { card.scrollIntoView({ block: "nearest" }); }
    try {
      window.sessionStorage.setItem("review-current", card.getAttribute("data-example-id"));
      window.sessionStorage.setItem("review-index", String(current));
    } catch (e) { /* private mode */ }
  }

  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
  }

  function card() { return cards[current]; }
  function press(selector) {
    var button = card() && card().querySelector(selector);
    if (button) { button.click(); return true; }
    return false;
  }
  function openEdit() {
    var box = card() && card().querySelector("[data-edit-box]");
    if (!box) { return; }
    box.hidden = false;
    var area = box.querySelector("[data-edit]");
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  cards.forEach(function (item, i) {
    item.addEventListener("click", function (event) {
      if (!typing(event.target) && event.target.tagName !== "A" && event.target.tagName !== "BUTTON") { setCurrent(i, false); }
    });
    var toggle = item.querySelector("[data-edit-toggle]");
    if (toggle) { toggle.addEventListener("click", function () { setCurrent(i, false); openEdit(); }); }
    var note = item.querySelector("[data-note]");
    var form = item.querySelector("[data-review-form]");
    if (note && form) {
      // In the note, Enter rejects when the note was opened with "r", else approves (with the note).
      note.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          var reject = note.getAttribute("data-mode") === "reject";
          form.querySelector(reject ? "[data-reject]" : "[data-approve]").click();
        } else if (event.key === "Escape") { note.removeAttribute("data-mode"); note.blur(); item.focus(); }
      });
    }
    var area = item.querySelector("[data-edit]");
    if (area && form) {
      area.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          form.querySelector("[data-approve]").click();
        } else if (event.key === "Escape") { area.blur(); item.focus(); }
      });
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) { return; }
    var key = event.key;
    if (key === "j") { setCurrent(current + 1, true); }
    else if (key === "k") { setCurrent(current - 1, true); }
    else if (key === "a") { press("[data-approve]"); }
    else if (key === "r") {
      var note = card() && card().querySelector("[data-note]");
      if (note) { note.setAttribute("data-mode", "reject"); note.placeholder = "Why is it rejected? Enter to reject, Esc to cancel"; note.focus(); }
    }
    else if (key === "e") { openEdit(); }
    else if (key === "x") {
      var box = card() && card().querySelector("[data-select]");
      if (box) { box.checked = !box.checked; box.dispatchEvent(new Event("change")); }
    }
    else if (key === "?") { var help = document.querySelector("[data-keys-help]"); if (help) { help.open = !help.open; } }
    else { return; }
    event.preventDefault();
  });

  // Selection: "select all" and group buttons only ever select pending examples.
  var boxes = $all("[data-select]");
  var counter = document.querySelector("[data-selected-count]");
  function count() {
    var n = $all("[data-select], [data-select-decided]").filter(function (b) { return b.checked; }).length;
    if (counter) { counter.textContent = n ? n + " selected" : ""; }
  }
  var all = document.querySelector("[data-select-all]");
  if (all) { all.addEventListener("change", function () { boxes.forEach(function (b) { b.checked = all.checked; }); count(); }); }
  $all("[data-select], [data-select-decided]").forEach(function (b) { b.addEventListener("change", count); });
  $all("[data-select-group]").forEach(function (button) {
    button.addEventListener("click", function () {
      var ids = button.getAttribute("data-select-group").split(" ");
      boxes.forEach(function (b) { if (ids.indexOf(b.value) >= 0) { b.checked = true; } });
      count();
    });
  });

  // Start on the card worked last (if it is still listed), else the first.
  var start = 0;
  try {
    // The card decided last is gone from a pending list: the one now at its place is the next.
    var last = window.sessionStorage.getItem("review-current");
    start = parseInt(window.sessionStorage.getItem("review-index") || "0", 10) || 0;
    cards.forEach(function (c, i) { if (c.getAttribute("data-example-id") === last) { start = i; } });
  } catch (e) { /* private mode */ }
  if (cards.length) { setCurrent(start, false); }
})();
