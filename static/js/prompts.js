/* Prompt editor page: a throttled character counter and the success-rate chart. Progressive enhancement:
   the page works without this file. */
(function () {
  "use strict";

  function setupCounter() {
    var area = document.getElementById("prompt-content");
    if (!area) return;
    var counter = document.getElementById(area.getAttribute("data-counter"));
    if (!counter) return;
    var max = parseInt(counter.getAttribute("data-max"), 10) || 0;
    var pending = false;
    var format = new Intl.NumberFormat();
    // One count per animation frame at most, however fast the typing: the textarea itself stays native.
    function render() {
      pending = false;
      // Code points, as the server counts them (an emoji is one character, not two UTF-16 units).
      var n = Array.from(area.value).length;
      counter.textContent = format.format(n) + " characters" + (max ? " of " + format.format(max) : "");
      counter.classList.toggle("over", max > 0 && n > max * 0.95);
    }
    area.addEventListener("input", function () {
      if (!pending) {
        pending = true;
        window.requestAnimationFrame(render);
      }
    });
    render();
  }

  // Draws the 95% Wilson interval as a whisker over each bar.
  var intervalWhiskers = {
    id: "intervalWhiskers",
    afterDatasetsDraw: function (chart) {
      var rows = chart.config.options.plugins.intervalWhiskers.rows;
      var meta = chart.getDatasetMeta(0);
      var y = chart.scales.y;
      var ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#1d2330";
      ctx.lineWidth = 1.5;
      meta.data.forEach(function (bar, i) {
        var row = rows[i];
        if (!row || row.low === null || row.high === null) return;
        var x = bar.x;
        var top = y.getPixelForValue(row.high * 100);
        var bottom = y.getPixelForValue(row.low * 100);
        var half = Math.min(8, bar.width / 4);
        ctx.beginPath();
        ctx.moveTo(x, top); ctx.lineTo(x, bottom);
        ctx.moveTo(x - half, top); ctx.lineTo(x + half, top);
        ctx.moveTo(x - half, bottom); ctx.lineTo(x + half, bottom);
        ctx.stroke();
      });
      ctx.restore();
    },
  };

  function setupChart() {
    var canvas = document.getElementById("prompt-chart");
    var source = document.getElementById("prompt-chart-data");
    if (!canvas || !source || typeof window.Chart === "undefined") return;
    var rows = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.label; }),
        datasets: [{
          label: "Success rate (%)",
          data: rows.map(function (r) { return r.rate === null ? null : Math.round(r.rate * 1000) / 10; }),
          backgroundColor: rows.map(function (r) { return r.active ? "#1b8a5a" : "#3056d3"; }),
          borderRadius: 4,
          maxBarThickness: 48,
        }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          y: { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + "%"; } } },
        },
        plugins: {
          legend: { display: false },
          intervalWhiskers: { rows: rows },
          tooltip: {
            callbacks: {
              afterLabel: function (item) {
                var r = rows[item.dataIndex];
                if (r.low === null) return r.conversations + " conversations";
                return "95% CI " + Math.round(r.low * 100) + "–" + Math.round(r.high * 100) + "% · " +
                  r.conversations + " conversations" + (r.active ? " · active" : "");
              },
            },
          },
        },
      },
      plugins: [intervalWhiskers],
    });
  }

  function start() {
    setupCounter();
    setupChart();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
