/**
 * What a signed-in user may see on the dashboard, read from the store with the same rules as
 * the HTTP API (`sharing.ts`): endpoints they own or that are shared with them (public or
 * through a group), tasks they submitted, functions they may run.
 *
 * @example
 * ```ts ignore
 * import { visibleEndpoints, visibleTask } from "./data.ts";
 * const eps = visibleEndpoints(store, forwarder, userId, Date.now());
 * const task = visibleTask(store, userId, taskId); // undefined: unknown or someone else's
 * ```
 * @module
 */
import { decodeRemoteException, deserialize } from "../../protocol/serialize.ts";
import { toJsonable } from "../../protocol/jsonable.ts";
import type { Forwarder } from "../forwarder.ts";

/** What the views need from the forwarder. */
export type Liveness = Pick<Forwarder, "isOnline" | "lastSeen" | "platform">;
import { describeSharing, mayRunFunction, mayUseEndpoint } from "../sharing.ts";
import type { EndpointRow, ServiceStore } from "../store.ts";
import type { TaskLogRow } from "../task_log.ts";

/** An endpoint as the dashboard shows it. */
export interface EndpointView {
  uuid: string;
  name: string;
  owner: string;
  /** Is the viewer the owner? */
  own: boolean;
  online: boolean;
  lastHeartbeat: number | null;
  version: string;
  /** Host name the endpoint sent when it connected (else its registration address). */
  host: string;
  /** OS and Python the endpoint reported, when connected. */
  platform: string;
  registeredAt: number;
  /** Who may use it. */
  sharedWith: string;
  /** From the newest status report, null without one. */
  report: {
    ts: number;
    managers: number;
    blocks: number | null;
    minBlocks: number | null;
    maxBlocks: number | null;
    workers: number;
    idle: number;
    busy: number;
    pending: number;
    outstanding: number;
  } | null;
  /** Tasks the service holds for it (every submitter): queued = not yet sent. */
  queued: number;
  running: number;
  /** Why it may not be working as it should (empty: nothing known). */
  problems: string[];
}

/** Seconds without a status report after which an online endpoint is called degraded. */
const _REPORT_STALE = 120;

function _n(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

function _nOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/**
 * The endpoints `userId` may use, newest registration first.
 *
 * @example
 * ```ts ignore
 * visibleEndpoints(store, forwarder, 1, Date.now() / 1000).map((e) => e.name);
 * ```
 */
export function visibleEndpoints(
  store: ServiceStore,
  forwarder: Liveness,
  userId: number,
  now: number,
): EndpointView[] {
  const groups = store.sharing.groupIdsOf(userId);
  return store.listEndpoints()
    .filter((e) =>
      mayUseEndpoint(
        { ownerId: e.user_id, ...store.sharing.endpointSharing(e.uuid) },
        userId,
        groups,
      )
    )
    .map((e) => _view(store, forwarder, e, userId, now));
}

/** One endpoint if `userId` may use it. */
export function visibleEndpoint(
  store: ServiceStore,
  forwarder: Liveness,
  userId: number,
  uuid: string,
  now: number,
): EndpointView | undefined {
  const e = store.getEndpoint(uuid.toLowerCase());
  if (!e) return undefined;
  const access = { ownerId: e.user_id, ...store.sharing.endpointSharing(e.uuid) };
  if (!mayUseEndpoint(access, userId, store.sharing.groupIdsOf(userId))) return undefined;
  return _view(store, forwarder, e, userId, now);
}

function _view(
  store: ServiceStore,
  forwarder: Liveness,
  e: EndpointRow,
  userId: number,
  now: number,
): EndpointView {
  const s = store.sharing.endpointSharing(e.uuid);
  const owner = store.sharing.identity(e.user_id)?.username ?? "?";
  const names = s.groups.map((id) => store.sharing.findGroup(id)?.name ?? id);
  const [latest] = store.statusLog(e.uuid, 1);
  let report: EndpointView["report"] = null;
  if (latest) {
    const i = (latest.info ?? {}) as Record<string, unknown>;
    const workers = _n(i.total_workers);
    const idle = _n(i.idle_workers);
    const managers = _n(i.managers);
    const perBlock = _nOrNull(i.nodes_per_block);
    report = {
      ts: latest.ts,
      managers,
      blocks: perBlock ? Math.ceil(managers / perBlock) : null,
      minBlocks: _nOrNull(i.min_blocks),
      maxBlocks: _nOrNull(i.max_blocks),
      workers,
      idle,
      busy: Math.max(0, workers - idle),
      pending: _n(i.pending_tasks),
      outstanding: _n(i.outstanding_tasks),
    };
  }
  const counts = store.taskLog.endpointCounts(e.uuid);
  const online = forwarder.isOnline(e.uuid);
  const platform = forwarder.platform(e.uuid);
  const problems: string[] = [];
  if (!online) problems.push("offline: not connected to the forwarder");
  if (online && latest && now - latest.ts > _REPORT_STALE) {
    problems.push(`no status report for ${Math.round(now - latest.ts)} s`);
  }
  if (report && report.workers === 0 && report.pending + counts.running > 0) {
    problems.push(`no workers while ${report.pending + counts.running} tasks wait`);
  }
  const reported = latest ? (latest.info as Record<string, unknown>)?.errors : undefined;
  if (Array.isArray(reported)) {
    for (const r of reported.slice(0, 10)) if (typeof r === "string") problems.push(r);
  }
  for (const f of store.taskLog.lostTasks(e.uuid, now - 3600)) {
    problems.push(`${f.n} task(s) failed with ${f.type} in the last hour`);
  }
  return {
    uuid: e.uuid,
    name: e.name,
    owner,
    own: e.user_id === userId,
    online,
    lastHeartbeat: forwarder.lastSeen(e.uuid) ?? e.last_heartbeat,
    version: platform?.funcx_endpoint_version ?? e.version,
    host: platform?.hname ?? e.ip,
    platform: [
      platform?.os,
      platform?.python_v && platform.python_v !== "n/a" ? `Python ${platform.python_v}` : "",
    ]
      .filter(Boolean).join(", "),
    registeredAt: e.registered_at,
    sharedWith: describeSharing(owner, { public: s.public, groups: names }),
    report,
    queued: counts.queued,
    running: counts.running,
    problems,
  };
}

/** A task page's data. */
export interface TaskView {
  row: TaskLogRow;
  endpointName: string | null;
  functionName: string | null;
  /** Source text of the function, when registered with it and the viewer may run it. */
  source: string | null;
  /** Result preview (JSON-ish text), when it succeeded and was kept. */
  result: string | null;
  /** Exception, when it failed and was kept. */
  exception: { type: string; message: string; traceback: string } | null;
  /** Why neither is shown (too large, undecodable), if so. */
  note: string | null;
}

const _PREVIEW = 4000;

/**
 * The task if `userId` submitted it (the API's rule for task status and results).
 *
 * @example
 * ```ts ignore
 * visibleTask(store, 1, "…")?.result;
 * ```
 */
export function visibleTask(
  store: ServiceStore,
  userId: number,
  uuid: string,
): TaskView | undefined {
  const row = store.taskLog.get(uuid.toLowerCase());
  if (!row || row.user_id !== userId) return undefined;
  const fn = store.getFunction(row.function_uuid);
  const mayRun = fn !== undefined && mayRunFunction(
    {
      ownerId: fn.user_id,
      public: fn.public === 1,
      groupId: store.sharing.functionGroup(fn.uuid),
    },
    userId,
    store.sharing.groupIdsOf(userId),
  );
  const view: TaskView = {
    row,
    endpointName: store.getEndpoint(row.endpoint_uuid)?.name ?? null,
    functionName: mayRun ? fn!.name : null,
    source: mayRun && fn!.source ? fn!.source : null,
    result: null,
    exception: null,
    note: null,
  };
  if (row.status === "success" || row.status === "failed") {
    const body = row.status === "success" ? row.result : row.exception;
    if (body === null) {
      view.note = `not kept for the dashboard (${row.result_size ?? "?"} characters serialized)`;
    } else if (row.status === "success") {
      try {
        const text = JSON.stringify(toJsonable(deserialize(body)), null, 2) ?? "None";
        view.result = text.length > _PREVIEW ? text.slice(0, _PREVIEW) + "\n…" : text;
      } catch (e) {
        view.note = `result cannot be previewed: ${(e as Error).message}`;
      }
    } else {
      try {
        view.exception = decodeRemoteException(body);
      } catch (e) {
        view.note = `exception cannot be decoded: ${(e as Error).message}`;
      }
    }
  }
  return view;
}

/**
 * Names of the given functions that `userId` may run (others are left out: shown by id).
 *
 * @example
 * ```ts ignore
 * functionNames(store, 1, ["…"]).get("…"); // "square"
 * ```
 */
export function functionNames(
  store: ServiceStore,
  userId: number,
  uuids: Iterable<string>,
): Map<string, string> {
  const groups = store.sharing.groupIdsOf(userId);
  const out = new Map<string, string>();
  for (const [uuid, fn] of store.getFunctions([...new Set(uuids)])) {
    const access = {
      ownerId: fn.user_id,
      public: fn.public === 1,
      groupId: store.sharing.functionGroup(uuid),
    };
    if (mayRunFunction(access, userId, groups)) out.set(uuid, fn.name);
  }
  return out;
}
