/**
 * Failures surfaced, not hidden: an `executor.python` that exists but cannot run the worker
 * (it prints an import error and exits, like a broken environment). Against the real local
 * service, endpoint, manager and worker processes: the endpoint shows Degraded with the
 * worker's stderr in `status`, `list` and `status.json`, logs the reason once, and the
 * manager restarts workers with a growing back-off instead of twice a second.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import { MAIN_TS, runCli } from "../helpers/cli.ts";
import { createWorld, fastEndpointConfig } from "./_world.ts";

async function until(what: string, ms: number, cond: () => boolean | Promise<boolean>) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function managerLog(dir: string): string {
  const logs = join(dir, "worker_logs", "0");
  return [...Deno.readDirSync(logs)].filter((e) => /^manager-.*\.log$/.test(e.name))
    .map((e) => Deno.readTextFileSync(join(logs, e.name))).join("");
}

Deno.test({
  name: "a python that cannot start workers: Degraded with its stderr, back-off, logged once",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    try {
      const py = join(w.home, "broken-python3");
      Deno.writeTextFileSync(
        py,
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'broken_site'\" >&2\nexit 1\n",
        { mode: 0o755 },
      );
      w.configure("bad", fastEndpointConfig(`  python: ${py}`));
      const ep = await w.startEndpoint("bad");
      await until("Degraded in status.json", 30_000, () => !!ep.status()?.degraded);
      const t0 = Date.now();
      const reason = ep.status()!.degraded!;
      match(
        reason,
        /^manager \S+: workers exit before their first task \(\d+ in a row; exit code 1\): ModuleNotFoundError: No module named 'broken_site'$/,
      );

      const st = await runCli(w.home, ["status", "bad"]);
      assertEquals(st.code, 0, st.stderr);
      match(st.stdout, /^Status: +Degraded \(pid \d+/m);
      match(st.stdout, /^Degraded: +manager .*No module named 'broken_site'$/m);
      const js = JSON.parse((await runCli(w.home, ["list", "--json"])).stdout);
      assertEquals(js[0].status, "Degraded");
      match(js[0].degraded, /broken_site/);
      match((await runCli(w.home, ["list"])).stdout, /^bad: Degraded: manager .*broken_site/m);

      // the manager backs off: over 20 s it starts far fewer workers than 2 per second
      const count = () =>
        (managerLog(ep.dir).match(/workers exit before their first task/g) ?? []).length;
      const before = count();
      await until("20 s of back-off", 25_000, () => Date.now() - t0 >= 20_000);
      const deaths = count() - before;
      assert(deaths <= 8, `${deaths} worker deaths in 20 s`);
      match(managerLog(ep.dir), /next worker start in (8|16|32)s/);
      // bounded worker logs
      const files = [...Deno.readDirSync(join(ep.dir, "worker_logs", "0"))]
        .filter((e) => e.name.endsWith(".stderr"));
      assert(files.length <= 20, `${files.length} worker stderr files`);
      // the reason is logged once (it repeats with other counts, same kind)
      const log = Deno.readTextFileSync(join(ep.dir, "endpoint.log"));
      assertEquals((log.match(/Degraded: manager .*broken_site/g) ?? []).length, 1, log);
      assertEquals(ep.status()!.state, "connected");
      assertEquals(await ep.stop(), 0);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "a block whose manager never connects: Degraded with the block's output tail",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    let child: Deno.ChildProcess | undefined;
    try {
      // worker_init hangs (a license server, a module system), so the manager never starts
      w.configure(
        "stuck",
        [
          "heartbeat_period: 1",
          "heartbeat_threshold: 20",
          "provider:",
          "  type: local",
          "  init_blocks: 1",
          "  min_blocks: 1",
          "  max_blocks: 1",
          '  worker_init: "echo waiting for the license server; exec sleep 600"',
          "executor:",
          "  heartbeat_period: 1",
          "  heartbeat_threshold: 3",
          "",
        ].join("\n"),
      );
      const dir = join(w.home, "stuck");
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...COMPILE_FLAGS, MAIN_TS, "start", "stuck", "--foreground"],
        env: { FUNCX_HOME: w.home, NO_COLOR: "1" },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const status = () => {
        try {
          return JSON.parse(Deno.readTextFileSync(join(dir, "status.json")));
        } catch {
          return null;
        }
      };
      await until("Degraded in status.json", 60_000, () => !!status()?.degraded);
      match(
        status().degraded,
        /^block 0: job local-\d+ runs but its manager has not connected to tcp:\/\/127\.0\.0\.1:\d+ for 6s; job output: waiting for the license server$/,
      );
      const st = await runCli(w.home, ["status", "stuck"]);
      match(st.stdout, /^Status: +Degraded/m);
      match(st.stdout, /RUNNING.*manager not connected; output: waiting for the license server/);
      child.kill("SIGTERM");
      assertEquals((await child.status).code, 0);
      child = undefined;
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      await w.close();
    }
  },
});
