/**
 * End to end through the real local service, the real endpoint CLI
 * (`start --foreground`) and real python3 workers: Python functions with args/kwargs,
 * exceptions with the remote traceback, a shell function, and a 10,000-task batch with
 * every result present exactly once.
 */
import { assert, assertEquals, assertMatch } from "../auth/_assert.ts";
import { createWorld, PY, settledTasks } from "./_world.ts";

Deno.test({
  name: "e2e: python args/kwargs, remote exception with traceback, shell function, 10k batch",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const w = await createWorld();
    try {
      w.configure("main");
      const ep = await w.startEndpoint("main");
      const c = w.client;
      const eid = ep.endpointId;

      await t.step("args and kwargs", async () => {
        const add = await c.registerFunction(PY.add, "add");
        const ids = await c.submit([
          { functionId: add, endpointId: eid, args: [1, 2] },
          { functionId: add, endpointId: eid, args: [1, 2], kwargs: { c: 10 } },
          { functionId: add, endpointId: eid, args: ["fun", "cX"], kwargs: { c: "" } },
          { functionId: add, endpointId: eid, args: [[1], [2]], kwargs: { c: [3] } },
        ]);
        const r = await c.waitForResults(ids, { timeoutMs: 240_000 });
        assertEquals(ids.map((id) => r.get(id)?.value), [3, 13, "funcX", [1, 2, 3]]);
      });

      await t.step("exception comes back with the remote traceback", async () => {
        const fail = await c.registerFunction(PY.fail, "fail");
        const [id] = await c.submit([{ functionId: fail, endpointId: eid, args: ["x42"] }]);
        const o = (await c.waitForResults([id], { timeoutMs: 240_000 })).get(id)!;
        assert(o.error, "expected a failure");
        assertEquals(o.status, "failed");
        assertEquals(o.error.type, "ValueError");
        assertMatch(o.error.remoteMessage, /bad input: x42/);
        assertMatch(o.error.remoteTraceback, /Traceback \(most recent call last\)/);
        assertMatch(o.error.remoteTraceback, /in fail/);
        assertMatch(o.error.remoteTraceback, /ValueError: bad input: x42/);
      });

      await t.step("shell function", async () => {
        const sh = await c.registerShellFunction("echo hello {name}; echo oops >&2; exit 3");
        const [id] = await c.submit([{
          functionId: sh,
          endpointId: eid,
          kwargs: { name: "funcx" },
        }]);
        const v = (await c.waitForResults([id], { timeoutMs: 240_000 })).get(id)!.value as Record<
          string,
          unknown
        >;
        assertEquals(v.returncode, 3);
        assertEquals(v.stdout, "hello funcx\n");
        assertEquals(v.stderr, "oops\n");
        const slow = await c.registerShellFunction("sleep 5", { timeout: 0.5 });
        const [id2] = await c.submit([{ functionId: slow, endpointId: eid }]);
        const v2 = (await c.waitForResults([id2], { timeoutMs: 240_000 })).get(id2)!
          .value as Record<string, unknown>;
        assertEquals(v2.returncode, 124);
        assertMatch(String(v2.stderr), /timed out/);
      });

      await t.step("10,000 tasks: every result present exactly once", async () => {
        const sq = await c.registerFunction(PY.square, "square");
        const n = 10_000;
        const before = await settledTasks(ep);
        const ids: string[] = [];
        for (let i = 0; i < n; i += 2500) {
          ids.push(
            ...await c.submit(
              Array.from({ length: Math.min(2500, n - i) }, (_, k) => ({
                functionId: sq,
                endpointId: eid,
                args: [i + k],
              })),
            ),
          );
        }
        assertEquals(new Set(ids).size, n);
        const r = await c.waitForResults(ids, { timeoutMs: 400_000 });
        let ok = 0;
        for (const [i, id] of ids.entries()) if (r.get(id)?.value === i * i) ok++;
        assertEquals(ok, n);
        // exactly once: the endpoint ran each task once and holds no unacked result
        const after = await settledTasks(ep, before.completed + n);
        assertEquals(after.completed - before.completed, n);
        assertEquals(after.failed, before.failed);
        const st = ep.status()!;
        assertEquals(st.unacked_results, 0);
      });

      assertEquals(await ep.stop(), 0);
    } finally {
      await w.close();
    }
  },
});
