import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { spawnDetached } from "../../src/daemon/detach.ts";
import { checkPidFile } from "../../src/daemon/pidfile.ts";
import { allProcesses, isLiveStat, procStat, sendSignal } from "../../src/daemon/proc.ts";
import { stopDaemon, waitForExit } from "../../src/daemon/stop.ts";
import { waitFor } from "../helpers/wait.ts";

// A bash "daemon" that writes its own pid file (pid + /proc start ticks), starts a child
// in its process group, and reacts to SIGTERM as told.
const DAEMON = `
pidfile="$1"; onterm="$2"
read -r l < /proc/$$/stat; rest="\${l##*) }"; set -- $rest
sleep 60 & child=$!
trap "$onterm" TERM
printf '%s\\n%s\\n' "$$" "\${20}" > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
echo "daemon up"
while :; do sleep 0.05; done
`;

async function startFake(dir: string, onTerm: string) {
  const pidFile = join(dir, "daemon.pid");
  const d = spawnDetached({
    args: ["-c", DAEMON, "fake", pidFile, onTerm],
    home: dir,
    logFile: join(dir, "daemon.log"),
    command: { cmd: "bash", args: [] },
  });
  await waitFor(() => checkPidFile(pidFile).state, {
    what: "the fake daemon's pid file",
    until: (st) => st === "running",
    timeoutMs: 5000,
  });
  return { pidFile, d };
}

Deno.test("spawnDetached starts a new session with output in the log file", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-stop-" });
  const { pidFile, d } = await startFake(dir, "kill $child; exit 0");
  const st = procStat(d.pid);
  assert(st);
  assertEquals(st.session, d.pid);
  assertEquals(st.pgrp, d.pid);
  assert(Deno.readTextFileSync(join(dir, "daemon.log")).includes("daemon up"));
  assertEquals((await stopDaemon({ pidFile })).result, "stopped");
  await d.exited;
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("stop: clean exit on SIGTERM, pid file removed, second stop is a no-op", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-stop-" });
  const { pidFile, d } = await startFake(dir, "kill $child; exit 0");
  const r = await stopDaemon({ pidFile, timeoutMs: 10_000 });
  assertEquals(r, { result: "stopped", pid: d.pid });
  assertEquals((await d.exited).code, 0);
  assertEquals(checkPidFile(pidFile), { state: "none" });
  assertEquals(await stopDaemon({ pidFile }), { result: "not-running" });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("stop: a daemon ignoring SIGTERM is killed with its whole process group", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-stop-" });
  const { pidFile, d } = await startFake(dir, "");
  const group = allProcesses().filter((p) => p.pgrp === d.pid && isLiveStat(p));
  assert(group.length >= 2, "daemon and its child share the group");
  const r = await stopDaemon({ pidFile, timeoutMs: 300 });
  assertEquals(r, { result: "killed", pid: d.pid });
  assertEquals((await d.exited).signal, "SIGKILL");
  for (const p of group) assert(await waitForExit(p.pid, p.startTicks, 5000), `${p.pid} left`);
  assertEquals(checkPidFile(pidFile), { state: "none" });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("stop: a stale pid file is cleaned and reported", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-stop-" });
  const pidFile = join(dir, "daemon.pid");
  const c = new Deno.Command("true").spawn();
  await c.status;
  Deno.writeTextFileSync(pidFile, `${c.pid}\n1\n`);
  const r = await stopDaemon({ pidFile });
  assertEquals(r.result, "stale");
  assertEquals(checkPidFile(pidFile), { state: "none" });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("after kill -9 of the daemon, stop cleans the pid file and kills its leftovers", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-stop-" });
  const { pidFile, d } = await startFake(dir, "");
  sendSignal(d.pid, "SIGKILL"); // only the daemon, like `kill -9 <pid>`
  await d.exited;
  // its `sleep 60` child survives in the daemon's process group (the loop's short
  // `sleep 0.05` children end by themselves and are not counted)
  const children = allProcesses().filter((p) => {
    if (p.pgrp !== d.pid || !isLiveStat(p)) return false;
    try {
      return Deno.readTextFileSync(`/proc/${p.pid}/cmdline`) === "sleep\x0060\x00";
    } catch {
      return false;
    }
  });
  assertEquals(children.length, 1, "no leftover sleep 60");
  // without the home (or with another one) nothing is killed
  const other = stopDaemon({ pidFile: join(dir, "nope.pid"), home: "/elsewhere" });
  assertEquals(await other, { result: "not-running" });
  Deno.copyFileSync(pidFile, join(dir, "copy.pid"));
  const wrongHome = await stopDaemon({ pidFile: join(dir, "copy.pid"), home: "/elsewhere" });
  assert(wrongHome.result === "stale" && wrongHome.leftovers === 0, JSON.stringify(wrongHome));
  for (const c of children) assert(isLiveStat(procStat(c.pid)), "a stranger's process was killed");
  const r = await stopDaemon({ pidFile, home: dir });
  assertEquals(r.result, "stale");
  assert(r.result === "stale" && r.leftovers >= 1, JSON.stringify(r));
  for (const c of children) assert(await waitForExit(c.pid, c.startTicks, 5000), "leftover");
  assertEquals(checkPidFile(pidFile), { state: "none" });
  Deno.removeSync(dir, { recursive: true });
});
