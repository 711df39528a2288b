/**
 * The chart of `deno task bench --scale`: throughput and p99 latency against N (log scale),
 * one panel for the interchange (managers) and one for the service (endpoints), as a
 * self-contained SVG.
 *
 * @example
 * ```ts
 * import { scaleChartSvg } from "./scale_chart.ts";
 * const svg = scaleChartSvg([{ title: "interchange", xLabel: "managers",
 *   points: [{ n: 1, tasksPerSecond: 100, p99Ms: 2 }] }]);
 * ```
 * @module
 */

/** One panel's data. */
export interface ChartPanel {
  title: string;
  xLabel: string;
  points: { n: number; tasksPerSecond: number | null; p99Ms: number | null }[];
}

const _W = 460, _H = 300, _M = { l: 64, r: 64, t: 40, b: 48 };

function _esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function _nice(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

function _panel(p: ChartPanel, ox: number): string {
  const pts = p.points.filter((q) => q.n > 0);
  const w = _W - _M.l - _M.r, h = _H - _M.t - _M.b;
  const lx = pts.map((q) => Math.log10(q.n));
  const x0 = Math.min(0, ...lx), x1 = Math.max(x0 + 1, ...lx);
  const X = (n: number) => ox + _M.l + ((Math.log10(n) - x0) / (x1 - x0)) * w;
  const tMax = _nice(Math.max(0, ...pts.map((q) => q.tasksPerSecond ?? 0)) * 1.1);
  const lMax = _nice(Math.max(0, ...pts.map((q) => q.p99Ms ?? 0)) * 1.1);
  const Yt = (v: number) => _M.t + h - (v / tMax) * h;
  const Yl = (v: number) => _M.t + h - (v / lMax) * h;
  const out: string[] = [];
  out.push(
    `<text x="${ox + _W / 2}" y="22" text-anchor="middle" font-weight="bold">${
      _esc(p.title)
    }</text>`,
  );
  out.push(
    `<rect x="${ox + _M.l}" y="${_M.t}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const y = _M.t + h - (i / 4) * h;
    out.push(
      `<line x1="${ox + _M.l}" y1="${y}" x2="${ox + _M.l + w}" y2="${y}" stroke="#eee"/>`,
      `<text x="${ox + _M.l - 6}" y="${y + 4}" text-anchor="end" fill="#1f77b4">${
        Math.round((tMax * i) / 4)
      }</text>`,
      `<text x="${ox + _M.l + w + 6}" y="${y + 4}" fill="#d62728">${+((lMax * i) / 4).toPrecision(
        3,
      )}</text>`,
    );
  }
  for (const q of pts) {
    out.push(
      `<text x="${X(q.n)}" y="${_M.t + h + 16}" text-anchor="middle">${q.n}</text>`,
    );
  }
  out.push(
    `<text x="${ox + _M.l + w / 2}" y="${_H - 10}" text-anchor="middle">${
      _esc(p.xLabel)
    } (log scale)</text>`,
    `<text transform="translate(${ox + 16},${
      _M.t + h / 2
    }) rotate(-90)" text-anchor="middle" fill="#1f77b4">tasks/s</text>`,
    `<text transform="translate(${ox + _W - 12},${
      _M.t + h / 2
    }) rotate(90)" text-anchor="middle" fill="#d62728">p99 latency, ms</text>`,
  );
  const line = (get: (q: ChartPanel["points"][0]) => number | null, Y: (v: number) => number) =>
    pts.filter((q) => get(q) !== null).map((q) => `${X(q.n).toFixed(1)},${Y(get(q)!).toFixed(1)}`)
      .join(" ");
  out.push(
    `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${
      line((q) => q.tasksPerSecond, Yt)
    }"/>`,
    `<polyline fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="5,3" points="${
      line((q) => q.p99Ms, Yl)
    }"/>`,
  );
  for (const q of pts) {
    if (q.tasksPerSecond !== null) {
      out.push(
        `<circle cx="${X(q.n)}" cy="${Yt(q.tasksPerSecond)}" r="3" fill="#1f77b4"/>`,
      );
    }
    if (q.p99Ms !== null) {
      out.push(`<circle cx="${X(q.n)}" cy="${Yl(q.p99Ms)}" r="3" fill="#d62728"/>`);
    }
  }
  return out.join("\n");
}

/**
 * An SVG with one panel per entry of `panels`, side by side.
 *
 * @example
 * ```ts ignore
 * Deno.writeTextFileSync("bench/scale.svg", scaleChartSvg(panels));
 * ```
 */
export function scaleChartSvg(panels: ChartPanel[], caption = ""): string {
  const width = _W * panels.length, height = _H + (caption ? 20 : 0);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels.map((p, i) => _panel(p, i * _W)),
    caption
      ? `<text x="${width / 2}" y="${height - 6}" text-anchor="middle" fill="#555">${
        _esc(caption)
      }</text>`
      : "",
    `</svg>`,
    "",
  ].join("\n");
}
