import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { join } from "node:path";
import {
  acquirePidFile,
  AlreadyRunningError,
  checkPidFile,
  cleanStalePidFile,
  clearRemotePidFile,
  currentProcess,
  parsePidFile,
} from "../../src/daemon/pidfile.ts";
import { parsePsLine, parseStatLine, procStat } from "../../src/daemon/proc.ts";

function tmp(): string {
  return Deno.makeTempDirSync({ prefix: "fx-pid-" });
}

async function deadPid(): Promise<number> {
  const c = new Deno.Command("true").spawn();
  await c.status;
  return c.pid;
}

Deno.test("parseStatLine handles names with spaces and parentheses", () => {
  const st = parseStatLine("42 (a) b) S 1 40 41 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0");
  assertEquals(st, { pid: 42, state: "S", ppid: 1, pgrp: 40, session: 41, startTicks: 777 });
  assertEquals(parseStatLine("garbage"), undefined);
});

Deno.test("procStat reads this process", () => {
  const st = procStat(Deno.pid);
  assert(st);
  assertEquals(st.pid, Deno.pid);
  assert(st.startTicks > 0);
});

Deno.test("parsePidFile accepts only '<pid>\\n<ticks>\\n[<host>\\n]'", () => {
  assertEquals(parsePidFile("12\n345\n"), { pid: 12, startTicks: 345 });
  assertEquals(parsePidFile("12\n345\nlogin1\n"), { pid: 12, startTicks: 345, host: "login1" });
  assertEquals(parsePidFile("12\n345\nlog in\n"), undefined);
  assertEquals(parsePidFile("12\n345\n../x\n"), undefined);
  assertEquals(parsePidFile("12\n"), undefined);
  assertEquals(parsePidFile("abc\n1\n"), undefined);
  assertEquals(parsePidFile("0\n1\n"), undefined);
});

Deno.test("acquire writes pid + start ticks, refuses a second owner, release removes", async () => {
  const dir = tmp();
  const path = join(dir, "daemon.pid");
  assertEquals(checkPidFile(path), { state: "none" });
  const pf = await acquirePidFile(path);
  const me = currentProcess();
  assertEquals(Deno.readTextFileSync(path), `${me.pid}\n${me.startTicks}\n${Deno.hostname()}\n`);
  assertEquals(checkPidFile(path), { state: "running", pid: me.pid, startTicks: me.startTicks });
  // the same file seen from another login node sharing the home: not judged by a local pid
  assertEquals(checkPidFile(path, "other-node"), {
    state: "remote",
    pid: me.pid,
    startTicks: me.startTicks,
    host: Deno.hostname(),
  });
  await rejects(
    () => acquirePidFile(path),
    (e) => e instanceof AlreadyRunningError && e.pid === me.pid,
  );
  pf.release();
  pf.release();
  assertEquals(checkPidFile(path), { state: "none" });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a dead pid is stale and gets cleaned, then acquire succeeds", async () => {
  const dir = tmp();
  const path = join(dir, "daemon.pid");
  const pid = await deadPid();
  Deno.writeTextFileSync(path, `${pid}\n12345\n`);
  const s = checkPidFile(path);
  assertEquals(s.state, "stale");
  assert(s.state === "stale" && s.reason.includes("not running"));
  const pf = await acquirePidFile(path);
  assertEquals(parsePidFile(Deno.readTextFileSync(path))?.pid, Deno.pid);
  pf.release();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a reused pid (same pid, other start time) is stale", () => {
  const dir = tmp();
  const path = join(dir, "daemon.pid");
  const me = currentProcess();
  Deno.writeTextFileSync(path, `${me.pid}\n${me.startTicks + 1}\n`);
  const s = cleanStalePidFile(path);
  assertEquals(s.state, "stale");
  assert(s.state === "stale" && s.reason.includes("another process"));
  assertEquals(checkPidFile(path), { state: "none" });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("garbage pid file content is stale and removed", () => {
  const dir = tmp();
  const path = join(dir, "daemon.pid");
  Deno.writeTextFileSync(path, "not a pid\n");
  assertEquals(cleanStalePidFile(path).state, "stale");
  assertEquals(checkPidFile(path), { state: "none" });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("parsePsLine (the macOS fallback) parses ps -o pid,ppid,pgid,stat,lstart", () => {
  const st = parsePsLine(" 2009  2002  2009 Ss   Wed Nov 25 14:03:16 2026");
  assertEquals(st, {
    pid: 2009,
    state: "S",
    ppid: 2002,
    pgrp: 2009,
    session: 2009,
    startTicks: Math.floor(new Date(2026, 10, 25, 14, 3, 16).getTime() / 1000),
  });
  assertEquals(parsePsLine("garbage"), undefined);
  assertEquals(parsePsLine(" 1 0 0 S Wed Foo 25 14:03:16 2026"), undefined);
});

Deno.test("without /proc (FUNCX_PROC_PS=1) the ps fallback sees the same processes", async () => {
  const viaProc = procStat(Deno.pid)!;
  Deno.env.set("FUNCX_PROC_PS", "1");
  try {
    const viaPs = procStat(Deno.pid)!;
    assertEquals([viaPs.pid, viaPs.ppid, viaPs.pgrp], [viaProc.pid, viaProc.ppid, viaProc.pgrp]);
    const age = Date.now() / 1000 - viaPs.startTicks;
    assert(age >= 0 && age < 24 * 3600, `start time ${viaPs.startTicks}`);
    // the pid file machinery works on top of it
    const dir = tmp();
    const path = join(dir, "daemon.pid");
    const pf = await acquirePidFile(path);
    assertEquals(checkPidFile(path).state, "running");
    pf.release();
    Deno.writeTextFileSync(path, `${Deno.pid}\n${viaPs.startTicks - 5}\n`);
    assertEquals(cleanStalePidFile(path).state, "stale");
    Deno.removeSync(dir, { recursive: true });
  } finally {
    Deno.env.delete("FUNCX_PROC_PS");
  }
});

Deno.test("a lock taken on another host is never cleaned as stale; only cleared explicitly", async () => {
  const dir = tmp();
  const path = join(dir, "daemon.pid");
  const pid = await deadPid();
  Deno.writeTextFileSync(path, `${pid}\n12345\nlogin9\n`);
  assertEquals(cleanStalePidFile(path).state, "remote");
  assert(Deno.statSync(path).isFile);
  await rejects(
    () => acquirePidFile(path),
    (e) => e instanceof AlreadyRunningError && e.host === "login9" && /login9/.test(e.message),
  );
  assertEquals(clearRemotePidFile(path, "login8", pid), false);
  assertEquals(clearRemotePidFile(path, "login9", pid), true);
  const pf = await acquirePidFile(path);
  pf.release();
  Deno.removeSync(dir, { recursive: true });
});
