/**
 * The service's audit trail: one JSON object a line in `$FUNCX_HOME/service/audit.log`,
 * opened append-only with mode 0600, rotated by size (`audit.log.1` … `.N`, oldest dropped).
 *
 * Entries never carry a secret: any field whose name looks like a password, secret, token,
 * code or verifier is refused at the call site (a programming error, thrown), and string
 * values that look like one of this service's secrets (`fxa_…`, `fxr_…`, `fxs_…`, `fxc_…`)
 * are replaced by `[redacted]`. Tokens are named by {@linkcode tokenRef} (a short hash).
 *
 * @example
 * ```ts
 * import { AuditLog, readAudit } from "./audit.ts";
 * const audit = AuditLog.open("/tmp/h/service");
 * audit.record("signin.failure", { user: "alice", addr: "10.0.0.7" });
 * const entries = readAudit("/tmp/h/service", { since: new Date(Date.now() - 3600_000) });
 * audit.close();
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

/** The kinds of events the audit trail records. */
export type AuditEvent =
  | "signin.success"
  | "signin.failure"
  | "signin.locked"
  | "client.auth.failure"
  | "client.auth.locked"
  | "token.issued"
  | "token.revoked"
  | "endpoint.registered"
  | "allowlist.changed"
  | "sharing.changed"
  | "service.started"
  | "service.tls.reloaded";

/** One audit entry as written. */
export interface AuditEntry {
  /** ISO time. */
  time: string;
  /** What happened. */
  event: AuditEvent;
  /** Event details (user, addr, client, endpoint, …); never secrets. */
  [field: string]: unknown;
}

/** Something that records audit events (the API other modules receive). */
export interface Auditor {
  /**
   * Record one event.
   *
   * @example
   * ```ts ignore
   * auditor.record("endpoint.registered", { user: "alice", endpoint: id, addr });
   * ```
   */
  record(event: AuditEvent, fields?: Record<string, unknown>): void;
}

/** An auditor that drops everything (tests of modules that do not care about auditing). */
export const NO_AUDIT: Auditor = { record() {} };

/** Options of {@linkcode AuditLog.open}. */
export interface AuditLogOptions {
  /** Rotate when the current file would exceed this many bytes (default 10 MiB). */
  maxBytes?: number;
  /** Rotated files kept (default 5). */
  keep?: number;
  /** Clock (ms since the epoch). */
  now?: () => number;
}

/** File name of the current audit log inside the service directory. */
export const AUDIT_FILE = "audit.log";

const _SECRET_KEY = /pass(word)?|secret|token$|^token|^code$|verifier|authorization|cookie/i;
const _SECRET_VALUE = /\bfx[arsc]_[A-Za-z0-9_-]{20,}/g;

/**
 * A short, non-reversible name for a token or secret (first 12 hex of its SHA-256), so
 * audit entries about the same token can be matched without storing it.
 *
 * @example
 * ```ts
 * tokenRef("fxa_abc").length; // 12
 * ```
 */
export function tokenRef(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 12);
}

/**
 * Turn fields into what may be written: throws on a secret-looking field name, redacts
 * secret-looking string values. Pure.
 *
 * @example
 * ```ts
 * sanitizeFields({ user: "a", note: "fxa_" + "x".repeat(43) }); // { user: "a", note: "[redacted]" }
 * ```
 */
export function sanitizeFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === "time" || k === "event") throw new Error(`audit field name ${k} is reserved`);
    if (_SECRET_KEY.test(k) && k !== "token_ref") {
      throw new Error(`audit field ${JSON.stringify(k)} may hold a secret; use tokenRef()`);
    }
    if (v === undefined) continue;
    out[k] = typeof v === "string" ? v.replace(_SECRET_VALUE, "[redacted]").slice(0, 500) : v;
  }
  return out;
}

/** The append-only, rotated audit log file. */
export class AuditLog implements Auditor {
  #dir: string;
  #file: Deno.FsFile;
  #size: number;
  #maxBytes: number;
  #keep: number;
  #now: () => number;
  #enc = new TextEncoder();

  private constructor(dir: string, file: Deno.FsFile, size: number, opts: AuditLogOptions) {
    this.#dir = dir;
    this.#file = file;
    this.#size = size;
    this.#maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
    this.#keep = Math.max(1, opts.keep ?? 5);
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Open (create) `<dir>/audit.log` for appending.
   *
   * @example
   * ```ts ignore
   * const log = AuditLog.open(servicePaths(home).dir);
   * ```
   */
  static open(dir: string, opts: AuditLogOptions = {}): AuditLog {
    const path = join(dir, AUDIT_FILE);
    const file = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
    Deno.chmodSync(path, 0o600);
    return new AuditLog(dir, file, file.statSync().size, opts);
  }

  /**
   * Append one entry (synchronously, so it is on disk before the reply is sent).
   *
   * @example
   * ```ts ignore
   * log.record("token.revoked", { user: "alice", token_ref: tokenRef(t) });
   * ```
   */
  record(event: AuditEvent, fields: Record<string, unknown> = {}): void {
    const entry = { time: new Date(this.#now()).toISOString(), event, ...sanitizeFields(fields) };
    const bytes = this.#enc.encode(JSON.stringify(entry) + "\n");
    if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) this.#rotate();
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
    this.#size += bytes.length;
  }

  #rotate(): void {
    this.#file.close();
    const base = join(this.#dir, AUDIT_FILE);
    try {
      Deno.removeSync(`${base}.${this.#keep}`);
    } catch { /* not there */ }
    for (let i = this.#keep - 1; i >= 1; i--) {
      try {
        Deno.renameSync(`${base}.${i}`, `${base}.${i + 1}`);
      } catch { /* not there */ }
    }
    Deno.renameSync(base, `${base}.1`);
    this.#file = Deno.openSync(base, { append: true, create: true, mode: 0o600 });
    this.#size = 0;
  }

  /** Close the file. */
  close(): void {
    try {
      this.#file.close();
    } catch { /* already closed */ }
  }
}

/**
 * Read the audit trail (rotated files first, oldest first), optionally only entries at or
 * after `since`. Lines that are not JSON objects are skipped.
 *
 * @example
 * ```ts ignore
 * readAudit(dir).map((e) => e.event); // ["service.started", "signin.success", ...]
 * ```
 */
export function readAudit(dir: string, opts: { since?: Date } = {}): AuditEntry[] {
  const base = join(dir, AUDIT_FILE);
  const files: string[] = [];
  for (let i = 1;; i++) {
    try {
      Deno.statSync(`${base}.${i}`);
      files.unshift(`${base}.${i}`);
    } catch {
      break;
    }
  }
  files.push(base);
  const since = opts.since?.getTime() ?? -Infinity;
  const out: AuditEntry[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = Deno.readTextFileSync(f);
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        const e = JSON.parse(line);
        if (!e || typeof e !== "object" || typeof e.time !== "string") continue;
        if (Date.parse(e.time) >= since) out.push(e as AuditEntry);
      } catch { /* partial line */ }
    }
  }
  return out;
}

/**
 * Parse a `--since` value: an ISO date/time, or a duration back from `now` such as `30m`,
 * `12h`, `7d`. Returns an error message for anything else.
 *
 * @example
 * ```ts
 * (parseSince("2h", 7200_000) as Date).toISOString(); // "1970-01-01T00:00:00.000Z"
 * ```
 */
export function parseSince(value: string, now = Date.now()): Date | string {
  const m = /^(\d+)\s*([smhd])$/.exec(value.trim());
  if (m) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as "s" | "m" | "h" | "d"];
    return new Date(now - Number(m[1]) * unit);
  }
  const t = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(t)) return new Date(t);
  return `--since: expected an ISO date/time (2026-01-31 or 2026-01-31T12:00:00Z) or a duration like 30m, 12h, 7d, got ${
    JSON.stringify(value)
  }`;
}

/**
 * One readable line of an entry: time, event, then `key=value` fields.
 *
 * @example
 * ```ts
 * formatAuditEntry({ time: "2026-01-01T00:00:00.000Z", event: "signin.success", user: "a" });
 * // "2026-01-01T00:00:00.000Z signin.success user=a"
 * ```
 */
export function formatAuditEntry(e: AuditEntry): string {
  const { time, event, ...rest } = e;
  // plain words as they are; anything else quoted, so control characters an attacker put in
  // a user name cannot reach the terminal
  const fields = Object.entries(rest).map(([k, v]) =>
    `${k}=${typeof v === "string" && /^[\w.@:/+-]+$/.test(v) ? v : JSON.stringify(v)}`
  );
  return [time, event, ...fields].join(" ");
}
