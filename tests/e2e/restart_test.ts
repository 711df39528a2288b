/**
 * Stop and restart the endpoint with results not yet acked: the service is SIGKILLed while
 * tasks run, the tasks finish on the endpoint (results unacknowledged), the endpoint is
 * stopped (SIGTERM) and persists them; after the service and the endpoint are restarted the
 * results are delivered — without running the tasks again — under the same endpoint id.
 * Also: the tokens file is 0600 and no token or secret appears in any log.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../auth/_assert.ts";
import { createWorld, PY, settledTasks } from "./_world.ts";
import { waitFor } from "../helpers/wait.ts";

function lines(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

async function until(what: string, fn: () => boolean, ms = 180_000): Promise<void> {
  await waitFor(fn, { what, timeoutMs: ms });
}

function* walk(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield p;
  }
}

Deno.test({
  name: "e2e: unacked results survive an endpoint stop/restart and are delivered; no token in logs",
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
      const n = 12;
      const ids = await c.submit(
        Array.from({ length: n }, (_, i) => ({
          functionId: fn,
          endpointId: ep.endpointId,
          // 2 s each: the service must be killed before the first results are acked, and
          // status.json (which says all tasks arrived) is written only once a second
          args: [log, `t${i}`, 2, `v${i}`],
        })),
      );
      await until("all tasks at the endpoint", () => {
        const t = ep.status()?.tasks;
        return !!t && t.queued + t.running + t.completed >= n && lines(log).length >= 1;
      });
      await w.svc.kill();
      await until("every task ran", () => lines(log).length >= n);
      await until("results unacked", () => ep.status()?.unacked_results === n);
      assertEquals(await ep.stop(), 0);
      const file = join(ep.dir, "unacked_results.json");
      assertEquals(Deno.statSync(file).mode! & 0o777, 0o600);
      assertEquals(Object.keys(JSON.parse(Deno.readTextFileSync(file))).length, n);

      await w.restartService();
      const ep2 = await w.startEndpoint("ep");
      assertEquals(ep2.endpointId, ep.endpointId);
      const r = await c.waitForResults(ids, { timeoutMs: 240_000 });
      for (const [i, id] of ids.entries()) assertEquals(r.get(id)?.value, `v${i}`, `task ${i}`);
      assertEquals(lines(log).length, n, "no task ran twice");
      await settledTasks(ep2);
      assertEquals(await ep2.stop(), 0);
      assertEquals(Object.keys(JSON.parse(Deno.readTextFileSync(file))).length, 0);

      // tokens 0600 in a 0700 dir; no token or secret in any log or output
      const tokFile = join(w.home, "credentials", "funcx_sdk_tokens.json");
      assertEquals(Deno.statSync(tokFile).mode! & 0o777, 0o600);
      assertEquals(Deno.statSync(join(w.home, "credentials")).mode! & 0o777, 0o700);
      const tok = JSON.parse(Deno.readTextFileSync(tokFile)).funcx_service;
      const secrets = [tok.access_token, tok.refresh_token].filter(Boolean) as string[];
      const reg = JSON.parse(Deno.readTextFileSync(join(ep.dir, "endpoint.json")));
      secrets.push(reg.endpoint_secret);
      assertEquals(Deno.statSync(join(ep.dir, "endpoint.json")).mode! & 0o777, 0o600);
      for (const k of ["endpoint.key_secret", "server.key"]) {
        assertEquals(Deno.statSync(join(ep.dir, "certificates", k)).mode! & 0o777, 0o600);
      }
      const texts: [string, string][] = [["endpoint stderr", ep.stderr() + ep2.stderr()], [
        "service stderr",
        w.svc.stderr(),
      ]];
      let logs = 0;
      for (const f of walk(w.home)) {
        if (/\.log(\.\d+)?$|\.stdio$|\.stderr$|status\.json$/.test(f)) {
          texts.push([f, Deno.readTextFileSync(f)]);
          logs++;
        }
      }
      assert(logs >= 3, "found the log files");
      for (const [name, text] of texts) {
        for (const s of secrets) assert(!text.includes(s), `a token/secret appears in ${name}`);
      }
    } finally {
      await w.close();
    }
  },
});
