/**
 * The dashboard's record of tasks: one row per task with its timings (received, dispatched,
 * started, finished, the worker's own execution start/end) and, once finished, its result or
 * exception (capped at {@linkcode TASK_LOG_RESULT_CAP} characters). Unlike the `tasks` table,
 * a row stays when the SDK fetches the result (upstream deletes the task then), so a person
 * can still look at it; rows older than {@linkcode TASK_LOG_RETENTION} seconds are pruned.
 *
 * Written by {@linkcode ServiceStore} in the same transactions that change `tasks`.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { TaskLog } from "./task_log.ts";
 * const log = new TaskLog(new DatabaseSync(":memory:"));
 * log.query({ userId: 1 }, 0, 50).rows; // []
 * ```
 * @module
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { PyValue } from "../protocol/pickle/mod.ts";
import { decodeRemoteException } from "../protocol/serialize.ts";

/** Exception types that say the endpoint, not the function, failed. */
const _ENDPOINT_FAULTS = new Set(["ManagerLost", "WorkerLost", "EndpointDeleted", "WorkerDied"]);

/** Results and exceptions longer than this (characters) are not kept for the dashboard. */
export const TASK_LOG_RESULT_CAP = 64 * 1024;

/** Seconds a finished task stays in the log. */
export const TASK_LOG_RETENTION = 24 * 3600;

/** One task as the dashboard sees it. */
export interface TaskLogRow {
  /** Task id. */
  uuid: string;
  /** Submitter (users.id). */
  user_id: number;
  /** Function id. */
  function_uuid: string;
  /** Endpoint id. */
  endpoint_uuid: string;
  /** Task state. */
  status: string;
  /** Received by the service, epoch seconds. */
  created_at: number;
  /** Sent to the endpoint. */
  dispatched_at: number | null;
  /** Reported running by the endpoint (or the worker's execution start). */
  started_at: number | null;
  /** Result stored by the service. */
  finished_at: number | null;
  /** The worker's execution start (funcX 0.3.7+ `times`). */
  exec_start: number | null;
  /** The worker's execution end. */
  exec_end: number | null;
  /** Serialized result, when kept. */
  result: string | null;
  /** Serialized exception, when kept. */
  exception: string | null;
  /** Size of the serialized result or exception, characters. */
  result_size: number | null;
}

/** Filters of {@linkcode TaskLog.query}. */
export interface TaskLogFilter {
  /** Only this submitter's tasks. */
  userId: number;
  /** Endpoint id. */
  endpoint?: string;
  /** Function id. */
  function?: string;
  /** Exact task state. */
  status?: string;
  /** Created at or after (epoch seconds). */
  since?: number;
  /** Created before (epoch seconds). */
  until?: number;
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS task_log (
  uuid TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  function_uuid TEXT NOT NULL,
  endpoint_uuid TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at REAL NOT NULL,
  dispatched_at REAL,
  started_at REAL,
  finished_at REAL,
  exec_start REAL,
  exec_end REAL,
  result TEXT,
  exception TEXT,
  result_size INTEGER
);
CREATE INDEX IF NOT EXISTS task_log_user ON task_log(user_id, created_at);
CREATE INDEX IF NOT EXISTS task_log_ep_finished ON task_log(endpoint_uuid, finished_at);
`;

/**
 * The worker's `times` dict of a result message as epoch seconds, or null.
 *
 * @example
 * ```ts
 * execTimes({ execution_start: 1, execution_end: 2 }); // { start: 1, end: 2 }
 * ```
 */
export function execTimes(v: PyValue | undefined): { start: number; end: number } | null {
  const get = (k: string): unknown => {
    if (v instanceof Map) return v.get(k);
    if (v && typeof v === "object" && !Array.isArray(v)) return (v as Record<string, unknown>)[k];
    return undefined;
  };
  const num = (x: unknown): number | null => {
    if (typeof x === "number" && Number.isFinite(x)) return x;
    if (x && typeof x === "object" && "value" in x && typeof x.value === "number") return x.value;
    return null;
  };
  const start = num(get("execution_start"));
  const end = num(get("execution_end"));
  return start !== null && end !== null ? { start, end } : null;
}

/** The task log (same database as the rest of the service). */
export class TaskLog {
  #db: DatabaseSync;
  #stmts = new Map<string, StatementSync>();

  /** Apply the schema to `db`. */
  constructor(db: DatabaseSync) {
    this.#db = db;
    db.exec(_SCHEMA);
  }

  #stmt(sql: string): StatementSync {
    let st = this.#stmts.get(sql);
    if (!st) this.#stmts.set(sql, st = this.#db.prepare(sql));
    return st;
  }

  #all<T>(sql: string, ...p: SQLInputValue[]): T[] {
    return this.#stmt(sql).all(...p) as T[];
  }

  /** New tasks (`dispatched`: sent to the endpoint right away). Inside the caller's transaction. */
  inserted(
    tasks: { uuid: string; userId: number; functionUuid: string; endpointUuid: string }[],
    delivered: ReadonlySet<string>,
    now: number,
  ): void {
    const st = this.#stmt(
      "INSERT OR REPLACE INTO task_log (uuid, user_id, function_uuid, endpoint_uuid, status, created_at, dispatched_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    for (const t of tasks) {
      const sent = delivered.has(t.endpointUuid);
      st.run(
        t.uuid,
        t.userId,
        t.functionUuid,
        t.endpointUuid,
        sent ? "waiting-for-nodes" : "waiting-for-ep",
        now,
        sent ? now : null,
      );
    }
  }

  /** A status change of an unfinished task. Inside the caller's transaction. */
  statusChanged(uuid: string, status: string, now: number): void {
    this.#stmt(
      `UPDATE task_log SET status = ?,
         dispatched_at = CASE WHEN ? != 'waiting-for-ep' THEN COALESCE(dispatched_at, ?) ELSE dispatched_at END,
         started_at = CASE WHEN ? = 'running' THEN COALESCE(started_at, ?) ELSE started_at END
       WHERE uuid = ? AND finished_at IS NULL`,
    ).run(status, status, now, status, now, uuid);
  }

  /** A stored result or exception. Inside the caller's transaction. */
  finished(
    uuid: string,
    r: { result?: string; exception?: string; times?: { start: number; end: number } | null },
    now: number,
  ): void {
    const failed = r.exception !== undefined;
    const body = failed ? r.exception! : (r.result ?? "");
    const kept = body.length <= TASK_LOG_RESULT_CAP ? body : null;
    this.#stmt(
      `UPDATE task_log SET status = ?, finished_at = ?, result = ?, exception = ?, result_size = ?,
         exec_start = ?, exec_end = ?, dispatched_at = COALESCE(dispatched_at, ?),
         started_at = CASE WHEN ? IS NOT NULL AND ? >= created_at AND ? <= ? THEN ?
                      ELSE started_at END
       WHERE uuid = ?`,
    ).run(
      failed ? "failed" : "success",
      now,
      failed ? null : kept,
      failed ? kept : null,
      body.length,
      r.times?.start ?? null,
      r.times?.end ?? null,
      now,
      // the worker's own start is the truth when its clock agrees with ours
      ...Array<number | null>(3).fill(r.times?.start ?? null),
      now,
      r.times?.start ?? null,
      uuid,
    );
  }

  /** Every unfinished task of an endpoint failed with `exception`. Inside the caller's transaction. */
  failedAll(endpointUuid: string, exception: string, now: number): void {
    this.#stmt(
      "UPDATE task_log SET status = 'failed', finished_at = ?, exception = ?, result_size = ? WHERE endpoint_uuid = ? AND finished_at IS NULL",
    ).run(now, exception, exception.length, endpointUuid);
  }

  /** Drop finished tasks older than the retention. */
  prune(now: number): void {
    this.#stmt("DELETE FROM task_log WHERE finished_at IS NOT NULL AND finished_at < ?").run(
      now - TASK_LOG_RETENTION,
    );
  }

  /**
   * One page of the user's tasks, newest first, with the total count.
   *
   * @example
   * ```ts ignore
   * log.query({ userId: 1, status: "failed" }, 0, 50).total;
   * ```
   */
  query(f: TaskLogFilter, offset: number, limit: number): { rows: TaskLogRow[]; total: number } {
    const where = ["user_id = ?"];
    const args: SQLInputValue[] = [f.userId];
    if (f.endpoint) (where.push("endpoint_uuid = ?"), args.push(f.endpoint));
    if (f.function) (where.push("function_uuid = ?"), args.push(f.function));
    if (f.status) (where.push("status = ?"), args.push(f.status));
    if (f.since !== undefined) (where.push("created_at >= ?"), args.push(f.since));
    if (f.until !== undefined) (where.push("created_at < ?"), args.push(f.until));
    const w = where.join(" AND ");
    const total = (this.#stmt(`SELECT COUNT(*) AS n FROM task_log WHERE ${w}`).get(...args) as {
      n: number;
    }).n;
    const rows = this.#all<TaskLogRow>(
      `SELECT uuid, user_id, function_uuid, endpoint_uuid, status, created_at, dispatched_at, started_at, finished_at, exec_start, exec_end, NULL AS result, NULL AS exception, result_size FROM task_log WHERE ${w} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
      ...args,
      limit,
      offset,
    );
    return { rows, total };
  }

  /** The functions of the user's logged tasks (at most 200, most used first). */
  functionsOf(userId: number): string[] {
    return this.#all<{ function_uuid: string }>(
      "SELECT function_uuid FROM task_log WHERE user_id = ? GROUP BY function_uuid ORDER BY COUNT(*) DESC LIMIT 200",
      userId,
    ).map((r) => r.function_uuid);
  }

  /** One task with its result or exception. */
  get(uuid: string): TaskLogRow | undefined {
    return this.#stmt("SELECT * FROM task_log WHERE uuid = ?").get(uuid) as
      | TaskLogRow
      | undefined;
  }

  /**
   * Finished tasks of the given endpoints since `since` (created, finished), for the charts.
   * Every submitter's: the charts show the endpoint's load, not whose tasks they were.
   */
  finishedSince(
    endpoints: readonly string[],
    since: number,
  ): { endpoint_uuid: string; created_at: number; finished_at: number; status: string }[] {
    const out = [];
    for (const ep of endpoints) {
      out.push(
        ...this.#all<
          { endpoint_uuid: string; created_at: number; finished_at: number; status: string }
        >(
          "SELECT endpoint_uuid, created_at, finished_at, status FROM task_log WHERE endpoint_uuid = ? AND finished_at >= ? ORDER BY finished_at",
          ep,
          since,
        ),
      );
    }
    return out;
  }

  /** Unfinished tasks the service holds for an endpoint (every submitter). */
  endpointCounts(endpointUuid: string): { queued: number; running: number } {
    const rows = this.#all<{ status: string; n: number }>(
      "SELECT status, COUNT(*) AS n FROM task_log WHERE endpoint_uuid = ? AND finished_at IS NULL GROUP BY status",
      endpointUuid,
    );
    let queued = 0;
    let running = 0;
    for (const r of rows) {
      if (r.status === "waiting-for-ep") queued += r.n;
      else running += r.n;
    }
    return { queued, running };
  }

  /**
   * Failures an endpoint itself caused since `since` (lost managers/workers, the endpoint
   * deleted), counted by exception type; the text of other users' failures stays theirs.
   */
  lostTasks(endpointUuid: string, since: number): { type: string; n: number }[] {
    const out = new Map<string, number>();
    const rows = this.#all<{ exception: string | null }>(
      "SELECT exception FROM task_log WHERE endpoint_uuid = ? AND status = 'failed' AND finished_at >= ? ORDER BY finished_at DESC LIMIT 100",
      endpointUuid,
      since,
    );
    for (const r of rows) {
      let type = "";
      try {
        type = decodeRemoteException(r.exception ?? "").type;
      } catch { /* not an exception we can read */ }
      if (_ENDPOINT_FAULTS.has(type)) out.set(type, (out.get(type) ?? 0) + 1);
    }
    return [...out].map(([type, n]) => ({ type, n }));
  }
}
