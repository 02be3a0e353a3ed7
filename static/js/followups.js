// The pass rate per check per day, from the JSON the page embeds with json_script; the tables carry the numbers.
(function () {
  "use strict";

  var source = document.getElementById("scoring-data");
  var canvas = document.getElementById("chart-scoring");
  if (!source || !canvas || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var palette = ["#3056d3", "#1b8a5a", "#c0352b", "#d08a1e", "#7c8fd6", "#0f6b45", "#98a2b3"];
  var names = Object.keys(data.series);
  window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  new window.Chart(canvas, {
    type: "line",
    data: {
      labels: data.days.map(function (day) { return day.slice(5); }),
      datasets: names.map(function (name, i) {
        return {
          label: name,
          data: data.series[name].map(function (v) { return v === null ? null : Math.round(v * 100); }),
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
})();
