/**
 * The Endpoint daemon's channels against a test-side forwarder (real HTTP, real ZeroMQ
 * ROUTERs with CURVE): registration messages and identity, heartbeats both ways, status
 * reports, status.json, unacked results resent and acked, redelivered finished tasks
 * answered without rerunning, dead-forwarder detection → re-register + reconnect,
 * start errors. No blocks are launched (max_blocks 0), so tasks stay queued.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "../auth/_assert.ts";
import { TokenStore } from "../../src/auth/tokens.ts";
import { Endpoint } from "../../src/endpoint/endpoint.ts";
import { EndpointJsonError } from "../../src/endpoint/files.ts";
import { RegistrationError } from "../../src/registration/client.ts";
import {
  DEFAULT_ENDPOINT_CONFIG,
  DEFAULT_GLOBAL_CONFIG,
  type EndpointConfig,
} from "../../src/config/types.ts";
import { createLogger, type Logger } from "../../src/daemon/log.ts";
import {
  decodeEPStatusReport,
  decodeRegistration,
  decodeResult,
  encodeResult,
  MessageType,
  unpackMessage,
} from "../../src/protocol/messages.ts";
import { parseCertificate } from "../../src/protocol/zpl.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import { TestForwarder } from "./_forwarder.ts";

const T = {
  a: "00000000-0000-4000-8000-00000000000a",
  b: "00000000-0000-4000-8000-00000000000b",
  c: "00000000-0000-4000-8000-00000000000c",
};

function setup(fwd: TestForwarder) {
  const home = Deno.makeTempDirSync({ prefix: "fx-ep-" });
  new TokenStore(home).set({
    scope: "s",
    access_token: "fxa_test_access_token_value",
    refresh_token: null,
    token_type: "Bearer",
    expires_at_seconds: Math.floor(Date.now() / 1000) + 3600,
    resource_server: "funcx_service",
  });
  const config: EndpointConfig = structuredClone(DEFAULT_ENDPOINT_CONFIG);
  config.heartbeat_period = 0.2;
  config.heartbeat_threshold = 1.5;
  config.provider.init_blocks = 0;
  config.provider.min_blocks = 0;
  config.provider.max_blocks = 0;
  const global = { ...DEFAULT_GLOBAL_CONFIG, service_address: fwd.url };
  const logFile = join(home, "test.log");
  const log: Logger = createLogger({ file: logFile, level: "debug" });
  const started: Endpoint[] = [];
  const start = async () => {
    const ep = await Endpoint.start({
      home,
      name: "ep",
      config,
      global,
      log,
      retryInitialMs: 50,
      retryMaxMs: 200,
    });
    started.push(ep);
    return ep;
  };
  const cleanup = async () => {
    for (const ep of started) await ep.stop("test cleanup");
    log.close();
    Deno.removeSync(home, { recursive: true });
  };
  return { home, config, log, logFile, start, cleanup, dir: join(home, "ep") };
}

/** A test with a fresh {@linkcode TestForwarder} and endpoint home, both cleaned up after. */
function fwdTest(
  name: string,
  fn: (fwd: TestForwarder, s: ReturnType<typeof setup>) => Promise<void>,
) {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const fwd = await TestForwarder.start();
      const s = setup(fwd);
      try {
        await fn(fwd, s);
      } finally {
        await s.cleanup();
        await fwd.close();
      }
    },
  });
}

/** Write `unacked_results.json` as a previous run left it: task id → result value. */
function seedUnacked(dir: string, values: Record<string, number>): Uint8Array[] {
  Deno.mkdirSync(dir, { recursive: true });
  const msgs = Object.entries(values).map(([id, v]) =>
    [id, encodeResult({ task_id: id, result: serializeData(v) })] as const
  );
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  Deno.writeTextFileSync(
    join(dir, "unacked_results.json"),
    JSON.stringify(Object.fromEntries(msgs.map(([id, m]) => [id, b64(m)]))),
  );
  return msgs.map(([, m]) => m);
}

function status(dir: string) {
  return JSON.parse(Deno.readTextFileSync(join(dir, "status.json")));
}

function mode(path: string): number {
  return Deno.statSync(path).mode! & 0o777;
}

const resultsFor = (fwd: TestForwarder, taskId: string) =>
  fwd.received.results.filter((r) => {
    try {
      return decodeResult(r.payload).task_id === taskId;
    } catch {
      return false;
    }
  });

fwdTest(
  "endpoint: registration, identity, heartbeats both ways, status reports, status.json",
  async (fwd, s) => {
    const ep = await s.start();
    const id = ep.endpointId;
    // registration over HTTP with our fresh CURVE public key
    const reg = fwd.registrations[0].body;
    assertEquals(reg.endpoint_uuid, id);
    assertEquals(reg.endpoint_name, "ep");
    assertEquals(reg.version, "0.3.4");
    const pub = parseCertificate(
      Deno.readTextFileSync(join(s.dir, "certificates", "endpoint.key")),
    );
    assertEquals(reg.endpoint_pubkey, pub.publicKey);
    assertEquals(mode(join(s.dir, "certificates", "endpoint.key_secret")), 0o600);
    assertEquals(mode(join(s.dir, "certificates", "server.key")), 0o600);
    assertEquals(mode(join(s.dir, "endpoint.json")), 0o600);
    // registration messages on all three channels, identity = uuid
    await fwd.waitFor(
      "registrations",
      () =>
        fwd.received.tasks.length && fwd.received.results.length &&
        fwd.received.commands.length,
    );
    const onTasks = decodeRegistration(fwd.received.tasks[0].payload);
    assertEquals(fwd.received.tasks[0].identity, id);
    assertEquals(onTasks.registration, id);
    assertEquals(onTasks.funcx_endpoint_version, "0.3.4");
    // this process has no baked-in build identity: a source build
    assertEquals(onTasks.funcx_endpoint_release, "dev");
    assertEquals(onTasks.funcx_endpoint_commit, "unknown");
    assertEquals(onTasks.endpoint_secret, "fxs_test_secret");
    for (const ch of ["results", "commands"] as const) {
      assertEquals(fwd.received[ch][0].identity, id);
      assertEquals(decodeRegistration(fwd.received[ch][0].payload), {
        registration: id,
        endpoint_secret: "fxs_test_secret",
      });
    }
    // HEARTBEAT_REQ on commands → Heartbeat(uuid)
    fwd.sendHeartbeatReq(id);
    const hb = await fwd.waitFor("heartbeat reply", () => fwd.received.commands[1]);
    assertEquals(unpackMessage(hb.payload), { type: MessageType.HEARTBEAT, endpointId: id });
    // b"HEARTBEAT" and EPStatusReports on results every heartbeat_period
    await fwd.waitFor("status reports", () => {
      const texts = fwd.received.results.map((r) => new TextDecoder().decode(r.payload));
      return texts.filter((t) => t === "HEARTBEAT").length >= 2;
    });
    const report = fwd.received.results.find((r) =>
      r.payload[0] === 0x80 && (() => {
        try {
          decodeEPStatusReport(r.payload);
          return true;
        } catch {
          return false;
        }
      })()
    )!;
    const rep = decodeEPStatusReport(report.payload);
    assertEquals(rep.endpointId, id);
    assertEquals(rep.info.max_blocks, 0);
    // status.json: exactly the DESIGN §5 shape
    await fwd.waitFor("connected", () => status(s.dir).state === "connected");
    const st = status(s.dir);
    assertEquals(Object.keys(st).sort(), [
      "address",
      "blocks",
      "build",
      "degraded",
      "endpoint_id",
      "errors",
      "executor_address",
      "heartbeat_threshold",
      "host",
      "last_heartbeat",
      "managers",
      "name",
      "pid",
      "started_at",
      "state",
      "tasks",
      "unacked_results",
      "updated_at",
    ]);
    assertEquals(st.pid, Deno.pid);
    assertEquals(st.endpoint_id, id);
    assertEquals(st.heartbeat_threshold, 1.5);
    assertEquals(st.build, { release: "dev", commit: "unknown", protocol: "0.3.4" });
    assertEquals(Object.keys(st.tasks).sort(), ["completed", "failed", "queued", "running"]);
    assert(Date.now() - Date.parse(st.last_heartbeat) < 2000);
    // a heartbeat naming another endpoint is reported, the endpoint keeps going
    fwd.send("tasks", id, new Uint8Array([2, ...new TextEncoder().encode(T.c)]));
    await fwd.waitFor(
      "error recorded",
      () =>
        status(s.dir).errors.some((e: { message: string }) =>
          e.message.includes(`heartbeat for endpoint ${T.c}`)
        ),
    );
    // garbage on the tasks channel is dropped with a reason
    fwd.send("tasks", id, new Uint8Array([99, 1, 2]));
    await fwd.waitFor(
      "bad message logged",
      () =>
        status(s.dir).errors.some((e: { message: string }) =>
          /dropped a tasks message: .*unknown message type 99/.test(e.message)
        ),
    );
    const p = ep.stop("test");
    assert(p === ep.stop("again"));
    await p;
    await ep.done;
    assertEquals(status(s.dir).state, "stopping");
    // no token or secret in the log
    const log = Deno.readTextFileSync(s.logFile);
    assert(!log.includes("fxa_test_access_token_value"));
    assert(!log.includes("fxs_test_secret"));
  },
);

fwdTest(
  "endpoint: unacked results resent and acked; finished tasks not rerun; dead forwarder → reconnect",
  async (fwd, s) => {
    // results left unacked by a previous run
    const [resA] = seedUnacked(s.dir, { [T.a]: 1, [T.b]: 2 });
    const ep = await s.start();
    const id = ep.endpointId;
    await fwd.waitFor(
      "resent results",
      () => resultsFor(fwd, T.a).length === 1 && resultsFor(fwd, T.b).length === 1,
    );
    assertEquals(resultsFor(fwd, T.a)[0].payload, resA);
    fwd.sendAck(id, T.a);
    await fwd.waitFor("ack applied", () => status(s.dir).unacked_results === 1);
    // the forwarder redelivers B (it never saw the result): resend it, do not run it
    fwd.sendTask(id, T.b);
    await fwd.waitFor("B resent", () => resultsFor(fwd, T.b).length === 2);
    // a new task C is queued in the interchange (no blocks here)
    fwd.sendTask(id, T.c);
    fwd.sendTask(id, T.c);
    await fwd.waitFor("C queued", () => status(s.dir).tasks.queued === 1);
    // the forwarder goes silent: after heartbeat_threshold the endpoint re-registers,
    // reconnects and resends every unacked result
    const regs = fwd.registrations.length;
    const tasksRegs = fwd.received.tasks.length;
    fwd.silent = true;
    await fwd.waitFor("re-registration", () => fwd.registrations.length > regs, 10_000);
    fwd.silent = false;
    await fwd.waitFor("reconnected", () =>
      fwd.received.tasks.slice(tasksRegs).some((r) => {
        try {
          return decodeRegistration(r.payload).registration === id;
        } catch {
          return false;
        }
      }));
    await fwd.waitFor("B resent after reconnect", () => resultsFor(fwd, T.b).length === 3);
    assertEquals(fwd.registrations.at(-1)!.body.endpoint_uuid, id);
    await fwd.waitFor(
      "silence reported",
      () =>
        status(s.dir).errors.some((e: { message: string }) =>
          /no message from the forwarder for \d+ s/.test(e.message)
        ),
    );
    await fwd.waitFor("connected again", () => status(s.dir).state === "connected");
    // stop: C never ran; it is neither failed nor stored but left unfinished, for the
    // service to deliver it again to the restarted endpoint (issue 7: nothing lost on stop)
    await ep.stop("test");
    assertEquals(resultsFor(fwd, T.c).length, 0);
    const left = JSON.parse(Deno.readTextFileSync(join(s.dir, "unacked_results.json")));
    assertEquals(Object.keys(left).sort(), [T.b]);
    // a restart reuses the endpoint id with a fresh keypair
    const firstKey = fwd.registrations[0].body.endpoint_pubkey;
    const ep2 = await s.start();
    assertEquals(ep2.endpointId, id);
    assert(fwd.registrations.at(-1)!.body.endpoint_pubkey !== firstKey);
    await fwd.waitFor("B resent after restart", () => resultsFor(fwd, T.b).length >= 4);
    fwd.sendTask(id, T.c);
    await fwd.waitFor("C queued again", () => status(s.dir).tasks.queued === 1);
    await ep2.stop("test");
    assertEquals(resultsFor(fwd, T.c).length, 0);
  },
);

fwdTest(
  "endpoint: refused registration, corrupt endpoint.json, service down at start",
  async (fwd, s) => {
    fwd.failNext = [{
      status: 400,
      reason: "Endpoint x was already registered by a different user",
    }];
    const e = await assertRejects(() => s.start(), RegistrationError);
    assertMatch(e.message, /HTTP 400: Endpoint x was already registered by a different user/);

    Deno.writeTextFileSync(join(s.dir, "endpoint.json"), "{broken");
    await assertRejects(() => s.start(), EndpointJsonError, "endpoint.json: not valid JSON");
    Deno.removeSync(join(s.dir, "endpoint.json"));

    // 5xx at first: start returns (disconnected, retrying), then connects
    fwd.failNext = [{ status: 503, reason: "down" }, { status: 502, reason: "still down" }];
    const ep = await s.start();
    await fwd.waitFor("connected", () => status(s.dir).state === "connected");
    const errs = status(s.dir).errors.map((x: { message: string }) => x.message).join("\n");
    assertMatch(errs, /registration attempt 1 failed: HTTP 503: down; retrying/);
    await ep.stop("test");
  },
);

fwdTest(
  "endpoint: results the forwarder never acks → reconnect and resend (ack watchdog)",
  async (fwd, s) => {
    // one result left unacked by a previous run; heartbeats keep flowing, but the
    // forwarder does not hear (ack) the results connection
    seedUnacked(s.dir, { [T.a]: 1 });
    const ep = await s.start();
    await fwd.waitFor("sent once", () => resultsFor(fwd, T.a).length === 1);
    const regs = fwd.registrations.length;
    await fwd.waitFor("re-registration", () => fwd.registrations.length > regs, 15_000);
    await fwd.waitFor("resent", () => resultsFor(fwd, T.a).length >= 2);
    await fwd.waitFor(
      "reason reported",
      () =>
        status(s.dir).errors.some((e: { message: string }) =>
          /1 result\(s\) not acknowledged for \d+ s/.test(e.message)
        ),
    );
    // once acked, nothing is outstanding and the reconnects stop
    fwd.sendAck(ep.endpointId, T.a);
    await fwd.waitFor("acked", () => status(s.dir).unacked_results === 0);
    const after = fwd.registrations.length;
    await new Promise((r) => setTimeout(r, 4 * s.config.heartbeat_threshold * 1000));
    assertEquals(fwd.registrations.length, after, "no reconnect without outstanding results");
  },
);
