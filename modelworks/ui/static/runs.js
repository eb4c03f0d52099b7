/* The run views' charts (uPlot) and live updates: modelworks/ui/templates/runs/.
 *
 * Run page: #curves holds the URLs. Its series come cut down to their min/max envelope by the
 * server; while the job is live, the page polls .../live every POLL_MS for the points and log
 * lines recorded since it last asked, stops when the job ends (then inserts the run's report),
 * and does not poll at all while the tab is hidden. Compare: #compare-curves. Study: #study.
 * When every chart of a page is drawn, <html data-charts-drawn> is set and the performance mark
 * "charts-drawn" made (what the tests and bench/ui.py wait for).
 * All text goes in through textContent: names are never parsed as HTML.
 */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var MAX_KEPT = 5000; // a series longer than this in the page: ask for the whole series again, cut down
  var COLORS = ["#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d"];
  var LOG_LINES = 1000;

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  /* The data the page came with (<script type="application/json" id=...>), else the URL's answer. */
  function initial(id, url) {
    var el = document.getElementById(id);
    return el ? Promise.resolve(JSON.parse(el.textContent)) : getJSON(url);
  }

  function drawn() {
    if (document.documentElement.dataset.chartsDrawn) return;
    document.documentElement.dataset.chartsDrawn = "1";
    if (window.performance && performance.mark) performance.mark("charts-drawn");
  }

  /* ---- a chart of named series over one x axis */

  function Chart(el, xLabel, style) {
    this.el = el;
    this.xLabel = xLabel;
    this.style = style || function () { return {}; };
    this.plot = null;
    this.names = "";
  }

  Chart.prototype.draw = function (series, names, colors) {
    // series: {name: {x: [], y: []}}; names: the ones to draw, in order
    names = names.filter(function (n) { return series[n] && series[n].x.length; });
    if (!names.length) {
      this.el.closest("figure").hidden = true;
      return;
    }
    this.el.closest("figure").hidden = false;
    var data = uPlot.join(names.map(function (n) { return [series[n].x, series[n].y]; }));
    var key = names.join("\u0000");
    if (this.plot && key === this.names) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    var self = this;
    var opts = {
      width: Math.max(280, Math.min(this.el.clientWidth || 560, 900)),
      height: 300,
      scales: { x: { time: false } },
      axes: [{ label: this.xLabel }, {}],
      series: [{ label: this.xLabel }].concat(names.map(function (n, i) {
        var s = { label: n, stroke: (colors && colors[i]) || COLORS[i % COLORS.length], width: 1.5,
                  spanGaps: true, points: { show: false } };
        return Object.assign(s, self.style(n, i));
      })),
    };
    this.plot = new uPlot(opts, data, this.el);
    this.names = key;
  };

  /* ---- series held by a page: replaced by a whole answer, appended to by a live one */

  function merge(held, answer) {
    var names = Object.keys(answer.series);
    if (answer.whole) {
      Object.keys(held).forEach(function (n) { delete held[n]; });
    }
    names.forEach(function (n) {
      var s = answer.series[n];
      if (answer.whole || !held[n]) {
        held[n] = { x: s.x.slice(), y: s.y.slice() };
      } else {
        Array.prototype.push.apply(held[n].x, s.x);
        Array.prototype.push.apply(held[n].y, s.y);
      }
    });
  }

  function tooLong(held) {
    return Object.keys(held).some(function (n) { return held[n].x.length > MAX_KEPT; });
  }

  /* ---- polling that stops when told, and while the tab is hidden */

  function Poller(tick) {
    var timer = null, busy = false, stopped = false;
    function run() {
      timer = null;
      if (stopped || document.hidden) return;
      busy = true;
      tick().then(function (done) {
        busy = false;
        if (done) stopped = true; else schedule();
      }, function () {
        busy = false;
        schedule();
      });
    }
    function schedule() {
      if (!stopped && !document.hidden && timer === null) timer = setTimeout(run, POLL_MS);
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        if (timer !== null) clearTimeout(timer);
        timer = null;
      } else if (!stopped && !busy && timer === null) {
        run(); // catch up at once
      }
    });
    return { start: schedule };
  }

  /* ---- the log tail */

  function appendLog(pre, lines) {
    if (!pre || !lines.length) return;
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(lines.map(function (l) { return l.line + "\n"; }).join("")));
    var text = pre.textContent.split("\n");
    if (text.length > LOG_LINES + 1) pre.textContent = text.slice(text.length - LOG_LINES - 1).join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function setState(state) {
    var el = document.getElementById("job-state");
    if (!el || el.dataset.state === state) return;
    var labels = JSON.parse(el.dataset.labels || "{}");
    el.dataset.state = state;
    el.className = "state state-" + state;
    el.textContent = labels[state] || state;
  }

  /* ---- run page and study page */

  function isLoss(name) { return /loss/i.test(name); }

  function livePage(root, draw) {
    var held = {}, last = 0, logSeq = Number(root.dataset.logSeq || 0);
    function show(answer, live) {
      merge(held, answer);
      last = answer.last_id;
      var names = Object.keys(held), any = names.length > 0;
      var added = names.reduce(function (n, k) { return n + (answer.series[k] ? answer.series[k].x.length : 0); }, 0);
      // What the page holds, and how many points arrived by polls while the job was running.
      root.dataset.points = names.reduce(function (n, k) { return n + held[k].x.length; }, 0);
      if (live && answer.state === "running" && !answer.whole) {
        root.dataset.livePoints = Number(root.dataset.livePoints || 0) + added;
      }
      document.getElementById("curves-empty").hidden = any;
      draw(held);
      drawn();
    }
    initial("series-data", root.dataset.series).then(function (answer) {
      show(answer);
      if (root.dataset.polling !== "on") return;
      Poller(function () {
        var after = tooLong(held) ? 0 : last;
        return getJSON(root.dataset.live + "?after=" + after + "&log_after=" + logSeq).then(function (a) {
          show(a, true);
          if (a.logs.length) logSeq = a.logs[a.logs.length - 1].seq;
          appendLog(document.getElementById("log"), a.logs);
          setState(a.state);
          if (a.done) root.dispatchEvent(new CustomEvent("job-done", { detail: a }));
          return a.done;
        });
      }).start();
    });
  }

  function label(root, text) {
    return JSON.parse(root.dataset.labels || "{}")[text] || text;
  }

  function runPage(root) {
    var loss = new Chart(document.getElementById("chart-loss"), label(root, "step"));
    var metrics = new Chart(document.getElementById("chart-metrics"), label(root, "step"));
    root.addEventListener("job-done", function (e) {
      if (!e.detail.run) return;
      fetch(root.dataset.runBase + e.detail.run + "/report", { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          if (!html) return;
          var parsed = new DOMParser().parseFromString(html, "text/html"); // inert: its scripts never run
          var box = document.getElementById("finished");
          box.replaceChildren.apply(box, Array.prototype.slice.call(parsed.body.childNodes));
          box.dataset.loaded = "1";
        });
    });
    livePage(root, function (held) {
      var names = Object.keys(held);
      loss.draw(held, names.filter(isLoss));
      metrics.draw(held, names.filter(function (n) { return !isLoss(n); }));
    });
  }

  function bestSoFar(ys, direction) {
    var best = null;
    return ys.map(function (y) {
      if (best === null || (direction === "min" ? y < best : y > best)) best = y;
      return best;
    });
  }

  function studyPage(root) {
    var metric = root.dataset.metric, direction = root.dataset.direction;
    var best = label(root, "best so far");
    var chart = new Chart(document.getElementById("chart-history"), label(root, "trial"), function (name, i) {
      return i === 0
        ? { paths: function () { return null; }, points: { show: true, size: 6 } }
        : { paths: uPlot.paths.stepped({ align: 1 }) };
    });
    livePage(root, function (held) {
      var name = metric && held[metric] ? metric : Object.keys(held)[0];
      if (!name) return;
      var s = held[name];
      var both = {};
      both[name] = s;
      both[best] = { x: s.x, y: bestSoFar(s.y, direction) };
      chart.draw(both, [name, best]);
    });
    importance(root);
  }

  function importance(root) {
    var box = document.getElementById("importance");
    getJSON(root.dataset.importance).then(function (a) {
      box.replaceChildren();
      if (a.note) {
        var p = document.createElement("p");
        p.className = "muted";
        p.textContent = a.note;
        box.appendChild(p);
      }
      if (a.importance) {
        var grid = document.createElement("div");
        grid.className = "bars";
        grid.setAttribute("role", "list");
        Object.keys(a.importance).forEach(function (name) {
          var share = a.importance[name];
          var label = document.createElement("span");
          label.textContent = name;
          var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
          svg.setAttribute("aria-hidden", "true");
          var rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
          rect.setAttribute("width", (100 * share).toFixed(1) + "%");
          rect.setAttribute("height", "14");
          rect.setAttribute("fill", COLORS[0]);
          svg.appendChild(rect);
          var value = document.createElement("span");
          value.className = "num";
          value.textContent = share.toFixed(3);
          var row = document.createElement("div");
          row.setAttribute("role", "listitem");
          row.append(label, svg, value);
          grid.appendChild(row);
        });
        box.appendChild(grid);
      }
      box.setAttribute("aria-busy", "false");
    });
  }

  /* ---- compare */

  function comparePage(root) {
    var holder = document.getElementById("compare-charts");
    initial("compare-data", root.dataset.compare).then(function (answer) {
      var names = [];
      answer.runs.forEach(function (r) {
        Object.keys(r.series).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
      });
      names.sort(function (a, b) { return isLoss(b) - isLoss(a) || (a < b ? -1 : a > b ? 1 : 0); });
      document.getElementById("curves-empty").hidden = names.length > 0;
      names.forEach(function (name) {
        var fig = document.createElement("figure");
        var el = document.createElement("div");
        el.className = "chart";
        el.setAttribute("role", "img");
        el.setAttribute("aria-label", name);
        var cap = document.createElement("figcaption");
        cap.textContent = name;
        fig.append(el, cap);
        holder.appendChild(fig);
        var series = {}, labels = [], colors = [];
        answer.runs.forEach(function (r) {
          if (!r.series[name]) return;
          series[r.name] = r.series[name];
          labels.push(r.name);
          colors.push(r.color);
        });
        new Chart(el, label(root, "step")).draw(series, labels, colors);
      });
      drawn();
    });
  }

  function start() {
    var run = document.getElementById("curves");
    var study = document.getElementById("study");
    var compare = document.getElementById("compare-curves");
    if (run) runPage(run);
    else if (study) studyPage(study);
    else if (compare) comparePage(compare);
    else drawn();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
