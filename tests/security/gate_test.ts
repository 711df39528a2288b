/**
 * The connection gate (no unauthenticated stall): a half-sent request is closed after the
 * header deadline, an address past its connection limit is refused while others are served,
 * normal traffic and client addresses pass through, and TLS + reload work behind it.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../../src/daemon/log.ts";
import { readAudit } from "../../src/service/audit.ts";
import { LocalService, type ServiceOptions } from "../../src/service/service.ts";
import { clientForCaFile, trustedFetch } from "../../src/config/trust.ts";
import { addUser, loginViaForm } from "../helpers/service.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function withGate(
  extra: Partial<ServiceOptions>,
  fn: (svc: LocalService, home: string) => Promise<void>,
) {
  const home = await Deno.makeTempDir({ prefix: "fx-gate-" });
  const log = createLogger({ file: join(home, "test.log"), level: "debug" });
  const svc = await LocalService.start({ home, port: 0, log, ...extra });
  try {
    await fn(svc, home);
  } finally {
    await svc.stop();
    log.close();
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

/** Resolves true when the server closes `conn` before `ms`. */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const buf = new Uint8Array(1024);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) return true;
    }
  } catch {
    return false; // closed by our own timer
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

Deno.test("gate: a half-sent request is closed at the header deadline", opts, async () => {
  await withGate({ connectionLimits: { headerTimeoutMs: 300 } }, async (svc) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: svc.info.port });
    await c.write(new TextEncoder().encode("GET /v2/version HTTP/1.1\r\nHost: x\r\n"));
    assert(await closedWithin(c, 10_000), "the slow client was closed");
    // a complete request on a fresh connection is served
    const r = await fetch(`http://127.0.0.1:${svc.info.port}/v2/version`);
    assertEquals(r.status, 200);
    await r.body?.cancel();
  });
});

Deno.test("gate: an address past its connection limit is refused; others go on", opts, async () => {
  await withGate({ connectionLimits: { perAddress: 3, headerTimeoutMs: 30_000 } }, async (svc) => {
    const port = svc.info.port;
    const held = await Promise.all(
      [0, 1, 2].map(() => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    // wait until the gate counts them (accepted asynchronously)
    const deadline = performance.now() + 5000;
    let refusedFourth = false;
    while (!refusedFourth && performance.now() < deadline) {
      const fourth = await Deno.connect({ hostname: "127.0.0.1", port });
      refusedFourth = await closedWithin(fourth, 500);
    }
    assert(refusedFourth, "the 4th connection from the same address was closed at once");
    for (const c of held) c.close();
    // slots free again: normal requests pass (polled: closes are noticed asynchronously)
    let status = 0;
    while (status !== 200 && performance.now() < deadline + 5000) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/v2/version`);
        status = r.status;
        await r.body?.cancel();
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assertEquals(status, 200);
  });
});

Deno.test(
  "gate: sign-in through the gate over TLS keeps client addresses; reload",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "fx-gate-tls-" });
    try {
      const run = (args: string[]) =>
        new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "null" }).output();
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
      await run([
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=CA",
      ]);
      await run(["req", ...ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=s"]);
      Deno.writeTextFileSync(join(dir, "ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
      await run([
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "1",
        "-extfile",
        "ext",
      ]);
      const tls = { certFile: join(dir, "srv.pem"), keyFile: join(dir, "srv.key") };
      await withGate({ tls, connectionLimits: {} }, async (svc, home) => {
        const client = clientForCaFile(join(dir, "ca.pem"));
        try {
          await addUser(home, "alice", "alice-pw");
          const base = `https://localhost:${svc.info.port}`;
          const t = await loginViaForm(`${base}/auth`, "alice", "alice-pw", { client });
          assert(t.access_token);
          const ok = readAudit(join(home, "service")).find((e) => e.event === "signin.success");
          assertEquals(ok?.addr, "127.0.0.1");
          await svc.reloadTls();
          const fresh = clientForCaFile(join(dir, "ca.pem"));
          let status = 0;
          const deadline = performance.now() + 5000;
          while (status !== 200 && performance.now() < deadline) {
            try {
              const r = await trustedFetch(`${base}/v2/version`, { client: fresh });
              status = r.status;
              await r.body?.cancel();
            } catch {
              await new Promise((r) => setTimeout(r, 20)); // refused during the rebind
            }
          }
          fresh.close();
          assertEquals(status, 200);
        } finally {
          client.close();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
