// Draws the insights charts from the JSON the page embeds with json_script; the tables carry the same numbers.
(function () {
  "use strict";

  var source = document.getElementById("insights-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var Chart = window.Chart;

  var COLORS = {
    primary: "#3056d3",
    ok: "#1b8a5a",
    bad: "#c0352b",
    warn: "#d08a1e",
    info: "#7c8fd6",
    grey: "#98a2b3",
  };
  var STATUS_COLORS = { pending: COLORS.warn, approved: COLORS.ok, rejected: COLORS.bad };
  var TYPE_COLORS = { good: COLORS.ok, bad: COLORS.bad, correction: COLORS.primary };
  var FUNNEL_COLORS = {
    new: COLORS.warn,
    engaged: COLORS.info,
    qualified: COLORS.ok,
    converted: "#0f6b45",
    lost: COLORS.bad,
  };

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%";
  }

  var countAxis = { beginAtZero: true, ticks: { precision: 0 } };

  // Submissions (by type, stacked) and decisions per day.
  var days = data.submissions_per_day.map(function (d) { return d.day; });
  var pointRadius = days.length > 60 ? 0 : 2;
  draw("chart-daily", {
    data: {
      labels: days,
      datasets: [
        { type: "bar", label: "Good", data: data.submissions_per_day.map(function (d) { return d.good; }),
          backgroundColor: TYPE_COLORS.good, stack: "submitted" },
        { type: "bar", label: "Bad", data: data.submissions_per_day.map(function (d) { return d.bad; }),
          backgroundColor: TYPE_COLORS.bad, stack: "submitted" },
        { type: "bar", label: "Correction", data: data.submissions_per_day.map(function (d) { return d.correction; }),
          backgroundColor: TYPE_COLORS.correction, stack: "submitted" },
        { type: "line", label: "Approved", data: data.decisions_per_day.map(function (d) { return d.approved; }),
          borderColor: "#0f6b45", backgroundColor: "#0f6b45", pointRadius: pointRadius, tension: 0.2,
          stack: "approved" },
        { type: "line", label: "Rejected", data: data.decisions_per_day.map(function (d) { return d.rejected; }),
          borderColor: COLORS.warn, backgroundColor: COLORS.warn, pointRadius: pointRadius, tension: 0.2,
          stack: "rejected" },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      // Stacked per group: the three submission types pile up, each decision line stands alone.
      scales: { x: { stacked: true, ticks: { maxTicksLimit: 16 } }, y: Object.assign({ stacked: true }, countAxis) },
    },
  });

  function simpleBars(id, counts, colors, label) {
    var keys = Object.keys(counts);
    draw(id, {
      type: "bar",
      data: {
        labels: keys,
        datasets: [{
          label: label,
          data: keys.map(function (k) { return counts[k]; }),
          backgroundColor: keys.map(function (k) { return colors[k] || COLORS.grey; }),
        }],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: countAxis } },
    });
  }
  simpleBars("chart-status", data.examples.by_status, STATUS_COLORS, "Examples");
  simpleBars("chart-type", data.examples.by_type, TYPE_COLORS, "Examples");

  // Success rate per version: the rate as a dot, its 95% interval as a whisker with caps (the same reading
  // as the prompt page and the funnel), never a box that looks like a bar up to the upper bound.
  var versions = data.prompt_versions;
  var whiskers = {
    id: "whiskers",
    afterDatasetsDraw: function (chart) {
      var meta = chart.getDatasetMeta(0);
      var y = chart.scales.y;
      var ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = COLORS.primary;
      ctx.lineWidth = 2;
      versions.forEach(function (v, i) {
        var point = meta.data[i];
        if (!point || v.success_rate_low === null || v.success_rate_high === null) { return; }
        var x = point.x;
        var top = y.getPixelForValue(v.success_rate_high * 100);
        var bottom = y.getPixelForValue(v.success_rate_low * 100);
        ctx.beginPath();
        ctx.moveTo(x, top); ctx.lineTo(x, bottom);
        ctx.moveTo(x - 7, top); ctx.lineTo(x + 7, top);
        ctx.moveTo(x - 7, bottom); ctx.lineTo(x + 7, bottom);
        ctx.stroke();
      });
      ctx.restore();
    },
  };
  draw("chart-versions", {
    type: "line",
    data: {
      labels: versions.map(function (v) { return "v" + v.version; }),
      datasets: [
        { label: "Success rate (whisker: 95% interval)", showLine: false, pointRadius: 5,
          borderColor: COLORS.primary, backgroundColor: COLORS.primary,
          data: versions.map(function (v) { return v.success_rate === null ? null : v.success_rate * 100; }) },
      ],
    },
    plugins: [whiskers],
    options: {
      scales: {
        x: { offset: true },
        y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: "% of conversations qualified" } },
      },
      plugins: {
        tooltip: {
          callbacks: {
            label: function (ctx) {
              var v = versions[ctx.dataIndex];
              return "Success " + pct(v.success_rate) + " (" + v.qualified + " of " + v.conversations + "), 95% interval " +
                pct(v.success_rate_low) + " – " + pct(v.success_rate_high);
            },
          },
        },
      },
    },
  });

  // The funnel: horizontal bars in stage order.
  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: data.lead_funnel.map(function (s) { return s.label; }),
      datasets: [{
        label: "Leads",
        data: data.lead_funnel.map(function (s) { return s.count; }),
        backgroundColor: data.lead_funnel.map(function (s) { return FUNNEL_COLORS[s.stage] || COLORS.grey; }),
      }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: countAxis } },
  });

  draw("chart-handoffs", {
    type: "bar",
    data: {
      labels: data.handoffs.by_reason.map(function (r) {
        return r.reason.length > 40 ? r.reason.slice(0, 39) + "…" : r.reason;
      }),
      datasets: [{ label: "Handoffs", data: data.handoffs.by_reason.map(function (r) { return r.count; }),
        backgroundColor: COLORS.warn }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: countAxis } },
  });
})();
