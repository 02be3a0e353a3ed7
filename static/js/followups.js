// Pass rates per day (per check, and per version) from the JSON the page embeds with json_script; the tables
// carry the numbers.
(function () {
  "use strict";

  var source = document.getElementById("scoring-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var palette = ["#3056d3", "#1b8a5a", "#c0352b", "#d08a1e", "#7c8fd6", "#0f6b45", "#98a2b3"];
  window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

  function draw(id, series) {
    var canvas = document.getElementById(id);
    if (!canvas) {
      return;
    }
    var names = Object.keys(series);
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.days.map(function (day) { return day.slice(5); }),
        datasets: names.map(function (name, i) {
          return {
            label: name,
            data: series[name].map(function (v) { return v === null ? null : Math.round(v * 100); }),
            borderColor: palette[i % palette.length],
            backgroundColor: palette[i % palette.length],
            spanGaps: true,
            tension: 0,
          };
        }),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  draw("chart-scoring", data.series);
  draw("chart-scoring-versions", data.versions);
})();
