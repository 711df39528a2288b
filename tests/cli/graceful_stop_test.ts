/**
 * Issue 7, no lost data on a planned stop: `funcx-endpoint stop` / `restart` while slow tasks
 * run and wait must not fail them (no ManagerLost). Tasks the endpoint could not finish stay
 * unfinished at the service, which delivers them again to the restarted endpoint; results
 * already computed are delivered and never recomputed. Real service, real CLI (detached
 * daemon), real python3 workers; the tasks log every run to a file, so reruns are visible.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import type { StatusFile } from "../../src/daemon/state.ts";
import type { FuncXClient, TaskOutcome } from "../../src/sdk/client.ts";
import { createWorld, fastEndpointConfig, PY } from "../e2e/_world.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait.ts";

function _runs(log: string): Map<string, number> {
  const n = new Map<string, number>();
  let text = "";
  try {
    text = Deno.readTextFileSync(log);
  } catch { /* nothing ran yet */ }
  for (const line of text.split("\n")) {
    const tag = line.split(" ")[0];
    if (tag) n.set(tag, (n.get(tag) ?? 0) + 1);
  }
  return n;
}

async function _until(what: string, ok: () => boolean, ms = 120_000): Promise<void> {
  await waitFor(ok, { what, timeoutMs: ms });
}

function _status(dir: string): StatusFile | null {
  try {
    return JSON.parse(Deno.readTextFileSync(join(dir, "status.json")));
  } catch {
    return null;
  }
}

/** Submit `n` logged tasks of `seconds` each with tags `<prefix><i>` and values `v<prefix><i>`. */
async function _submit(
  c: FuncXClient,
  fn: string,
  endpointId: string,
  log: string,
  prefix: string,
  n: number,
  seconds: number,
): Promise<string[]> {
  return await c.submit(
    Array.from({ length: n }, (_, i) => ({
      functionId: fn,
      endpointId,
      args: [log, `${prefix}${i}`, seconds, `v${prefix}${i}`],
    })),
  );
}

/**
 * After the stop: no task has failed. Returns the outcomes already final, by task id (the
 * service hands a result out once, so they are kept for the final check).
 */
async function _noneFailed(
  c: FuncXClient,
  ids: string[],
  prefix: string,
): Promise<Map<string, TaskOutcome>> {
  const now = await c.getBatchResult(ids);
  const done = new Map<string, TaskOutcome>();
  for (const [i, id] of ids.entries()) {
    const o = now.get(id) as TaskOutcome;
    assert(!o.error, `task ${prefix}${i} failed on stop: ${o.error?.type}: ${o.error?.message}`);
    if (!o.pending) done.set(id, o);
  }
  return done;
}

/**
 * Every task succeeded with its value; tasks finished before the stop (`checkReruns`) never
 * ran again, the others ran at most once more.
 */
async function _allOnce(
  c: FuncXClient,
  ids: string[],
  prefix: string,
  log: string,
  earlier: Map<string, TaskOutcome>,
  checkReruns: boolean,
): Promise<void> {
  const rest = ids.filter((id) => !earlier.has(id));
  const r = new Map([...earlier, ...await c.waitForResults(rest, { timeoutMs: 180_000 })]);
  for (const [i, id] of ids.entries()) {
    const o = r.get(id)!;
    assert(!o.pending, `task ${prefix}${i} never finished`);
    assert(!o.error, `task ${prefix}${i} failed: ${o.error?.type}: ${o.error?.message}`);
    assertEquals(o.value, `v${prefix}${i}`, `task ${prefix}${i}`);
  }
  const runs = _runs(log);
  for (const [i, id] of ids.entries()) {
    const tag = `${prefix}${i}`;
    const n = runs.get(tag) ?? 0;
    if (checkReruns && earlier.has(id)) {
      assertEquals(n, 1, `${tag} finished before the stop but ran again`);
    } else assert(n === 1 || n === 2, `${tag} ran ${n} times`);
  }
}

Deno.test({
  name: "cli: stop/start and restart with tasks in flight: every task completes once, none fails",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await createWorld();
    const home = w.home;
    const dir = join(home, "ep");
    try {
      w.configure("ep", fastEndpointConfig());
      const s1 = await runCli(home, ["start", "ep"]);
      assertEquals(s1.code, 0, s1.stderr);
      const endpointId = _status(dir)!.endpoint_id!;
      const c = w.client;
      const fn = await c.registerFunction(PY.logged, "logged");
      const log = join(home, "runs.log");

      // 1. `stop` while 2 tasks run and 6 wait, then `start`
      const a = await _submit(c, fn, endpointId, log, "a", 8, 1.5);
      await _until("the first tasks to run", () => _runs(log).size >= 3);
      const stop = await runCli(home, ["stop", "ep"]);
      assertEquals(stop.code, 0, stop.stderr);
      const aDone = await _noneFailed(c, a, "a");
      assert(aDone.size < a.length, "every task finished before the stop: nothing was tested");
      const s2 = await runCli(home, ["start", "ep"]);
      assertEquals(s2.code, 0, s2.stderr);
      await _allOnce(c, a, "a", log, aDone, true);

      // 2. `restart` while tasks run and wait
      const b = await _submit(c, fn, endpointId, log, "b", 8, 1.5);
      await _until("the next tasks to run", () => [..._runs(log).keys()].some((t) => t[0] === "b"));
      const restart = await runCli(home, ["restart", "ep"]);
      assertEquals(restart.code, 0, restart.stderr);
      // (after `restart` the new daemon may already have finished some: no rerun check here)
      await _allOnce(c, b, "b", log, await _noneFailed(c, b, "b"), false);

      const logText = Deno.readTextFileSync(join(dir, "endpoint.log"));
      assert(/left unfinished for the service to deliver again/.test(logText), "stop summary");
      const stop2 = await runCli(home, ["stop", "ep"]);
      assertEquals(stop2.code, 0, stop2.stderr);
    } finally {
      await runCli(home, ["stop", "ep"]).catch(() => {});
      await w.close();
    }
  },
});
