/** The audit log: entries, append-only file mode, rotation, --since, no secrets. */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { join } from "node:path";
import {
  AuditLog,
  formatAuditEntry,
  parseSince,
  readAudit,
  tokenRef,
} from "../../src/service/audit.ts";

Deno.test("audit: records, reads back with --since, rotates and keeps N files", () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-audit-" });
  try {
    let t = Date.parse("2026-01-01T00:00:00Z");
    const log = AuditLog.open(dir, { maxBytes: 400, keep: 2, now: () => t });
    for (let i = 0; i < 12; i++) {
      log.record("signin.failure", { user: `u${i}`, addr: "10.0.0.7" });
      t += 60_000;
    }
    log.close();
    assertEquals(Deno.statSync(join(dir, "audit.log")).mode! & 0o777, 0o600);
    assert(Deno.statSync(join(dir, "audit.log.1")).isFile);
    assert(Deno.statSync(join(dir, "audit.log.2")).isFile);
    throws(() => Deno.statSync(join(dir, "audit.log.3")));
    const all = readAudit(dir);
    // oldest files dropped, order kept, the newest entry last
    assertEquals(all.at(-1)!.user, "u11");
    const times = all.map((e) => Date.parse(e.time));
    assertEquals(times, [...times].sort((a, b) => a - b));
    const since = readAudit(dir, { since: new Date("2026-01-01T00:10:00Z") });
    assertEquals(since.map((e) => e.user), ["u10", "u11"]);
    assertEquals(
      formatAuditEntry(since[0]),
      "2026-01-01T00:10:00.000Z signin.failure user=u10 addr=10.0.0.7",
    );
    // reopening appends
    const again = AuditLog.open(dir, { now: () => t });
    again.record("service.started", { port: 1 });
    again.close();
    assertEquals(readAudit(dir).at(-1)!.event, "service.started");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: a secret never reaches the file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-audit-" });
  try {
    const log = AuditLog.open(dir);
    for (const k of ["password", "client_secret", "access_token", "code", "code_verifier"]) {
      throws(() => log.record("token.issued", { [k]: "x" }), /may hold a secret/);
    }
    const token = "fxa_" + "A".repeat(43);
    log.record("token.issued", { user: "alice", token_ref: tokenRef(token), note: `t=${token}` });
    log.close();
    const text = Deno.readTextFileSync(join(dir, "audit.log"));
    assert(!text.includes(token));
    assert(text.includes("[redacted]"));
    assert(text.includes(tokenRef(token)));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: attacker-chosen names are quoted when printed", () => {
  const line = formatAuditEntry({
    time: "2026-01-01T00:00:00.000Z",
    event: "signin.failure",
    user: "x\u001b[2Jy",
    addr: "10.0.0.7",
  });
  assertEquals(line, '2026-01-01T00:00:00.000Z signin.failure user="x\\u001b[2Jy" addr=10.0.0.7');
});

Deno.test("audit: --since accepts ISO dates and durations, refuses the rest", () => {
  const now = Date.parse("2026-01-02T00:00:00Z");
  assertEquals((parseSince("12h", now) as Date).toISOString(), "2026-01-01T12:00:00.000Z");
  assertEquals((parseSince("2026-01-01", now) as Date).toISOString(), "2026-01-01T00:00:00.000Z");
  assert(String(parseSince("yesterday", now)).startsWith("--since: expected"));
});
