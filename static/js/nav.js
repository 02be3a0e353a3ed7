// The main navigation folds behind a "Menu" button on narrow screens (CSS decides when).
(function () {
  document.documentElement.classList.add("js");
  var button = document.getElementById("nav-toggle");
  var bar = document.querySelector(".topbar");
  if (!button || !bar) return;
  button.addEventListener("click", function () {
    var open = bar.classList.toggle("nav-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && bar.classList.contains("nav-open")) {
      bar.classList.remove("nav-open");
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
})();

// Tables read as cards on phones: each cell gets its column's header as a label (CSS shows it under 600 px).
(function () {
  document.querySelectorAll("main table").forEach(function (table) {
    var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return th.textContent.trim();
    });
    if (!heads.length) return;
    table.classList.add("cards-on-phone");
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, index) {
        if (heads[index] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[index]);
      });
    });
  });
})();

// A region that scrolls on its own (a wide table in its card) can be reached and scrolled with the keyboard.
(function () {
  function mark() {
    document.querySelectorAll("main *").forEach(function (el) {
      if (el.scrollWidth <= el.clientWidth + 1 || el.hasAttribute("tabindex")) return;
      var style = window.getComputedStyle(el);
      if (style.overflowX !== "auto" && style.overflowX !== "scroll") return;
      el.setAttribute("tabindex", "0");
      if (!el.hasAttribute("role")) el.setAttribute("role", "region");
      if (!el.hasAttribute("aria-label")) {
        var heading = el.closest("section") && el.closest("section").querySelector("h2, h3");
        el.setAttribute("aria-label", heading ? heading.textContent.trim() : "Scrollable content");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
})();
