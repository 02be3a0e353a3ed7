// Progressive enhancement for the training and lead pages; every page works without it.
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  // Tabs: switch panels in place and keep the address in step so a reload lands on the same tab.
  $all("[data-tabs] [data-tab]").forEach(function (tab) {
    tab.addEventListener("click", function (event) {
      event.preventDefault();
      var name = tab.getAttribute("data-tab");
      $all("[data-tabs] [data-tab]").forEach(function (other) {
        var selected = other === tab;
        other.setAttribute("aria-selected", selected ? "true" : "false");
        var panel = document.getElementById(other.getAttribute("aria-controls"));
        if (panel) { panel.hidden = !selected; }
      });
      var url = new URL(window.location.href);
      if (name === "manual") { url.searchParams.set("tab", "manual"); } else { url.searchParams.delete("tab"); }
      window.history.replaceState(null, "", url.toString());
    });
  });

  // Choosing a lead loads its conversation.
  $all("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { if (select.value) { select.form.submit(); } });
  });

  // Click an agent reply to flag it: fill the hidden field and the preview.
  var transcript = $("[data-transcript]");
  if (transcript) {
    // Arriving with a reply chosen (from the lead's page, or the next one after a submit): bring it into view;
    // the form stays beside it (sticky on wide screens).
    var chosen = $(".bubble.selected", transcript);
    if (chosen) { chosen.scrollIntoView({ block: "center" }); }
    var hidden = document.getElementById("id_conv-message_id");
    transcript.addEventListener("click", function (event) {
      var bubble = event.target.closest("[data-message-id]");
      if (!bubble) { return; }
      $all("[data-message-id]", transcript).forEach(function (other) {
        other.classList.toggle("selected", other === bubble);
        other.setAttribute("aria-pressed", other === bubble ? "true" : "false");
      });
      if (hidden) { hidden.value = bubble.getAttribute("data-message-id"); }
      var preview = $("[data-preview]");
      var empty = $("[data-preview-empty]");
      if (preview) {
        $("[data-preview-lead]", preview).textContent = bubble.getAttribute("data-lead-text") || "";
        $("[data-preview-reply]", preview).textContent = bubble.getAttribute("data-reply-text") || "";
        preview.hidden = false;
      }
      if (empty) { empty.hidden = true; }
      var jump = $("[data-submit-jump]");
      if (jump) { jump.hidden = false; }
      var url = new URL(window.location.href);
      url.searchParams.set("message", bubble.getAttribute("data-message-id"));
      window.history.replaceState(null, "", url.toString());
    });
  }

  // The expected response matters for corrections: highlight it when "Correction" is chosen.
  $all("form").forEach(function (form) {
    var expected = $("[data-expected]", form);
    if (!expected) { return; }
    function sync() {
      var checked = $("input[type=radio][name$='example_type']:checked", form);
      expected.classList.toggle("required", !!checked && checked.value === "correction");
    }
    $all("input[type=radio][name$='example_type']", form).forEach(function (radio) {
      radio.addEventListener("change", sync);
    });
    sync();
  });

  // Confirm destructive buttons.
  $all("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // Review queue: bulk selection.
  var selectAll = $("[data-select-all]");
  var boxes = $all("[data-select]");
  var counter = $("[data-selected-count]");
  function countSelected() {
    var n = boxes.filter(function (box) { return box.checked; }).length;
    if (counter) { counter.textContent = n ? n + " selected" : ""; }
  }
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = selectAll.checked; });
      countSelected();
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", countSelected); });

  // Review queue: approve or reject in place through the API, without reloading the page.
  function statusLabel(status) { return status.charAt(0).toUpperCase() + status.slice(1); }
  $all("form[data-review-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!submitter || !window.fetch) { return; }
      event.preventDefault();
      var card = form.closest("[data-example-id]");
      var error = $("[data-error]", form);
      var note = $("input[name=note]", form);
      var token = $("input[name=csrfmiddlewaretoken]", form).value;
      $all("button", form).forEach(function (b) { b.disabled = true; });
      error.textContent = "";
      fetch(form.getAttribute("data-api"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ action: submitter.value, note: note ? note.value : "" })
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        if (!result.ok) {
          var messages = [];
          Object.keys(result.data || {}).forEach(function (key) {
            var value = result.data[key];
            messages.push(Array.isArray(value) ? value.join(" ") : String(value));
          });
          error.textContent = messages.join(" ") || "Something went wrong.";
          $all("button", form).forEach(function (b) { b.disabled = false; });
          return;
        }
        var example = result.data;
        var pill = $("[data-status-pill]", card);
        pill.textContent = statusLabel(example.status);
        pill.className = "pill pill-" + example.status;
        card.className = card.className.replace(/status-\w+/, "status-" + example.status);
        var decision = $("[data-decision]", card);
        if (example.status === "pending") {
          decision.hidden = true;
          window.location.reload();
          return;
        }
        decision.textContent = statusLabel(example.status) + " by " + (example.approved_by_name || "you") +
          (example.review_note ? " — “" + example.review_note + "”" : "");
        decision.hidden = false;
        $all("input[name=note], .actions", form).forEach(function (el) { el.remove(); });
        var total = $("[data-testid=pending-total]");
        if (total) {
          var n = Math.max(0, parseInt(total.textContent, 10) - 1);
          total.textContent = n + " pending";
        }
      }).catch(function () {
        error.textContent = "Network error; try again.";
        $all("button", form).forEach(function (b) { b.disabled = false; });
      });
    });
  });
})();
