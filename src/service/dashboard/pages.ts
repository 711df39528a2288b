/**
 * The dashboard's HTML, rendered on the server from view data (no I/O). Every page works
 * without JavaScript; with it, `dashboard.js` refreshes the `[data-live]` parts in place and
 * draws the charts. No inline script or style (the CSP forbids both), no token anywhere.
 *
 * @example
 * ```ts
 * import { overviewPage } from "./pages.ts";
 * overviewPage({ user: null, counts: { queued: 0, running: 0, done: 0 }, showCounts: true });
 * ```
 * @module
 */
import { escapeHtml as e } from "../http.ts";
import type { TaskCounts } from "../store.ts";
import type { TaskLogRow } from "../task_log.ts";
import type { EndpointView, TaskView } from "./data.ts";

/** Who is looking (null: anonymous). */
export interface Viewer {
  username: string;
  csrf: string;
}

/** Base path of the dashboard. */
export const BASE = "/dashboard";

/**
 * An epoch time as `YYYY-MM-DD HH:MM:SS UTC`, or "—".
 *
 * @example
 * ```ts
 * fmtTime(0); // "1970-01-01 00:00:00 UTC"
 * ```
 */
export function fmtTime(t: number | null | undefined): string {
  if (t === null || t === undefined) return "—";
  return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/**
 * A duration in seconds as text, or "—".
 *
 * @example
 * ```ts
 * fmtDuration(0.0123); // "12.3 ms"
 * fmtDuration(0.00002); // "20 µs"
 * ```
 */
export function fmtDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return "—";
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  return `${(s / 60).toFixed(1)} min`;
}

function _layout(title: string, viewer: Viewer | null, body: string): string {
  const nav = viewer
    ? `<nav><a href="${BASE}/">Overview</a> <a href="${BASE}/tasks">Tasks</a>
<span class="who">Signed in as <strong id="username">${e(viewer.username)}</strong></span>
<form method="post" action="${BASE}/logout" class="inline"><input type="hidden" name="csrf" value="${
      e(viewer.csrf)
    }"><button type="submit" id="sign-out">Sign out</button></form></nav>`
    : `<nav><a href="${BASE}/">Overview</a> <a href="${BASE}/login" id="sign-in">Sign in</a></nav>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)} · funcX</title>
<link rel="stylesheet" href="${BASE}/static/dashboard.css">
<script src="${BASE}/static/dashboard.js" defer></script>
</head><body>
<header><h1><a href="${BASE}/">funcX</a> · ${e(title)}</h1>${nav}</header>
<main id="main">
${body}
</main>
</body></html>
`;
}

function _counts(c: TaskCounts, mine: boolean): string {
  return `<section><h2>${mine ? "Your tasks" : "Tasks (all users)"}</h2>
<ul id="counts" class="counts" data-live="counts">
<li>Queued <span id="count-queued">${c.queued}</span></li>
<li>Running <span id="count-running">${c.running}</span></li>
<li>Done, not fetched <span id="count-done">${c.done}</span></li>
</ul></section>`;
}

function _state(ep: EndpointView): string {
  const degraded = ep.online && ep.problems.length > 0;
  const s = !ep.online ? "offline" : degraded ? "degraded" : "online";
  return `<span class="state ${s}">${s}</span>`;
}

function _workers(ep: EndpointView): string {
  const r = ep.report;
  if (!r) return "no report yet";
  return `${r.busy} busy / ${r.idle} idle`;
}

function _endpointRows(eps: EndpointView[]): string {
  if (eps.length === 0) {
    return `<tr class="empty"><td colspan="8">No endpoints you may use yet.</td></tr>`;
  }
  return eps.map((ep) =>
    `<tr class="endpoint" data-endpoint-id="${e(ep.uuid)}">
<td><a href="${BASE}/endpoints/${e(ep.uuid)}">${e(ep.name)}</a>${
      ep.own ? "" : ` <small class="shared">shared by ${e(ep.owner)}</small>`
    }</td>
<td>${_state(ep)}</td><td class="heartbeat">${fmtTime(ep.lastHeartbeat)}</td>
<td>${e(ep.version)}</td><td class="workers">${_workers(ep)}</td>
<td class="queued">${ep.queued}</td><td class="running">${ep.running}</td>
<td class="shared-with">${e(ep.sharedWith)}</td></tr>`
  ).join("\n");
}

function _taskRows(
  rows: TaskLogRow[],
  names: Map<string, string>,
  fnNames: Map<string, string>,
): string {
  if (rows.length === 0) return `<tr class="empty"><td colspan="6">No tasks.</td></tr>`;
  return rows.map((t) =>
    `<tr class="task ${e(t.status)}" data-task-id="${e(t.uuid)}">
<td><a href="${BASE}/tasks/${e(t.uuid)}"><code>${e(t.uuid)}</code></a></td>
<td>${e(names.get(t.endpoint_uuid) ?? t.endpoint_uuid)}</td>
<td title="${e(t.function_uuid)}">${
      fnNames.has(t.function_uuid)
        ? e(fnNames.get(t.function_uuid)!)
        : `<code>${e(t.function_uuid.slice(0, 8))}</code>`
    }</td>
<td class="status">${e(t.status)}</td><td>${fmtTime(t.created_at)}</td>
<td>${fmtDuration(t.finished_at === null ? null : t.finished_at - t.created_at)}</td></tr>`
  ).join("\n");
}

const _TASK_HEAD =
  `<thead><tr><th>Task</th><th>Endpoint</th><th>Function</th><th>State</th><th>Received</th><th>Latency</th></tr></thead>`;

function _charts(endpoint: string | null): string {
  const attr = endpoint ? ` data-endpoint="${e(endpoint)}"` : "";
  return `<section id="charts" class="charts"${attr}>
<h2>Last hour</h2>
<noscript><p>The charts need JavaScript; the numbers are at <a href="${BASE}/api/metrics${
    endpoint ? `?endpoint=${e(endpoint)}` : ""
  }">${BASE}/api/metrics</a>.</p></noscript>
<div class="chart" data-kind="throughput"><h3>Tasks per second</h3></div>
<div class="chart" data-kind="latency"><h3>Latency (received → finished): p50, p90, p99</h3></div>
<div class="chart" data-kind="workers"><h3>Workers busy</h3></div>
</section>`;
}

/**
 * The overview: counts; signed in, also the endpoints, recent tasks and charts.
 *
 * @example
 * ```ts
 * overviewPage({ user: null, counts: { queued: 1, running: 0, done: 0 }, showCounts: true });
 * ```
 */
export function overviewPage(d: {
  user: Viewer | null;
  counts: TaskCounts;
  showCounts: boolean;
  endpoints?: EndpointView[];
  recent?: TaskLogRow[];
  /** Names of functions the viewer may run, by id. */
  functions?: Map<string, string>;
}): string {
  if (!d.user) {
    return _layout(
      "Dashboard",
      null,
      `${d.showCounts ? _counts(d.counts, false) : ""}
<p id="anonymous">Sign in to see your endpoints, the endpoints shared with you and your tasks.</p>
<p><a class="button" href="${BASE}/login">Sign in</a></p>`,
    );
  }
  const names = new Map((d.endpoints ?? []).map((x) => [x.uuid, x.name]));
  return _layout(
    "Dashboard",
    d.user,
    `<div data-live="overview" id="live">
${_counts(d.counts, true)}
<section><h2>Endpoints</h2>
<table id="endpoints"><thead><tr><th>Name</th><th>State</th><th>Last heartbeat</th><th>Version</th><th>Workers</th><th>Queued</th><th>Running</th><th>Who may use it</th></tr></thead>
<tbody>
${_endpointRows(d.endpoints ?? [])}
</tbody></table></section>
<section><h2>Recent tasks</h2>
<table id="tasks">${_TASK_HEAD}<tbody>
${_taskRows(d.recent ?? [], names, d.functions ?? new Map())}
</tbody></table>
<p><a href="${BASE}/tasks">All tasks…</a></p></section>
</div>
${_charts(null)}`,
  );
}

/**
 * One endpoint.
 *
 * @example
 * ```ts ignore
 * endpointPage(viewer, ep, recentTasks);
 * ```
 */
export function endpointPage(
  viewer: Viewer,
  ep: EndpointView,
  recent: TaskLogRow[],
  functions: Map<string, string> = new Map(),
): string {
  const r = ep.report;
  const dl = (k: string, v: string, id = "") =>
    `<dt>${k}</dt><dd${id ? ` id="${id}"` : ""}>${v}</dd>`;
  const blocks = r
    ? `${r.blocks ?? "?"} (min ${r.minBlocks ?? "?"}, max ${r.maxBlocks ?? "?"})`
    : "—";
  const problems = ep.problems.length
    ? `<ul id="problems">${ep.problems.map((p) => `<li>${e(p)}</li>`).join("")}</ul>`
    : `<p id="problems">None known.</p>`;
  return _layout(
    ep.name,
    viewer,
    `<div data-live="endpoint" id="live">
<section><h2>Endpoint <code>${e(ep.uuid)}</code></h2>
<dl class="facts">
${dl("State", _state(ep), "ep-state")}
${dl("Last heartbeat", fmtTime(ep.lastHeartbeat))}
${dl("Version", e(ep.version))}
${dl("Host", e(ep.host || "—"), "ep-host")}
${dl("Platform", e(ep.platform || "—"))}
${dl("Registered", fmtTime(ep.registeredAt))}
${dl("Owner", e(ep.owner))}
${dl("Who may use it", e(ep.sharedWith))}
${dl("Last status report", r ? fmtTime(r.ts) : "—")}
${dl("Blocks", blocks)}
${dl("Managers", r ? String(r.managers) : "—")}
${dl("Workers", r ? `${r.workers} (${r.busy} busy, ${r.idle} idle)` : "—", "ep-workers")}
${dl("Tasks at the endpoint", r ? `${r.pending} pending, ${r.outstanding} outstanding` : "—")}
${dl("Tasks held by the service", `${ep.queued} queued, ${ep.running} sent`)}
</dl></section>
<section><h2>Recent errors</h2>${problems}</section>
<section><h2>Your recent tasks here</h2>
<table id="tasks">${_TASK_HEAD}<tbody>
${_taskRows(recent, new Map([[ep.uuid, ep.name]]), functions)}
</tbody></table>
<p><a href="${BASE}/tasks?endpoint=${e(ep.uuid)}">All your tasks on this endpoint…</a></p></section>
</div>
${_charts(ep.uuid)}`,
  );
}

/** Filters shown on the task list. */
export interface TaskListQuery {
  endpoint: string;
  function: string;
  status: string;
  /** Minutes back, "" = any time. */
  since: string;
  page: number;
}

const _STATES = [
  "waiting-for-ep",
  "waiting-for-nodes",
  "waiting-for-launch",
  "running",
  "success",
  "failed",
];
const _SINCE: [string, string][] = [["", "any time"], ["15", "last 15 min"], [
  "60",
  "last hour",
], ["1440", "last 24 h"]];

/**
 * The filterable, paged task list.
 *
 * @example
 * ```ts ignore
 * tasksPage(viewer, q, endpoints, { rows, total }, 50);
 * ```
 */
export function tasksPage(
  viewer: Viewer,
  q: TaskListQuery,
  endpoints: EndpointView[],
  page: { rows: TaskLogRow[]; total: number },
  pageSize: number,
  functions: Map<string, string> = new Map(),
): string {
  const opt = (v: string, label: string, sel: string) =>
    `<option value="${e(v)}"${v === sel ? " selected" : ""}>${e(label)}</option>`;
  const names = new Map(endpoints.map((x) => [x.uuid, x.name]));
  const pages = Math.max(1, Math.ceil(page.total / pageSize));
  const link = (p: number) => {
    const u = new URLSearchParams();
    for (const k of ["endpoint", "function", "status", "since"] as const) if (q[k]) u.set(k, q[k]);
    u.set("page", String(p));
    return `${BASE}/tasks?${e(u.toString())}`;
  };
  const first = page.total === 0 ? 0 : (q.page - 1) * pageSize + 1;
  return _layout(
    "Tasks",
    viewer,
    `<form method="get" action="${BASE}/tasks" id="filters" class="filters">
<label>Endpoint <select name="endpoint">${opt("", "any", q.endpoint)}${
      endpoints.map((x) => opt(x.uuid, x.name, q.endpoint)).join("")
    }</select></label>
<label>Function <input name="function" list="function-ids" value="${
      e(q.function)
    }" placeholder="function id" size="38"></label>
<datalist id="function-ids">${
      [...functions].map(([id, name]) => `<option value="${e(id)}">${e(name)}</option>`).join("")
    }</datalist>
<label>State <select name="status">${opt("", "any", q.status)}${
      _STATES.map((s) => opt(s, s, q.status)).join("")
    }</select></label>
<label>Received <select name="since">${
      _SINCE.map(([v, l]) => opt(v, l, q.since)).join("")
    }</select></label>
<button type="submit">Filter</button>
</form>
<div data-live="tasks" id="live">
<p id="task-count">${page.total} task(s)${
      page.total ? `, ${first}–${Math.min(page.total, q.page * pageSize)} shown` : ""
    }</p>
<table id="tasks">${_TASK_HEAD}<tbody>
${_taskRows(page.rows, names, functions)}
</tbody></table>
</div>
<p class="pager">${
      q.page > 1 ? `<a href="${link(q.page - 1)}" id="prev" rel="prev">← newer</a>` : ""
    } page ${q.page} of ${pages} ${
      q.page < pages ? `<a href="${link(q.page + 1)}" id="next" rel="next">older →</a>` : ""
    }</p>`,
  );
}

/**
 * One task: timings, result preview or remote traceback, the function's source.
 *
 * @example
 * ```ts ignore
 * taskPage(viewer, view);
 * ```
 */
export function taskPage(viewer: Viewer, v: TaskView): string {
  const t = v.row;
  const d = (a: number | null, b: number | null) => a !== null && b !== null ? b - a : null;
  const outcome = v.result !== null
    ? `<section><h2>Result</h2><pre id="result">${e(v.result)}</pre></section>`
    : v.exception
    ? `<section><h2>Exception</h2><p id="exception"><strong>${e(v.exception.type)}</strong>: ${
      e(v.exception.message)
    }</p><h3>Remote traceback</h3><pre id="traceback">${
      e(v.exception.traceback || "(none sent)")
    }</pre></section>`
    : v.note
    ? `<section><h2>Outcome</h2><p id="note">${e(v.note)}</p></section>`
    : `<section><h2>Outcome</h2><p id="pending">Not finished yet.</p></section>`;
  const source = v.source !== null
    ? `<section><h2>Function ${e(v.functionName ?? "")}</h2><pre id="source">${
      e(v.source)
    }</pre></section>`
    : `<section><h2>Function</h2><p>${
      v.functionName ? `${e(v.functionName)}: registered without source.` : "Not available."
    }</p></section>`;
  return _layout(
    "Task",
    viewer,
    `<div data-live="task" id="live">
<section><h2>Task <code id="task-id">${e(t.uuid)}</code></h2>
<dl class="facts">
<dt>State</dt><dd id="task-status" class="status ${e(t.status)}">${e(t.status)}</dd>
<dt>Endpoint</dt><dd><a href="${BASE}/endpoints/${e(t.endpoint_uuid)}">${
      e(v.endpointName ?? t.endpoint_uuid)
    }</a></dd>
<dt>Function</dt><dd><code>${e(t.function_uuid)}</code></dd>
</dl>
<table id="timings"><thead><tr><th>Step</th><th>Time</th><th>Since received</th></tr></thead><tbody>
<tr><td>Received</td><td id="t-received">${fmtTime(t.created_at)}</td><td>0</td></tr>
<tr><td>Dispatched to the endpoint</td><td id="t-dispatched">${fmtTime(t.dispatched_at)}</td><td>${
      fmtDuration(d(t.created_at, t.dispatched_at))
    }</td></tr>
<tr><td>Started</td><td id="t-started">${fmtTime(t.started_at)}</td><td>${
      fmtDuration(d(t.created_at, t.started_at))
    }</td></tr>
<tr><td>Finished</td><td id="t-finished">${fmtTime(t.finished_at)}</td><td>${
      fmtDuration(d(t.created_at, t.finished_at))
    }</td></tr>
</tbody></table>
${
      t.exec_start !== null
        ? `<p id="exec-time">Ran for ${fmtDuration(d(t.exec_start, t.exec_end))} on the worker.</p>`
        : ""
    }
</section>
${outcome}
</div>
${source}`,
  );
}

/**
 * A short page for errors (not found, forbidden, failed sign-in).
 *
 * @example
 * ```ts
 * messagePage(null, "Not found", "No such task.");
 * ```
 */
export function messagePage(viewer: Viewer | null, title: string, text: string): string {
  return _layout(title, viewer, `<p id="message">${e(text)}</p>`);
}
