/* Charts from the tables that carry their data (the page stays readable without JavaScript): each
   <table class="chart-data" data-chart="line|bar|stacked"> gets a Chart.js canvas drawn from its cells, and the
   table folds into a "Show as table" details element. Runs again after htmx swaps a partial in. No inline code:
   the Content-Security-Policy allows scripts from this site only. */
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#9ca3af", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed"];

  function number(cell) {
    var v = parseFloat((cell.textContent || "").replace(/[^0-9.\-]/g, ""));
    return isNaN(v) ? 0 : v;
  }

  function draw(table) {
    if (table.dataset.chartDrawn || typeof window.Chart === "undefined") return;
    table.dataset.chartDrawn = "1";
    var kind = table.dataset.chart;
    var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
    var rows = table.querySelectorAll("tbody tr");
    var labels = [];
    var series = heads.slice(1).map(function () { return []; });
    Array.prototype.forEach.call(rows, function (tr) {
      var cells = tr.querySelectorAll("td");
      labels.push(cells[0].textContent.trim());
      for (var i = 1; i < cells.length; i++) series[i - 1].push(number(cells[i]));
    });
    var datasets = series.map(function (data, i) {
      var color = COLORS[i % COLORS.length];
      return { label: heads[i + 1], data: data, borderColor: color, backgroundColor: color, pointRadius: 0, tension: 0.2 };
    });
    var wrap = document.createElement("div");
    wrap.className = "chart-box";
    var canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", table.closest("section").querySelector("h2").textContent);
    wrap.appendChild(canvas);
    table.parentNode.insertBefore(wrap, table);
    var details = document.createElement("details");
    var summary = document.createElement("summary");
    summary.textContent = "Show as table";
    details.appendChild(summary);
    table.parentNode.insertBefore(details, table);
    details.appendChild(table);
    var stacked = kind === "stacked";
    var scaleY = { beginAtZero: true, stacked: stacked };
    if (table.dataset.max) scaleY.max = parseFloat(table.dataset.max);
    table.chart = new window.Chart(canvas, {
      type: kind === "line" ? "line" : "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { x: { stacked: stacked }, y: scaleY },
      },
    });
    canvas.dataset.chartReady = "1";
  }

  function drawAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("table.chart-data"), draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function () { drawAll(document); });
})();
