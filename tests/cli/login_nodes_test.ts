/**
 * Several login nodes sharing one funcX home: each "login node" is a real separate UTS
 * namespace (`unshare --uts` with its own host name) and all of them use the same home
 * directory, as login nodes share $HOME over NFS/GPFS. Against the real local service.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import { MAIN_TS, tempHome } from "../helpers/cli.ts";
import {
  addUser,
  loginViaForm,
  startService,
  writeGlobalConfig,
  writeTokens,
} from "../helpers/service.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `funcx-endpoint <args>` on login node `host` (a fresh UTS namespace named `host`). */
async function on(host: string, home: string, args: string[]): Promise<Run> {
  const out = await new Deno.Command("unshare", {
    args: [
      "--uts",
      "sh",
      "-c",
      'hostname "$0" && exec "$@"',
      host,
      Deno.execPath(),
      "run",
      ...COMPILE_FLAGS,
      MAIN_TS,
      ...args,
    ],
    env: { FUNCX_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

interface Row {
  name: string;
  status: string;
  pid: number | null;
  host: string | null;
  remote: boolean;
}

async function listOn(host: string, home: string): Promise<Row> {
  const r = await on(host, home, ["list", "--json"]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0];
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

async function until(what: string, ms: number, cond: () => Promise<boolean> | boolean) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// the workers' address by interface and a port range, resolved at start (shown by `status`)
const PORTS = 40000 + 100 * Math.floor(Math.random() * 200);
const EP_CONFIG = `heartbeat_period: 2
heartbeat_threshold: 20
provider:
  type: local
  init_blocks: 0
  min_blocks: 0
  max_blocks: 1
executor:
  address: by-interface:lo
  worker_ports: "${PORTS}-${PORTS + 99}"
`;

Deno.test({
  name: "login nodes sharing a home: one lock with the host, list/status/stop from another node",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = tempHome();
    const svc = await startService({ home, heartbeatPeriod: 1 });
    const pids: number[] = [];
    try {
      await addUser(home, "alice", "pw-alice");
      await writeTokens(home, await loginViaForm(svc.authUrl, "alice", "pw-alice"));
      await writeGlobalConfig(home, svc);
      assertEquals((await on("login-a", home, ["configure", "ep"])).code, 0);
      Deno.writeTextFileSync(join(home, "ep", "config.yaml"), EP_CONFIG);

      // start on login-a; the lock names the host
      const s1 = await on("login-a", home, ["start", "ep"]);
      assertEquals(s1.code, 0, s1.stdout + s1.stderr);
      const pid1 = Number(/started \(pid (\d+)\)/.exec(s1.stdout)?.[1]);
      pids.push(pid1);
      assertEquals(
        Deno.readTextFileSync(join(home, "ep", "daemon.pid")),
        `${pid1}\n${
          /^\d+\n(\d+)\n/.exec(Deno.readTextFileSync(join(home, "ep", "daemon.pid")))![1]
        }\nlogin-a\n`,
      );

      // login-b sees it running on login-a (from status.json, not a local pid check)
      const row = await listOn("login-b", home);
      assertEquals([row.status, row.pid, row.host, row.remote], ["Running", pid1, "login-a", true]);
      const table = await on("login-b", home, ["list"]);
      match(table.stdout, /ep\s*│\s*Running.*login-a/);
      const st = await on("login-b", home, ["status", "ep"]);
      match(st.stdout, new RegExp(`Status: +Running \\(on host login-a, pid ${pid1},`));
      const at = /^Managers at: +tcp:\/\/127\.0\.0\.1:(\d+) \(executor\.address by-interface:lo\)$/m
        .exec(st.stdout);
      assert(at, st.stdout);
      assert(Number(at[1]) >= PORTS && Number(at[1]) < PORTS + 100, at[1]);
      match(
        Deno.readTextFileSync(join(home, "ep", "endpoint.log")),
        /manager socket on tcp:\/\/127\.0\.0\.1:\d+ \(executor\.address by-interface:lo: interface lo;/,
      );

      // a second start on login-b is refused, in one line naming the host
      const s2 = await on("login-b", home, ["start", "ep"]);
      assert(s2.code !== 0);
      match(
        s2.stderr,
        /already running on host login-a \(pid \d+\); stop it with `funcx-endpoint stop ep`/,
      );
      assertEquals(s2.stderr.trim().split("\n").length, 1, s2.stderr);
      // and so is the foreground daemon itself (the lock, not only the CLI check)
      const f2 = await on("login-b", home, ["start", "ep", "--foreground"]);
      assert(f2.code !== 0);
      match(f2.stderr, /already running on host login-a/);
      assert(alive(pid1));

      // clearing the lock of a live host is refused
      const c1 = await on("login-b", home, ["stop", "ep", "--clear-dead-host"]);
      assert(c1.code !== 0);
      match(c1.stderr, /is alive \(status\.json updated \d+ s ago\)/);

      // stop from login-b: a stop request the daemon on login-a acts on
      const t1 = await on("login-b", home, ["stop", "ep", "--timeout", "30"]);
      assertEquals(t1.code, 0, t1.stderr);
      match(t1.stdout, new RegExp(`stopped on host login-a \\(pid ${pid1}\\)`));
      await until("the daemon on login-a to exit", 10_000, () => !alive(pid1));
      assertEquals((await listOn("login-b", home)).status, "Stopped");
      match(
        Deno.readTextFileSync(join(home, "ep", "endpoint.log")),
        /stop request from host login-b/,
      );

      // login-a dies for good (kill -9: nothing cleans up); login-b sees it go stale
      const s3 = await on("login-a", home, ["start", "ep"]);
      assertEquals(s3.code, 0, s3.stdout + s3.stderr);
      const pid3 = Number(/started \(pid (\d+)\)/.exec(s3.stdout)?.[1]);
      pids.push(pid3);
      Deno.kill(pid3, "SIGKILL");
      await until("login-b to see login-a's daemon as Disconnected", 40_000, async () => {
        const r = await listOn("login-b", home);
        return r.status === "Disconnected" && r.host === "login-a";
      });
      const st3 = await on("login-b", home, ["status", "ep"]);
      match(st3.stdout, /if login-a is gone for good: `funcx-endpoint stop ep --clear-dead-host`/);
      const s4 = await on("login-b", home, ["start", "ep"]);
      assert(s4.code !== 0);
      match(s4.stderr, /already running on host login-a/);

      // the explicit flag clears it, and login-b can take over
      const c2 = await on("login-b", home, ["stop", "ep", "--clear-dead-host"]);
      assertEquals(c2.code, 0, c2.stderr);
      match(
        c2.stdout,
        new RegExp(`cleared the lock of the dead daemon on host login-a \\(pid ${pid3}\\)`),
      );
      const s5 = await on("login-b", home, ["start", "ep"]);
      assertEquals(s5.code, 0, s5.stdout + s5.stderr);
      const pid5 = Number(/started \(pid (\d+)\)/.exec(s5.stdout)?.[1]);
      pids.push(pid5);
      const row5 = await listOn("login-b", home);
      assertEquals([row5.status, row5.host, row5.remote], ["Running", "login-b", false]);
      assertEquals((await listOn("login-a", home)).host, "login-b");
      // a local stop on login-b (signals)
      const t5 = await on("login-b", home, ["stop", "ep"]);
      assertEquals(t5.code, 0, t5.stderr);
      match(t5.stdout, new RegExp(`stopped \\(pid ${pid5}\\)`));
    } finally {
      for (const pid of pids) {
        if (alive(pid)) {
          try {
            Deno.kill(-pid, "SIGKILL");
          } catch {
            try {
              Deno.kill(pid, "SIGKILL");
            } catch { /* gone */ }
          }
        }
      }
      await svc.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
