/**
 * The dashboard's stylesheet and script, served by the binary itself (no CDN). The script
 * refreshes the `[data-live]` parts of the page in place every few seconds and draws the
 * charts as hand-written SVG from `/dashboard/api/metrics`.
 *
 * @example
 * ```ts
 * import { DASHBOARD_CSS, DASHBOARD_JS } from "./assets.ts";
 * DASHBOARD_JS.includes("api/metrics"); // true
 * ```
 * @module
 */

/** The stylesheet. */
export const DASHBOARD_CSS = `
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#234;color:#fff;padding:.6em 1.2em;display:flex;flex-wrap:wrap;align-items:center;gap:1em}
header h1{font-size:1.2em;margin:0}header a{color:#fff}
nav{display:flex;gap:1em;align-items:center;flex:1}nav .who{margin-left:auto}
form.inline{display:inline;margin:0}
main{padding:1em 1.2em;max-width:80em}
table{border-collapse:collapse;background:#fff;margin:.4em 0}
td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;font-size:.92em}
th{background:#eef}
code{font-size:.9em}
.counts{display:flex;gap:1.5em;list-style:none;padding:0}
.counts li{background:#fff;border:1px solid #ccd;padding:.5em 1em}
.counts span{font-weight:bold;font-size:1.3em;margin-left:.4em}
.state{font-weight:bold}.state.online{color:#070}.state.offline{color:#a00}.state.degraded{color:#b60}
.status.failed,tr.failed .status{color:#a00}.status.success,tr.success .status{color:#070}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0}
pre{background:#fff;border:1px solid #ccd;padding:.6em;overflow:auto;max-height:30em}
#traceback{color:#700}
.filters{display:flex;flex-wrap:wrap;gap:1em;align-items:end;margin:.5em 0}
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts h2{width:100%}
.chart{background:#fff;border:1px solid #ccd;padding:.4em}
.chart h3{font-size:.95em;margin:.2em 0}
.chart svg text{font-size:10px;fill:#555}
.legend{font-size:.8em}.legend span{margin-right:1em}
.key-0{color:#1f77b4}.key-1{color:#d62728}.key-2{color:#2ca02c}.key-3{color:#ff7f0e}.key-4{color:#9467bd}.key-5{color:#8c564b}
a.button,button{background:#246;color:#fff;border:0;padding:.4em .9em;border-radius:3px;text-decoration:none;cursor:pointer}
header button{background:#fff;color:#234}
.shared{color:#666}
#message{font-size:1.1em}
`;

/** The script (no inline script anywhere: CSP `script-src 'self'`). */
export const DASHBOARD_JS = `"use strict";
(function () {
  var BASE = "/dashboard";
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
  var SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var n = document.createElementNS(SVG, name);
    for (var k in attrs) n.setAttribute(k, String(attrs[k]));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function fmt(v) {
    if (v === 0) return "0";
    if (Math.abs(v) >= 100) return v.toFixed(0);
    if (Math.abs(v) >= 1) return v.toFixed(1);
    return v.toPrecision(2);
  }

  // series: [{label, points: [[t, v|null], ...]}], time range [t0, t1]
  function drawChart(box, series, t0, t1, unit) {
    var W = 500, H = 170, L = 46, R = 8, T = 8, B = 22;
    var max = 0, count = 0;
    series.forEach(function (s) {
      s.points.forEach(function (p) { if (p[1] !== null) { max = Math.max(max, p[1]); count++; } });
    });
    if (max === 0) max = 1;
    var old = box.querySelector("svg"); if (old) old.remove();
    var oldLegend = box.querySelector(".legend"); if (oldLegend) oldLegend.remove();
    var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
      "data-points": count, "data-max": max });
    svg.appendChild(el("title", {}, box.querySelector("h3").textContent));
    var x = function (t) { return L + (t - t0) / (t1 - t0) * (W - L - R); };
    var y = function (v) { return T + (1 - v / max) * (H - T - B); };
    svg.appendChild(el("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "#999" }));
    svg.appendChild(el("line", { x1: L, y1: T, x2: L, y2: y(0), stroke: "#999" }));
    [0, 0.5, 1].forEach(function (f) {
      svg.appendChild(el("text", { x: L - 4, y: y(max * f) + 3, "text-anchor": "end" },
        fmt(max * f) + unit));
      if (f > 0) svg.appendChild(el("line", { x1: L, y1: y(max * f), x2: W - R, y2: y(max * f),
        stroke: "#eee" }));
    });
    [[t0, "-60 min"], [(t0 + t1) / 2, "-30 min"], [t1, "now"]].forEach(function (p, i) {
      svg.appendChild(el("text", { x: x(p[0]), y: H - 6,
        "text-anchor": i === 0 ? "start" : i === 2 ? "end" : "middle" }, p[1]));
    });
    var legend = document.createElement("div"); legend.className = "legend";
    series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length], d = "", pen = false;
      s.points.forEach(function (p) {
        if (p[1] === null) { pen = false; return; }
        d += (pen ? " L" : " M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1);
        pen = true;
      });
      if (d) svg.appendChild(el("path", { d: d.trim(), fill: "none", stroke: color,
        "stroke-width": 1.6, class: "series", "data-label": s.label }));
      s.points.forEach(function (p) {
        if (p[1] !== null && p[1] > 0) svg.appendChild(el("circle", { cx: x(p[0]).toFixed(1),
          cy: y(p[1]).toFixed(1), r: 1.8, fill: color }));
      });
      var key = document.createElement("span");
      key.textContent = "\\u25A0 " + s.label; key.setAttribute("data-color", color);
      key.className = "key-" + (i % COLORS.length);
      legend.appendChild(key);
    });
    box.appendChild(svg);
    box.appendChild(legend);
  }

  function bucketPoints(s, values) {
    return values.map(function (v, i) { return [s.start + (i + 0.5) * s.step, v]; });
  }

  function drawAll(section, data) {
    var eps = data.endpoints, t1 = data.now, t0 = data.now - data.window;
    var single = eps.length === 1;
    section.querySelectorAll(".chart").forEach(function (box) {
      var kind = box.getAttribute("data-kind"), series = [], unit = "";
      eps.forEach(function (ep) {
        var s = ep.series, tag = single ? "" : ep.name + " ";
        if (kind === "throughput") {
          series.push({ label: ep.name + " tasks/s", points: bucketPoints(s, s.tasksPerSecond) });
          unit = "/s";
        } else if (kind === "latency") {
          unit = "s";
          (single ? ["p50", "p90", "p99"] : ["p50", "p99"]).forEach(function (q) {
            series.push({ label: tag + q, points: bucketPoints(s, s.latency[q]) });
          });
        } else if (kind === "workers") {
          series.push({ label: tag + "busy", points: s.workers.map(function (w) { return [w.t, w.busy]; }) });
          if (single) series.push({ label: "total", points: s.workers.map(function (w) { return [w.t, w.total]; }) });
        }
      });
      drawChart(box, series, t0, t1, unit);
    });
  }

  function loadCharts() {
    var section = document.getElementById("charts");
    if (!section) return;
    var ep = section.getAttribute("data-endpoint");
    fetch(BASE + "/api/metrics" + (ep ? "?endpoint=" + encodeURIComponent(ep) : ""),
      { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (data) { drawAll(section, data); section.setAttribute("data-loaded", "1"); })
      .catch(function (e) { section.setAttribute("data-error", String(e)); });
  }

  function refreshLive() {
    if (document.visibilityState === "hidden") return;
    var live = document.querySelectorAll("[data-live][id]");
    if (live.length === 0) return;
    fetch(location.href, { credentials: "same-origin", headers: { accept: "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) return null;
        return r.text();
      })
      .then(function (text) {
        if (text === null) return;
        var doc = new DOMParser().parseFromString(text, "text/html");
        live.forEach(function (node) {
          var fresh = doc.getElementById(node.id);
          if (fresh) node.replaceWith(document.importNode(fresh, true));
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {});
  }

  document.addEventListener("DOMContentLoaded", function () {
    loadCharts();
    setInterval(refreshLive, 5000);
    setInterval(loadCharts, 15000);
  });
})();
`;
