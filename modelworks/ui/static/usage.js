/* Traffic chart of a deployment: requests (bars' place taken by a stepped line) and mean latency per day, drawn by
   uPlot from the JSON the page carries (<script type="application/json">: data, never executed). */
(function () {
  "use strict";
  var data = document.getElementById("traffic-data");
  var target = document.getElementById("traffic-chart");
  if (!data || !target || !window.uPlot) return;
  var d = JSON.parse(data.textContent);
  var opts = {
    width: Math.min(900, target.clientWidth || 900), height: 240,
    scales: { x: { time: false }, ms: {} },
    axes: [
      { values: function (u, ticks) { return ticks.map(function (t) { return d.labels[t] || ""; }); } },
      { label: "requests" },
      { scale: "ms", side: 1, label: "ms", grid: { show: false } },
    ],
    series: [{}, { label: "requests", stroke: "#0b57a4", width: 2 }, { label: "mean latency (ms)", scale: "ms", stroke: "#a3161a", width: 2 }],
  };
  new uPlot(opts, [d.x, d.requests, d.latency], target);
})();
