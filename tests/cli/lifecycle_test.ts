/**
 * End-to-end lifecycle of an endpoint through the CLI, in a temporary funcX home,
 * against the real local funcX service (HTTP API + ZeroMQ forwarder + OAuth2).
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { expectedBuild, runCli, tempHome } from "../helpers/cli.ts";
import { allProcesses, isLiveStat, procStat } from "../../src/daemon/proc.ts";
import {
  addUser,
  loginViaForm,
  startService,
  writeGlobalConfig,
  writeTokens,
} from "../helpers/service.ts";
import { waitFor } from "../helpers/wait.ts";

interface ListRow {
  name: string;
  status: string;
  endpoint_id: string | null;
  pid: number | null;
}

async function list(home: string): Promise<ListRow[]> {
  const r = await runCli(home, ["list", "--json"]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// /proc on Linux, ps elsewhere (macOS): the program's own portable process reader
function alive(pid: number): boolean {
  return isLiveStat(procStat(pid));
}

async function waitGone(pid: number, ms = 10_000) {
  await waitFor(() => !alive(pid), { what: `pid ${pid} gone`, timeoutMs: ms });
}

const EP_CONFIG = `# lifecycle test: no blocks, so no managers are started
heartbeat_period: 2
heartbeat_threshold: 20
provider:
  type: local
  init_blocks: 0
  min_blocks: 0
  max_blocks: 1
`;

Deno.test({
  name: "configure → start → refuse 2nd start → stop once → kill -9 → stale pid → delete",
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

      const c = await runCli(home, ["configure", "ep"]);
      assertEquals(c.code, 0, c.stderr);
      Deno.writeTextFileSync(join(home, "ep", "config.yaml"), EP_CONFIG);
      assertEquals((await list(home)).map((r) => [r.name, r.status]), [["ep", "Initialized"]]);

      // start: detaches, returns once connected
      const s1 = await runCli(home, ["start", "ep"]);
      assertEquals(s1.code, 0, s1.stdout + s1.stderr);
      const m1 = /started \(pid (\d+)\), endpoint id ([0-9a-f-]{36})/.exec(s1.stdout);
      assert(m1, s1.stdout);
      const pid1 = Number(m1[1]);
      pids.push(pid1);
      const epId = m1[2];
      let rows = await list(home);
      assertEquals(rows[0].status, "Running");
      assertEquals(rows[0].pid, pid1);
      assertEquals(rows[0].endpoint_id, epId);
      const table = await runCli(home, ["list"]);
      match(table.stdout, new RegExp(`ep +│ Running +│ ${epId} │ ${pid1} `));

      // a second start is refused
      const s2 = await runCli(home, ["start", "ep"]);
      assertEquals(s2.code, 1);
      assertEquals(
        s2.stderr.trim(),
        `funcx-endpoint: endpoint "ep" is already running (pid ${pid1})`,
      );
      assertEquals((await list(home))[0].pid, pid1);

      // status shows the daemon's view
      const st = await runCli(home, ["status", "ep", "--json"]);
      assertEquals(st.code, 0, st.stderr);
      const sj = JSON.parse(st.stdout);
      assertEquals(sj.status, "Running");
      assertEquals(sj.daemon.state, "connected");
      assertEquals(sj.daemon.endpoint_id, epId);
      const want = expectedBuild();
      assertEquals(sj.daemon.build.protocol, "0.3.4");
      if (want) {
        assertEquals([sj.daemon.build.release, sj.daemon.build.commit], [
          want.release,
          want.commit,
        ]);
      }

      // stop works the first time
      const stop1 = await runCli(home, ["stop", "ep"]);
      assertEquals(stop1.code, 0, stop1.stderr);
      assertEquals(stop1.stdout.trim(), `Endpoint "ep" stopped (pid ${pid1})`);
      assert(!alive(pid1), "daemon survived stop");
      assertEquals(Deno.readDirSync(join(home, "ep")).some((e) => e.name === "daemon.pid"), false);
      rows = await list(home);
      assertEquals([rows[0].status, rows[0].pid, rows[0].endpoint_id], ["Stopped", null, epId]);
      const stop2 = await runCli(home, ["stop", "ep"]);
      assertEquals(stop2.code, 0);
      assertEquals(stop2.stdout.trim(), `Endpoint "ep" is not running`);

      // restart with the same endpoint id, then kill -9: list cleans the stale pid file
      const s3 = await runCli(home, ["start", "ep"]);
      assertEquals(s3.code, 0, s3.stdout + s3.stderr);
      const pid3 = Number(/pid (\d+)/.exec(s3.stdout)?.[1]);
      pids.push(pid3);
      assert(s3.stdout.includes(epId), "endpoint id not reused");
      Deno.kill(pid3, "SIGKILL");
      await waitGone(pid3);
      rows = await list(home);
      assertEquals([rows[0].status, rows[0].pid], ["Stopped", null]);
      assertEquals(Deno.readDirSync(join(home, "ep")).some((e) => e.name === "daemon.pid"), false);

      // kill -9 again: start itself detects and cleans the stale pid file
      const s4 = await runCli(home, ["start", "ep"]);
      assertEquals(s4.code, 0, s4.stdout + s4.stderr);
      const pid4 = Number(/pid (\d+)/.exec(s4.stdout)?.[1]);
      pids.push(pid4);
      Deno.kill(pid4, "SIGKILL");
      await waitGone(pid4);
      const s5 = await runCli(home, ["start", "ep"]);
      assertEquals(s5.code, 0, s5.stdout + s5.stderr);
      match(s5.stderr, /Cleaned up a stale pid file: process \d+ is not running/);
      const pid5 = Number(/pid (\d+)/.exec(s5.stdout)?.[1]);
      pids.push(pid5);
      assertEquals((await list(home))[0].status, "Running");

      // delete stops it first and removes the directory
      const d = await runCli(home, ["delete", "ep", "--yes"]);
      assertEquals(d.code, 0, d.stderr);
      match(d.stdout, new RegExp(`Endpoint "ep" stopped \\(pid ${pid5}\\)`));
      match(d.stdout, /Endpoint "ep" deleted/);
      await waitGone(pid5);
      assertEquals(await list(home), []);
    } finally {
      for (const pid of pids) {
        try {
          if (alive(pid)) Deno.kill(-pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "start fails clearly: not logged in, bad config, config.py",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = tempHome();
    assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
    const noLogin = await runCli(home, ["start", "ep"]);
    assertEquals(noLogin.code, 1);
    assertEquals(noLogin.stderr.trim().split("\n").length, 1, noLogin.stderr);
    match(noLogin.stderr, /^funcx-endpoint: cannot start endpoint "ep": .*funcx-endpoint login/);
    const cases: [string, RegExp][] = [
      ["provider: [\n", /config\.yaml: malformed YAML at line \d+, column \d+: /],
      ["provider:\n  max_blocks: many\n", /provider\.max_blocks: "many" is not a number/],
      ["workers: 4\n", /workers: unknown key; expected one of/],
    ];
    for (const [yaml, re] of cases) {
      Deno.writeTextFileSync(join(home, "ep", "config.yaml"), yaml);
      const r = await runCli(home, ["start", "ep"]);
      assertEquals(r.code, 1);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      match(r.stderr, re);
    }
    Deno.removeSync(join(home, "ep", "config.yaml"));
    Deno.writeTextFileSync(join(home, "ep", "config.py"), "config = Config()\n");
    const py = await runCli(home, ["start", "ep"]);
    assertEquals(py.code, 1);
    match(py.stderr, /config\.py: Python endpoint configs .* are not supported.*config\.yaml/);
    assertEquals(py.stderr.trim().split("\n").length, 1);
    Deno.removeSync(home, { recursive: true });
  },
});

Deno.test({
  name: "start shows why the daemon failed; restart, status and logs on a running endpoint",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = tempHome();
    const svc = await startService({ home, heartbeatPeriod: 1 });
    const pids: number[] = [];
    try {
      await addUser(home, "bob", "pw-bob");
      const good = await loginViaForm(svc.authUrl, "bob", "pw-bob");
      await writeGlobalConfig(home, svc);
      assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
      Deno.writeTextFileSync(join(home, "ep", "config.yaml"), EP_CONFIG);

      // a token the service does not know: registration is refused, the daemon exits,
      // and start prints the log tail and fails instead of reporting success
      await writeTokens(home, {
        ...good,
        access_token: "not-a-real-token-0123456789",
        refresh_token: "not-a-real-refresh-token-0123456789",
      });
      const bad = await runCli(home, ["start", "ep"]);
      assertEquals(bad.code, 1, bad.stdout + bad.stderr);
      match(bad.stderr, /\[daemon\] endpoint ep failed: /);
      match(
        bad.stderr,
        /funcx-endpoint: endpoint "ep" failed to start \(exit code 1\); see .*endpoint\.log\n$/,
      );
      assertEquals((await list(home))[0].status, "Initialized");

      await writeTokens(home, good);
      const s1 = await runCli(home, ["start", "ep"]);
      assertEquals(s1.code, 0, s1.stdout + s1.stderr);
      const pid1 = Number(/pid (\d+)/.exec(s1.stdout)?.[1]);
      pids.push(pid1);

      const st = await runCli(home, ["status", "ep"]);
      assertEquals(st.code, 0, st.stderr);
      match(st.stdout, new RegExp(`Status: +Running \\(pid ${pid1}, up `));
      match(st.stdout, /Daemon state: +connected/);
      const want = expectedBuild();
      const version = want ? `${want.release} (commit ${want.commit}, funcX protocol 0.3.4)` : "";
      match(
        st.stdout,
        /Version: +\S+ \(commit (?:[0-9a-f]{7,64}|unknown), funcX protocol 0\.3\.4\)/,
      );
      assert(st.stdout.includes(`Version:        ${version}`), st.stdout);
      match(st.stdout, /Tasks: +0 queued, 0 running/);
      match(st.stdout, /Blocks \(0\):/);
      match(st.stdout, /Managers \(0\), workers 0/);

      const logs = await runCli(home, ["logs", "ep", "-n", "5"]);
      assertEquals(logs.code, 0, logs.stderr);
      const logLines = logs.stdout.trim().split("\n");
      assert(logLines.length <= 5 && logLines.length > 0, logs.stdout);
      assert(!logs.stdout.includes(good.access_token), "token in the log");

      const r = await runCli(home, ["restart", "ep"]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      match(r.stdout, new RegExp(`Endpoint "ep" stopped \\(pid ${pid1}\\)`));
      const pid2 = Number(/started \(pid (\d+)\)/.exec(r.stdout)?.[1]);
      pids.push(pid2);
      assert(pid2 !== pid1 && !alive(pid1));
      assertEquals((await list(home))[0].status, "Running");

      // the service goes away: start of a stopped endpoint does not pretend success
      assertEquals((await runCli(home, ["stop", "ep"])).code, 0);
      await svc.stop();
      // it says why at once and leaves nothing running...
      const gone = await runCli(home, ["start", "ep"]);
      assertEquals(gone.code, 1, gone.stdout + gone.stderr);
      match(gone.stderr, /^funcx-endpoint: cannot reach the funcX service at .*connection refused/);
      assertEquals((await list(home))[0].status, "Stopped");
      // ...unless asked to keep retrying
      const down = await runCli(home, ["start", "ep", "--timeout", "3", "--keep-retrying"]);
      assertEquals(down.code, 1, down.stdout + down.stderr);
      match(down.stderr, /did not connect within 3 s; it keeps retrying in the background/);
      const pid3 = Number(/\(pid (\d+)\) did not connect/.exec(down.stderr)?.[1]);
      pids.push(pid3);
      assert(alive(pid3));
      const stop = await runCli(home, ["stop", "ep"]);
      assertEquals(stop.code, 0, stop.stderr);
      assertEquals(stop.stdout.trim(), `Endpoint "ep" stopped (pid ${pid3})`);
      await waitGone(pid3);
    } finally {
      for (const pid of pids) {
        try {
          if (pid && alive(pid)) Deno.kill(-pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});

function groupMembers(pgid: number): number[] {
  return allProcesses().filter((p) => p.pgrp === pgid && isLiveStat(p)).map((p) => p.pid);
}

Deno.test({
  name: "kill -9 of a daemon with a running block: list cleans up its leftover manager",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = tempHome();
    const svc = await startService({ home, heartbeatPeriod: 1 });
    let pid = 0;
    try {
      await addUser(home, "carol", "pw-carol");
      await writeTokens(home, await loginViaForm(svc.authUrl, "carol", "pw-carol"));
      await writeGlobalConfig(home, svc);
      assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
      Deno.writeTextFileSync(
        join(home, "ep", "config.yaml"),
        EP_CONFIG.replace("init_blocks: 0", "init_blocks: 1") +
          "executor:\n  max_workers_per_node: 1\n",
      );
      const s = await runCli(home, ["start", "ep"]);
      assertEquals(s.code, 0, s.stdout + s.stderr);
      pid = Number(/pid (\d+)/.exec(s.stdout)?.[1]);
      // wait until the block's manager has registered
      await waitFor(
        async () => JSON.parse((await runCli(home, ["status", "ep", "--json"])).stdout),
        {
          what: "a manager registered",
          until: (st) => (st.daemon?.managers?.length ?? 0) > 0,
          timeoutMs: 60_000,
          everyMs: 500,
        },
      );
      const before = groupMembers(pid).filter((p) => p !== pid);
      assert(before.length > 0, "the manager is not in the daemon's process group");
      Deno.kill(pid, "SIGKILL");
      await waitGone(pid);
      assert(groupMembers(pid).length > 0, "nothing was left over to clean");
      const l = await list(home);
      assertEquals([l[0].status, l[0].pid], ["Stopped", null]);
      await waitFor(() => groupMembers(pid!), {
        what: "the daemon's process group cleaned",
        until: (left) => left.length === 0,
        timeoutMs: 10_000,
      });
    } finally {
      if (pid) {
        try {
          Deno.kill(-pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
