// The rehearsal report: while the run is queued or running, poll its API and move the progress bar;
// once it has finished, reload to show every verdict.
(function () {
  "use strict";
  const box = document.querySelector("[data-run-url]");
  if (!box || box.dataset.finished === "1") return;
  const url = box.dataset.runUrl;
  const set = (field, value) => {
    const el = box.querySelector(`[data-field="${field}"]`);
    if (el) el.textContent = value;
  };

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        const finished = data.progress.done + data.progress.failed;
        set("done", finished);
        set("total", data.progress.total);
        const bar = box.querySelector('[data-field="bar"]');
        if (bar) {
          bar.max = Math.max(data.progress.total, 1);
          bar.value = finished;
        }
        if (data.run.status === "done" || data.run.status === "failed") {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      // A dropped poll is retried on the next tick.
    }
    window.setTimeout(poll, 1500);
  }
  window.setTimeout(poll, 1000);
})();
