/* A deployment's charts, drawn by uPlot from the JSON the page carries (<script type="application/json">:
   data, never executed): requests and mean latency per day, and beside it p50/p99 latency per day
   (estimated on the server from the meters' latency histograms). */
(function () {
  "use strict";
  var data = document.getElementById("traffic-data");
  if (!data || !window.uPlot) return;
  var d = JSON.parse(data.textContent);
  var days = function (u, ticks) { return ticks.map(function (t) { return d.labels[t] || ""; }); };
  var width = function (el) { return Math.min(900, el.clientWidth || 440); };
  var traffic = document.getElementById("traffic-chart");
  if (traffic) {
    new uPlot({
      width: width(traffic), height: 240,
      scales: { x: { time: false }, ms: {} },
      axes: [{ values: days }, { label: "requests" }, { scale: "ms", side: 1, label: "ms", grid: { show: false } }],
      series: [{}, { label: "requests", stroke: "#0b57a4", width: 2 },
        { label: "mean latency (ms)", scale: "ms", stroke: "#a3161a", width: 2 }],
    }, [d.x, d.requests, d.latency], traffic);
  }
  var latency = document.getElementById("latency-chart");
  if (latency) {
    new uPlot({
      width: width(latency), height: 240,
      scales: { x: { time: false } },
      axes: [{ values: days }, { label: "ms" }],
      series: [{}, { label: "p50 (ms)", stroke: "#0b6e3a", width: 2 }, { label: "p99 (ms)", stroke: "#a3161a", width: 2 }],
    }, [d.x, d.p50, d.p99], latency);
  }
})();
