/* Prompt workspace: confirmation dialogs, the unsaved-changes warning. Works without it (the server
   still requires a reason and confirms in the flash message). */
(function () {
  "use strict";

  document.querySelectorAll("[data-open-dialog]").forEach(function (button) {
    button.addEventListener("click", function () {
      var dialog = document.getElementById(button.getAttribute("data-open-dialog"));
      var reason = dialog && dialog.querySelector("input[name=reason]");
      // From the regression banner the reason is written already: confirming is the one click left.
      if (reason && button.getAttribute("data-reason") && !reason.value) reason.value = button.getAttribute("data-reason");
      if (dialog && typeof dialog.showModal === "function") dialog.showModal();
    });
  });
  document.querySelectorAll("[data-close-dialog]").forEach(function (button) {
    button.addEventListener("click", function () {
      var dialog = button.closest("dialog");
      if (dialog) dialog.close();
    });
  });

  // Forms (and buttons) with data-confirm ask before they post.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // The evaluation's version picker names the chosen version on its button.
  var picker = document.getElementById("evaluate-version");
  var evaluate = document.querySelector("[data-testid=evaluate]");
  if (picker && evaluate) {
    picker.addEventListener("change", function () {
      var label = picker.options[picker.selectedIndex].text.replace(/ \(active\)$/, "");
      evaluate.textContent = "Test " + label + " against approved examples";
    });
  }

  // Unsaved edits: warn before leaving, not when the form itself is submitted.
  var form = document.querySelector("form[data-unsaved-warning]");
  if (form) {
    var initial = new FormData(form);
    var submitting = false;
    var dirty = function () {
      var now = new FormData(form);
      var changed = false;
      now.forEach(function (value, key) {
        if (key !== "csrfmiddlewaretoken" && initial.get(key) !== value) changed = true;
      });
      return changed;
    };
    form.addEventListener("submit", function () { submitting = true; });
    window.addEventListener("beforeunload", function (event) {
      if (!submitting && dirty()) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
    // A refused save comes back with the edits: they are still unsaved.
    if (document.querySelector(".errors, .flash-error")) {
      initial = new FormData();
    }
  }
})();
