// A type-ahead over a JSON search endpoint, following the WAI-ARIA combobox pattern (list autocomplete):
// the input keeps focus, the arrow keys move through the listbox (aria-activedescendant), Enter chooses,
// Escape closes. Choosing sets the hidden id field and submits the form. Without JavaScript the same form
// is a plain search whose matches the server lists.
(function () {
  "use strict";

  function setup(root) {
    var input = root.querySelector("[role=combobox]");
    var list = root.querySelector("[role=listbox]");
    var hidden = root.querySelector("input[type=hidden]");
    var status = root.querySelector("[data-combobox-status]");
    var source = root.getAttribute("data-source");
    if (!input || !list || !hidden || !source) { return; }
    var options = [];
    var active = -1;
    var timer = null;
    var sequence = 0;
    var chosenLabel = input.value;

    function open(isOpen) {
      list.hidden = !isOpen;
      input.setAttribute("aria-expanded", isOpen ? "true" : "false");
      if (!isOpen) { setActive(-1); }
    }

    function setActive(index) {
      active = index;
      options.forEach(function (option, i) { option.setAttribute("aria-selected", i === index ? "true" : "false"); });
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(option) {
      hidden.value = option.getAttribute("data-id");
      input.value = option.getAttribute("data-name");
      chosenLabel = input.value;
      open(false);
      if (input.form) { input.form.submit(); }
    }

    function render(results) {
      list.textContent = "";
      options = results.map(function (lead, i) {
        var option = document.createElement("li");
        option.id = "lead-option-" + lead.id;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.setAttribute("data-id", String(lead.id));
        option.setAttribute("data-name", lead.name);
        option.appendChild(document.createTextNode(lead.name + " "));
        var meta = document.createElement("span");
        meta.className = "option-meta";
        meta.textContent = (lead.username ? "@" + lead.username + " · " : "") + lead.status;
        option.appendChild(meta);
        option.addEventListener("mousedown", function (event) { event.preventDefault(); });
        option.addEventListener("click", function () { choose(option); });
        list.appendChild(option);
        return option;
      });
      if (!options.length) {
        var empty = document.createElement("li");
        empty.className = "option-empty";
        empty.setAttribute("role", "option");
        empty.setAttribute("aria-disabled", "true");
        empty.setAttribute("aria-selected", "false");
        empty.id = "lead-option-none";
        empty.textContent = "No lead matches";
        list.appendChild(empty);
      }
      if (status) {
        status.textContent = options.length ? options.length + (options.length === 1 ? " lead" : " leads") + " found" : "No lead matches";
      }
      open(true);
      setActive(options.length ? 0 : -1);
    }

    function search() {
      var query = input.value.trim();
      var mine = ++sequence;
      fetch(source + "?q=" + encodeURIComponent(query), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (body) { if (mine === sequence && document.activeElement === input) { render(body.results || []); } })
        .catch(function () { if (status) { status.textContent = "The search failed; press Enter to search on the server."; } });
    }

    input.addEventListener("input", function () {
      if (input.value !== chosenLabel) { hidden.value = ""; }
      window.clearTimeout(timer);
      timer = window.setTimeout(search, 150);
    });
    input.addEventListener("focus", function () { if (!hidden.value) { search(); } });
    input.addEventListener("blur", function () { window.setTimeout(function () { open(false); }, 100); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) { search(); return; }
        if (!options.length) { return; }
        var step = event.key === "ArrowDown" ? 1 : -1;
        setActive((active + step + options.length) % options.length);
      } else if (event.key === "Enter") {
        if (!list.hidden && active >= 0 && options[active]) {
          event.preventDefault();
          choose(options[active]);
        }
      } else if (event.key === "Escape") {
        if (!list.hidden) { event.preventDefault(); open(false); }
      }
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-combobox]"), setup);
})();
