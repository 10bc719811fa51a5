// The reports dashboard's charts: each <canvas data-chart> holds its labels and series (JSON from the server);
// Chart.js (vendor/chart.umd.js) draws it. No inline scripts (the CSP allows none).
(function () {
  "use strict";

  var COLOURS = ["#2f6f4f", "#d98c2b", "#3b6ea8", "#b5473a", "#7a5ea8", "#5a8f8a", "#a8873b", "#6b6b6b"];

  function draw(canvas) {
    var spec = JSON.parse(canvas.dataset.chart);
    var round = spec.type === "doughnut";
    var datasets = spec.series.map(function (series, i) {
      var colour = COLOURS[i % COLOURS.length];
      return {
        type: series.line ? "line" : undefined,
        label: series.label,
        data: series.data,
        backgroundColor: round ? COLOURS : colour,
        borderColor: series.line ? "#6b6b6b" : colour,
        borderDash: series.line ? [6, 4] : undefined,
        borderWidth: round ? 1 : series.line ? 2 : 0,
        pointRadius: series.line ? 2 : undefined,
      };
    });
    var horizontal = spec.type === "hbar";
    var stacked = spec.type === "stacked";
    new window.Chart(canvas, {
      type: round ? "doughnut" : "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: round || datasets.length > 1, position: "bottom" } },
        scales: round ? {} : { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true } },
      },
    });
    canvas.dataset.drawn = "1";
  }

  function drawAll() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
    document.body.dataset.charts = String(document.querySelectorAll("canvas[data-drawn]").length);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
