/**
 * `GET /`: the service's status page, plain HTML that refreshes itself every 5 s:
 * endpoints (online/offline, last heartbeat), queued/running/done counts, recent tasks.
 *
 * Anonymous requests see the service-wide counts only; a request with a bearer token sees that
 * user's endpoints and tasks (ids only, never payloads or results). Only loopback clients are
 * served.
 *
 * @example
 * ```ts
 * import { statusPageHtml } from "./status_page.ts";
 * statusPageHtml({ endpoints: [], counts: { queued: 0, running: 0, done: 0 }, tasks: [] });
 * ```
 * @module
 */
import { escapeHtml, html } from "./http.ts";
import type { ServiceStore, TaskCounts } from "./store.ts";
import type { Forwarder } from "./forwarder.ts";
import type { AuthServer } from "./auth.ts";
import { describeSharing, mayUseEndpoint } from "./sharing.ts";

/** What the page shows. */
export interface StatusPageData {
  /** Registered endpoints. */
  endpoints: {
    uuid: string;
    name: string;
    online: boolean;
    lastHeartbeat: number | null;
    /** Who may use it ("alice only", "alice and members of lab", "anyone (public)"). */
    sharedWith?: string;
    /** An unmodified 0.3 endpoint, trusted on first use (`--legacy-endpoints`). */
    legacy?: boolean;
  }[];
  /** How many registered endpoints run in legacy mode (service-wide). */
  legacyCount?: number;
  /** Task counts. */
  counts: TaskCounts;
  /** Recent tasks. */
  tasks: { uuid: string; endpoint: string; status: string; created: number }[];
  /** False for an anonymous request: the lists are withheld, not empty. */
  signedIn?: boolean;
}

const _ANON =
  "Send <code>Authorization: Bearer &lt;access token&gt;</code> to list your own endpoints and tasks";

function _time(t: number | null): string {
  return t === null ? "never" : new Date(t * 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

/**
 * Render the page.
 *
 * @example
 * ```ts
 * statusPageHtml({ endpoints: [], counts: { queued: 1, running: 0, done: 2 }, tasks: [] })
 *   .includes('id="count-queued">1<'); // true
 * ```
 */
export function statusPageHtml(d: StatusPageData): string {
  const eps = d.endpoints.map((e) =>
    `<tr class="endpoint ${e.online ? "online" : "offline"}" data-endpoint-id="${
      escapeHtml(e.uuid)
    }">` +
    `<td>${escapeHtml(e.name)}</td><td><code>${escapeHtml(e.uuid)}</code></td>` +
    `<td class="state">${e.online ? "online" : "offline"}${
      e.legacy ? ' <span class="legacy">(legacy: trusted on first use)</span>' : ""
    }</td>` +
    `<td class="heartbeat">${_time(e.lastHeartbeat)}</td>` +
    `<td class="shared-with">${escapeHtml(e.sharedWith ?? "")}</td></tr>`
  ).join("\n");
  const tasks = d.tasks.map((t) =>
    `<tr class="task" data-task-id="${escapeHtml(t.uuid)}"><td><code>${
      escapeHtml(t.uuid)
    }</code></td>` +
    `<td><code>${escapeHtml(t.endpoint)}</code></td><td class="status">${
      escapeHtml(t.status)
    }</td>` +
    `<td>${_time(t.created)}</td></tr>`
  ).join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>funcX local service</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}.online .state{color:#070}.offline .state{color:#a00}</style>
</head><body>
<h1>funcX local service</h1>
<p><a href="/dashboard/" id="dashboard-link">Open the dashboard (sign in with the browser)</a></p>
<p id="updated">Updated ${_time(Date.now() / 1000)} (refreshes every 5 s)</p>
<h2>Tasks</h2>
<ul id="counts">
<li>Queued: <span id="count-queued">${d.counts.queued}</span></li>
<li>Running: <span id="count-running">${d.counts.running}</span></li>
<li>Done: <span id="count-done">${d.counts.done}</span></li>
</ul>
<h2>Endpoints</h2>
${
    d.legacyCount
      ? `<p id="legacy-count">Legacy endpoints (unmodified funcX 0.3, trusted on first use): ${d.legacyCount}</p>\n`
      : ""
  }<table id="endpoints"><thead><tr><th>Name</th><th>ID</th><th>State</th><th>Last heartbeat</th><th>Who may use it</th></tr></thead>
<tbody>
${
    eps ||
    `<tr class="empty"><td colspan="5">${
      d.signedIn === false ? _ANON : "No endpoints registered"
    }</td></tr>`
  }
</tbody></table>
<h2>Recent tasks</h2>
<table id="tasks"><thead><tr><th>Task</th><th>Endpoint</th><th>Status</th><th>Submitted</th></tr></thead>
<tbody>
${
    tasks ||
    `<tr class="empty"><td colspan="4">${d.signedIn === false ? _ANON : "No tasks"}</td></tr>`
  }
</tbody></table>
</body></html>
`;
}

/**
 * Serve the page (403 for non-loopback clients). Without a token it shows the service-wide
 * task counts only; with `Authorization: Bearer <token>` it also lists that user's endpoints
 * and recent tasks (never another user's: on a shared login node every local user can reach it).
 *
 * @example
 * ```ts ignore
 * const res = renderStatusPage(req, info, store, forwarder, auth);
 * ```
 */
export function renderStatusPage(
  req: Request,
  info: Deno.ServeHandlerInfo,
  store: ServiceStore,
  forwarder: Forwarder,
  auth: AuthServer,
): Response {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return html("<p>Method not allowed</p>", 405, { allow: "GET, HEAD" });
  }
  const remote = (info.remoteAddr as Deno.NetAddr).hostname ?? "";
  const loopback = remote === "127.0.0.1" || remote === "::1" || remote.startsWith("127.") ||
    remote === "::ffff:127.0.0.1";
  if (!loopback) {
    return html("<p>The status page is only available from this machine.</p>", 403);
  }
  let userId: number | undefined;
  if (req.headers.get("authorization")) {
    try {
      userId = auth.authenticate(req).userId;
    } catch (e) {
      return html(`<p>${escapeHtml((e as Error).message)}</p>`, 401);
    }
  }
  const legacy = store.legacy.list();
  const data: StatusPageData = {
    endpoints: userId === undefined ? [] : _usableEndpoints(store, userId).map((e) => ({
      uuid: e.uuid,
      name: e.name,
      online: forwarder.isOnline(e.uuid),
      lastHeartbeat: forwarder.lastSeen(e.uuid) ?? e.last_heartbeat,
      sharedWith: _sharedWith(store, e.uuid, e.user_id),
      legacy: legacy.has(e.uuid),
    })),
    legacyCount: legacy.size,
    counts: store.taskCounts(userId),
    tasks: userId === undefined ? [] : store.recentTasks(20, userId).map((t) => ({
      uuid: t.uuid,
      endpoint: t.endpoint_uuid,
      status: t.status,
      created: t.created_at,
    })),
    signedIn: userId !== undefined,
  };
  return html(statusPageHtml(data));
}

/** The user's own endpoints and those shared with them (public or through a group). */
function _usableEndpoints(store: ServiceStore, userId: number) {
  const groups = store.sharing.groupIdsOf(userId);
  return store.listEndpoints().filter((e) =>
    mayUseEndpoint(
      { ownerId: e.user_id, ...store.sharing.endpointSharing(e.uuid) },
      userId,
      groups,
    )
  );
}

function _sharedWith(store: ServiceStore, uuid: string, ownerId: number): string {
  const s = store.sharing.endpointSharing(uuid);
  const names = s.groups.map((id) => store.sharing.findGroup(id)?.name ?? id);
  return describeSharing(store.sharing.identity(ownerId)?.username ?? "?", {
    public: s.public,
    groups: names,
  });
}
