// The prompt page's evaluation card: while a run is queued or running, poll its progress API and update
// the counters; once every run has finished, reload to show the example-by-example table.
(function () {
  "use strict";
  const box = document.querySelector("[data-evaluation-url]");
  if (!box || box.dataset.finished === "1") return;
  const url = box.dataset.evaluationUrl;
  const finished = (run) => run && (run.status === "done" || run.status === "failed");

  function show(run) {
    if (!run) return;
    const row = box.querySelector(`[data-run-id="${run.id}"]`);
    if (!row) return;
    const set = (field, value) => {
      const el = row.querySelector(`[data-field="${field}"]`);
      if (el) el.textContent = value;
    };
    set("processed", run.processed);
    set("total", run.total);
    set("passed", run.passed);
    set("tokens", run.tokens.toLocaleString());
    set("status", run.status.charAt(0).toUpperCase() + run.status.slice(1));
    set("rate", run.pass_rate === null ? "—" : `${Math.round(run.pass_rate * 100)}%`);
    const bar = row.querySelector('[data-field="bar"]');
    if (bar) {
      bar.max = Math.max(run.total, 1);
      bar.value = run.processed;
    }
    const pill = row.querySelector('[data-field="status"]');
    if (pill) pill.className = `pill pill-${run.status}`;
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const run = await response.json();
        show(run);
        show(run.baseline);
        if (finished(run) && (!run.baseline || finished(run.baseline))) {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      // A dropped poll is retried on the next tick.
    }
    window.setTimeout(poll, 2000);
  }
  window.setTimeout(poll, 1000);
})();
