/**
 * Legacy endpoints (unmodified funcx-endpoint 0.3.x), opt-in with `service start
 * --legacy-endpoints`. Upstream endpoints register without `endpoint_pubkey` and
 * `endpoint_secret` and make a fresh CURVE key pair on every start, so the service cannot
 * know their key in advance. Trust is bound on first use instead: after the owner's
 * authenticated registration, the first CURVE key that connects for that endpoint id is the
 * only one trusted for it until the next registration. The risk (someone who learns the
 * endpoint id and connects first) is stated in SECURITY.md; the status page and the log
 * name every endpoint in this mode.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { LegacyEndpoints } from "./legacy.ts";
 * const legacy = new LegacyEndpoints(new DatabaseSync(":memory:"));
 * const id = crypto.randomUUID();
 * legacy.registered(id);
 * legacy.bind(id, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"); // true: first key wins
 * legacy.bind(id, "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"); // false
 * ```
 * @module
 */
import type { DatabaseSync } from "node:sqlite";

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS legacy_endpoints (
  uuid TEXT PRIMARY KEY,
  bound_key TEXT,
  registered_at REAL NOT NULL,
  bound_at REAL
);`;

/** One legacy endpoint's state. */
export interface LegacyEndpoint {
  uuid: string;
  /** The CURVE key (Z85) bound on first use since the last registration, if any yet. */
  boundKey: string | null;
  /** Epoch seconds of the last registration. */
  registeredAt: number;
}

/** The legacy-endpoint table (same database as the service store). */
export class LegacyEndpoints {
  #db: DatabaseSync;

  /** Creates the table if needed. */
  constructor(db: DatabaseSync) {
    this.#db = db;
    db.exec(_SCHEMA);
  }

  /** The owner registered `uuid` without a key: the next key to connect will be bound. */
  registered(uuid: string): void {
    this.#db.prepare(
      `INSERT INTO legacy_endpoints (uuid, bound_key, registered_at) VALUES (?, NULL, ?)
       ON CONFLICT(uuid) DO UPDATE SET bound_key = NULL, bound_at = NULL,
         registered_at = excluded.registered_at`,
    ).run(uuid, Date.now() / 1000);
  }

  /** `uuid` registered with a key of its own (our endpoint): not legacy any more. */
  forget(uuid: string): void {
    this.#db.prepare("DELETE FROM legacy_endpoints WHERE uuid = ?").run(uuid);
  }

  /** The state of `uuid`, if it is a legacy endpoint. */
  get(uuid: string): LegacyEndpoint | undefined {
    const r = this.#db.prepare(
      "SELECT uuid, bound_key, registered_at FROM legacy_endpoints WHERE uuid = ?",
    ).get(uuid) as { uuid: string; bound_key: string | null; registered_at: number } | undefined;
    return r && { uuid: r.uuid, boundKey: r.bound_key, registeredAt: r.registered_at };
  }

  /**
   * May `key` speak for `uuid`? Binds it when no key is bound yet (the first use); true
   * when `key` is (now) the bound one.
   */
  bind(uuid: string, key: string): boolean {
    this.#db.prepare(
      `UPDATE legacy_endpoints SET bound_key = ?, bound_at = ?
       WHERE uuid = ? AND bound_key IS NULL`,
    ).run(key, Date.now() / 1000, uuid);
    return this.get(uuid)?.boundKey === key;
  }

  /** Would `key` be admitted for `uuid` (unbound yet, or the bound key)? Does not bind. */
  admits(uuid: string, key: string): boolean {
    const e = this.get(uuid);
    return e !== undefined && (e.boundKey === null || e.boundKey === key);
  }

  /** Every legacy endpoint id. */
  list(): Set<string> {
    const rows = this.#db.prepare("SELECT uuid FROM legacy_endpoints").all() as { uuid: string }[];
    return new Set(rows.map((r) => r.uuid));
  }
}
