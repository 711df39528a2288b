/**
 * The endpoint's own allow-list check: with `allowed_functions` in its config, a task whose
 * function code is not an allowed function's (as the service described it at registration)
 * gets a FunctionNotPermitted exception result and never reaches a worker, even when it
 * arrives straight on the tasks channel without the service's check (a forged task).
 * Real workers (local provider, python3) run the allowed ones.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../auth/_assert.ts";
import { TokenStore } from "../../src/auth/tokens.ts";
import { Endpoint } from "../../src/endpoint/endpoint.ts";
import { allowedCode, refuseTask } from "../../src/endpoint/allowlist.ts";
import {
  DEFAULT_ENDPOINT_CONFIG,
  DEFAULT_GLOBAL_CONFIG,
  type EndpointConfig,
} from "../../src/config/types.ts";
import { createLogger } from "../../src/daemon/log.ts";
import { decodeResult, packTask } from "../../src/protocol/messages.ts";
import { functionCodeHash } from "../../src/protocol/function_hash.ts";
import {
  buildTaskPayload,
  decodeRemoteException,
  deserialize,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";
import { TestForwarder } from "./_forwarder.ts";

const ALLOWED_FN = "0b2c4a8e-0a8b-4c43-9b8c-0d1b6f4e9a11";

function touchSource(path: string, name: string): string {
  return `def ${name}(x):\n    open(${
    JSON.stringify(path)
  }, "w").write(str(x))\n    return x * 2\n`;
}

Deno.test("allow-list: refuseTask checks the code hash of the task's first buffer", () => {
  const fn = serializeSource("f", "def f(x):\n    return x\n");
  const other = serializeSource("g", "def g(x):\n    return x\n");
  const allowed = allowedCode([ALLOWED_FN], { [ALLOWED_FN]: functionCodeHash(fn), x: "y" });
  const task = (code: string) =>
    packTask("t", "RAW", buildTaskPayload(code, serializeData(tuple(1)), serializeData({})));
  assertEquals(refuseTask(task(fn), allowed), null);
  assertMatch(refuseTask(task(other), allowed)!, /not one of the allowed_functions/);
  assertMatch(refuseTask(packTask("t", "RAW", "garbage"), allowed)!, /not run/);
  // no allow-list in the config: nothing is refused here
  assertEquals(refuseTask(task(other), allowedCode(null, undefined)), null);
  // the service knew none of the ids: everything is refused
  assertMatch(refuseTask(task(fn), allowedCode([ALLOWED_FN], undefined))!, /not run/);
});

Deno.test({
  name: "allow-list: a forged task reaching the endpoint directly gets an exception, never runs",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const fwd = await TestForwarder.start();
    const home = Deno.makeTempDirSync({ prefix: "fx-allow-" });
    const log = createLogger({ file: join(home, "test.log"), level: "debug" });
    let ep: Endpoint | undefined;
    try {
      new TokenStore(home).set({
        scope: "s",
        access_token: "fxa_test_access_token_value",
        refresh_token: null,
        token_type: "Bearer",
        expires_at_seconds: Math.floor(Date.now() / 1000) + 3600,
        resource_server: "funcx_service",
      });
      const allowedPath = join(home, "allowed-ran");
      const forgedPath = join(home, "forged-ran");
      const allowedFn = serializeSource("ok", touchSource(allowedPath, "ok"));
      const forgedFn = serializeSource("evil", touchSource(forgedPath, "evil"));
      fwd.replyExtra = { allowed_function_hashes: { [ALLOWED_FN]: functionCodeHash(allowedFn) } };
      const config: EndpointConfig = structuredClone(DEFAULT_ENDPOINT_CONFIG);
      config.allowed_functions = [ALLOWED_FN];
      config.heartbeat_period = 0.2;
      config.heartbeat_threshold = 5;
      config.executor.max_workers_per_node = 1;
      config.executor.heartbeat_period = 0.5;
      config.executor.heartbeat_threshold = 10;
      ep = await Endpoint.start({
        home,
        name: "ep",
        config,
        global: { ...DEFAULT_GLOBAL_CONFIG, service_address: fwd.url },
        log,
        retryInitialMs: 50,
        retryMaxMs: 200,
      });
      // the config's list went to the service with the registration
      assertEquals(fwd.registrations[0].body.allowed_functions, [ALLOWED_FN]);
      const id = ep.endpointId;
      await fwd.waitFor("tasks connection", () => fwd.received.tasks.length > 0);
      const body = (fn: string) =>
        buildTaskPayload(fn, serializeData(tuple(21)), serializeData({}));
      const forged = crypto.randomUUID();
      const allowed = crypto.randomUUID();
      fwd.sendTask(id, forged, body(forgedFn));
      fwd.sendTask(id, allowed, body(allowedFn));
      const result = (taskId: string) =>
        fwd.received.results.map((r) => {
          try {
            return decodeResult(r.payload);
          } catch {
            return undefined;
          }
        }).find((r) => r?.task_id === taskId);
      const refused = await fwd.waitFor("the forged task's result", () => result(forged));
      assertEquals(refused.result, undefined);
      const e = decodeRemoteException(refused.exception!);
      assertEquals(e.type, "FunctionNotPermitted");
      assertMatch(e.message, new RegExp(`not one of the allowed_functions .*${ALLOWED_FN}`));
      const ran = await fwd.waitFor("the allowed task's result", () => result(allowed), 60_000);
      assertEquals(deserialize(ran.result!), 42);
      assertEquals(Deno.readTextFileSync(allowedPath), "21");
      assert(!(await Deno.stat(forgedPath).then(() => true, () => false)), "forged code ran");
    } finally {
      await ep?.stop("test cleanup");
      log.close();
      await fwd.close();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
