/**
 * Faults, end to end (real service, real endpoint CLI, real workers):
 * - the service (forwarder + API) is SIGKILLed mid-batch and restarted on the same ports:
 *   every task completes, each runs exactly once, the user sees one result per task;
 * - a worker and then a manager are SIGKILLed mid-task: the task fails with WorkerLost /
 *   ManagerLost, and the endpoint keeps serving.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../auth/_assert.ts";
import { createWorld, PY } from "./_world.ts";
import { waitFor } from "../helpers/wait.ts";

function lines(path: string): string[][] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean).map((l) => l.split(" "));
  } catch {
    return [];
  }
}

function until<T>(what: string, fn: () => T | undefined, ms = 180_000): Promise<T> {
  return waitFor(fn, {
    what,
    timeoutMs: ms,
    until: (v) => v !== undefined && v !== false,
  }) as Promise<
    T
  >;
}

function kill(pid: number) {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* already gone */ }
}

Deno.test({
  name: "e2e: service killed mid-batch and restarted: every task completes exactly once",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    try {
      w.configure("ep");
      const ep = await w.startEndpoint("ep");
      const c = w.client;
      const fn = await c.registerFunction(PY.logged, "logged");
      const log = join(w.home, "exec.log");
      const n = 600;
      const ids = await c.submit(
        Array.from({ length: n }, (_, i) => ({
          functionId: fn,
          endpointId: ep.endpointId,
          args: [log, `t${i}`, 0.01, i * 3],
        })),
      );
      await until("150 executions", () => lines(log).length >= 150);
      await w.svc.kill();
      const executedWhileDown = lines(log).length;
      await until(
        "the endpoint running tasks while the service is down",
        () => lines(log).length > executedWhileDown || undefined,
      );
      await w.restartService();
      const r = await c.waitForResults(ids, { timeoutMs: 240_000 });
      assertEquals(r.size, n);
      for (const [i, id] of ids.entries()) assertEquals(r.get(id)?.value, i * 3, `task ${i}`);
      // each task ran exactly once (in-flight and finished tasks redelivered after the
      // restart were not run again)
      const tags = lines(log).map((l) => l[0]);
      assertEquals(tags.length, n);
      assertEquals(new Set(tags).size, n);
      // the daemon survived, re-registered and reconnected
      // (status.json is rewritten every second; a heartbeat round may still be in flight)
      const st = await until(
        "status.json to say connected",
        () => ep.status()?.state === "connected" ? ep.status() : undefined,
        30_000,
      );
      assertEquals(st!.pid, ep.pid);
      const text = Deno.readTextFileSync(join(ep.dir, "endpoint.log"));
      assert((text.match(/registered as /g) ?? []).length >= 2, "re-registered");
      assertEquals(await ep.stop(), 0);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "e2e: killed worker → WorkerLost, killed manager → ManagerLost, endpoint keeps serving",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    const leftovers: number[] = [];
    try {
      w.configure("ep");
      const ep = await w.startEndpoint("ep");
      const c = w.client;
      const eid = ep.endpointId;
      const fn = await c.registerFunction(PY.logged, "logged");
      const add = await c.registerFunction(PY.add, "add");
      const log = join(w.home, "exec.log");

      const [wid] = await c.submit([{ functionId: fn, endpointId: eid, args: [log, "w", 60, 1] }]);
      const wline = await until("worker task start", () => lines(log).find((l) => l[0] === "w"));
      kill(Number(wline[1]));
      const wo = (await c.waitForResults([wid], { timeoutMs: 240_000 })).get(wid)!;
      assert(wo.error, "the task must fail");
      assertEquals(wo.error.type, "WorkerLost");
      assertMatch(wo.error.remoteMessage, /worker|died|killed|signal/i);
      const [a1] = await c.submit([{ functionId: add, endpointId: eid, args: [1, 2] }]);
      assertEquals((await c.waitForResults([a1], { timeoutMs: 240_000 })).get(a1)?.value, 3);

      const [mid] = await c.submit([{ functionId: fn, endpointId: eid, args: [log, "m", 60, 1] }]);
      const mline = await until("manager task start", () => lines(log).find((l) => l[0] === "m"));
      leftovers.push(Number(mline[1]));
      kill(Number(mline[2]));
      const mo = (await c.waitForResults([mid], { timeoutMs: 240_000 })).get(mid)!;
      assert(mo.error, "the task must fail");
      assertEquals(mo.error.type, "ManagerLost");
      const [a2] = await c.submit([{ functionId: add, endpointId: eid, args: [2, 3] }]);
      assertEquals((await c.waitForResults([a2], { timeoutMs: 240_000 })).get(a2)?.value, 5);
      assertEquals(ep.status()?.pid, ep.pid);
      assertEquals(await ep.stop(), 0);
    } finally {
      for (const pid of leftovers) kill(pid);
      await w.close();
    }
  },
});
