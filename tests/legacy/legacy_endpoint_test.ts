/**
 * Unmodified funcx-endpoint 0.3 endpoints (no endpoint_pubkey, no endpoint_secret) against
 * our service: refused by default with a hint, served with `--legacy-endpoints`, where the
 * first CURVE key that connects after the owner's registration is the only one trusted
 * until the next registration. The endpoint side is libzmq (Debian python3-zmq) speaking
 * the upstream wire (`_upstream_endpoint.py`).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { parseCertificate } from "../../src/protocol/zpl.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { addUser, loginViaForm, type StartedService, startService } from "../helpers/service.ts";

const PY = "/usr/bin/python3";
const SCRIPT = new URL("./_upstream_endpoint.py", import.meta.url).pathname;

function hasPyZmq(): boolean {
  try {
    return new Deno.Command(PY, { args: ["-c", "import zmq"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}
const ignore = !hasPyZmq();
if (ignore) {
  console.error("legacy tests skipped: /usr/bin/python3 has no zmq (apt install python3-zmq)");
}

/** An upstream-shaped endpoint process; lines it printed are collected. */
class Upstream {
  lines: string[] = [];
  #child: Deno.ChildProcess;
  #done: Promise<void>;
  constructor(uuid: string, reply: Record<string, unknown>) {
    const server = parseCertificate(String(reply.forwarder_pubkey)).publicKey;
    const child = new Deno.Command(PY, {
      args: [
        SCRIPT,
        uuid,
        String(reply.public_ip),
        String(reply.tasks_port),
        String(reply.results_port),
        String(reply.commands_port),
        server,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    this.#done = (async () => {
      let buf = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        const parts = buf.split("\n");
        buf = parts.pop()!;
        this.lines.push(...parts);
      }
    })();
  }
  async waitFor(re: RegExp, ms = 15_000): Promise<string> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const l = this.lines.find((x) => re.test(x));
      if (l) return l;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`upstream endpoint: no line matching ${re} in ${ms} ms: ${this.lines}`);
  }
  async stop(): Promise<void> {
    try {
      const w = this.#child.stdin.getWriter();
      await w.write(new TextEncoder().encode("quit\n"));
      await w.close();
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await this.#child.status;
    clearTimeout(t);
    await this.#done;
  }
}

async function world(legacy: boolean) {
  const home = Deno.makeTempDirSync({ prefix: "fx-legacy-" });
  const svc: StartedService = await startService({
    home,
    heartbeatPeriod: 1,
    args: legacy ? ["--legacy-endpoints"] : [],
  });
  await addUser(home, "alice", "alice-pw-123");
  const alice = await loginViaForm(svc.authUrl, "alice", "alice-pw-123");
  const register = async (uuid: string) => {
    // what the 0.3 SDK's register_endpoint sends: no endpoint_pubkey, no secret
    const r = await fetch(`${svc.url}/endpoints`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${alice.access_token}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ endpoint_name: "upstream", endpoint_uuid: uuid, version: "0.3.7" }),
    });
    return { status: r.status, body: await r.json() as Record<string, unknown> };
  };
  return {
    home,
    svc,
    register,
    client: new FuncXClient({ serviceAddress: svc.url, token: alice.access_token }),
    log: () => Deno.readTextFileSync(join(home, "service", "service.log")),
    async close() {
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    },
  };
}

Deno.test({
  name:
    "legacy: without --legacy-endpoints a registration without endpoint_pubkey is refused with the hint",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world(false);
    try {
      const r = await w.register(crypto.randomUUID());
      assertEquals(r.status, 400);
      assert(String(r.body.reason).includes("--legacy-endpoints"), String(r.body.reason));
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name:
    "legacy: an upstream-shaped endpoint runs tasks; the first key is bound, another key for its id is refused until it registers again",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world(true);
    const peers: Upstream[] = [];
    try {
      const uuid = crypto.randomUUID();
      const reg = await w.register(uuid);
      assertEquals(reg.status, 200, JSON.stringify(reg.body));
      assertEquals(reg.body.endpoint_id, uuid);
      assertEquals("endpoint_secret" in reg.body, false);
      assert(/LEGACY mode/.test(w.log()), "the registration is logged as legacy");

      const first = new Upstream(uuid, reg.body);
      peers.push(first);
      await first.waitFor(/^READY/);
      const fn = await w.client.registerFunction("def f(x):\n    return x\n", "f");
      const [t1] = await w.client.submit([{ functionId: fn, endpointId: uuid, args: [1] }]);
      await first.waitFor(new RegExp(`^TASK ${t1}`));
      const r1 = await w.client.waitForResults([t1], { timeoutMs: 15_000 });
      assert(String(r1.get(t1)?.value).startsWith("ran:"), JSON.stringify(r1.get(t1)));
      await first.waitFor(new RegExp(`^ACK ${t1}`));
      const key1 = (await first.waitFor(/^KEY /)).slice(4);
      assert(w.log().includes(`trusting CURVE key ${key1} on first use`), "binding logged");

      // a second key for the same id (someone who learned the uuid) gets nothing
      const impostor = new Upstream(uuid, reg.body);
      peers.push(impostor);
      await impostor.waitFor(/^READY/);
      const [t2] = await w.client.submit([{ functionId: fn, endpointId: uuid, args: [2] }]);
      await first.waitFor(new RegExp(`^TASK ${t2}`));
      await w.client.waitForResults([t2], { timeoutMs: 15_000 });
      assertEquals(impostor.lines.filter((l) => l.startsWith("TASK")), []);
      assert(/refused a CURVE client key/.test(w.log()), "the other key is refused");

      // the status page names legacy endpoints
      const page = await (await fetch(w.svc.url.replace(/\/v2$/, "/"))).text();
      assert(/Legacy endpoints[^<]*: 1/.test(page), "status page shows the legacy count");

      // a restart of the upstream endpoint makes new keys and registers again: the new key
      // is bound, the old one is not trusted any more
      await first.stop();
      await impostor.stop();
      const again = await w.register(uuid);
      assertEquals(again.status, 200);
      const second = new Upstream(uuid, again.body);
      peers.push(second);
      await second.waitFor(/^READY/);
      const [t3] = await w.client.submit([{ functionId: fn, endpointId: uuid, args: [3] }]);
      await second.waitFor(new RegExp(`^TASK ${t3}`));
      await w.client.waitForResults([t3], { timeoutMs: 15_000 });
    } finally {
      for (const p of peers) await p.stop();
      await w.close();
    }
  },
});
