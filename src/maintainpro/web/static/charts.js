// Shared chart helper: draws every <script type="application/json" data-chart-for=ID>
// figure into the element with that id, using plotly.js served by the hub itself.
"use strict";
(function () {
  function draw(node) {
    var target = document.getElementById(node.dataset.chartFor);
    if (!target || !window.Plotly) { return; }
    var figure = JSON.parse(node.textContent);
    window.Plotly.newPlot(target, figure.data, figure.layout, {
      responsive: true,
      displaylogo: false,
    });
  }
  window.maintainproCharts = {
    drawAll: function () {
      document.querySelectorAll("script[data-chart-for]").forEach(draw);
    },
  };
  document.addEventListener("DOMContentLoaded", window.maintainproCharts.drawAll);
})();
