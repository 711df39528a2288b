import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  endpointState,
  formatUptime,
  listEndpointNames,
  liveStatus,
  readStatusFile,
  type StatusFile,
} from "../../src/daemon/state.ts";
import { procStat } from "../../src/daemon/proc.ts";

function status(over: Partial<StatusFile> = {}): StatusFile {
  const now = new Date().toISOString();
  return {
    pid: 1,
    name: "ep",
    endpoint_id: "e1",
    state: "connected",
    started_at: new Date(Date.now() - 65_000).toISOString(),
    updated_at: now,
    last_heartbeat: now,
    heartbeat_threshold: 120,
    tasks: { queued: 0, running: 0, completed: 0, failed: 0 },
    unacked_results: 0,
    blocks: [],
    managers: [],
    errors: [],
    ...over,
  };
}

Deno.test("liveStatus: Running, Starting, Disconnected (state, stale file, old heartbeat)", () => {
  const now = Date.now();
  assertEquals(liveStatus(status(), now), "Running");
  assertEquals(liveStatus(status({ state: "starting" }), now), "Starting");
  assertEquals(liveStatus(status({ state: "disconnected" }), now), "Disconnected");
  assertEquals(
    liveStatus(status({ updated_at: new Date(now - 60_000).toISOString() }), now),
    "Disconnected",
  );
  assertEquals(
    liveStatus(status({ last_heartbeat: new Date(now - 121_000).toISOString() }), now),
    "Disconnected",
  );
  assertEquals(liveStatus(null, now), "Starting");
});

Deno.test("endpointState: Initialized, Stopped, Running with a live pid, stale cleaned", async () => {
  const home = Deno.makeTempDirSync({ prefix: "fx-state-" });
  const dir = join(home, "ep");
  Deno.mkdirSync(dir);
  Deno.writeTextFileSync(join(dir, "config.yaml"), "");
  assertEquals(endpointState(home, "ep").status, "Initialized");
  Deno.writeTextFileSync(join(dir, "endpoint.json"), JSON.stringify({ endpoint_id: "e1" }));
  assertEquals(endpointState(home, "ep").status, "Stopped");
  // a live process that is "ours": a sleep with its real start time in the pid file
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const st = procStat(child.pid)!;
    Deno.writeTextFileSync(join(dir, "daemon.pid"), `${child.pid}\n${st.startTicks}\n`);
    Deno.writeTextFileSync(join(dir, "status.json"), JSON.stringify(status({ pid: child.pid })));
    const s = endpointState(home, "ep");
    assertEquals([s.status, s.pid, s.endpoint_id], ["Running", child.pid, "e1"]);
    assert(s.uptime_seconds! >= 64 && s.uptime_seconds! < 120, String(s.uptime_seconds));
    // status.json of another process is ignored: the daemon has not reported yet
    Deno.writeTextFileSync(join(dir, "status.json"), JSON.stringify(status({ pid: 99999999 })));
    assertEquals(endpointState(home, "ep").status, "Starting");
    // the same pid with another start time is not ours
    Deno.writeTextFileSync(join(dir, "daemon.pid"), `${child.pid}\n${st.startTicks + 7}\n`);
    const stale = endpointState(home, "ep");
    assertEquals(stale.status, "Stopped");
    assert(stale.cleaned?.includes("another process"));
    assertEquals(listEndpointNames(home), ["ep"]);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  Deno.removeSync(home, { recursive: true });
});

Deno.test("readStatusFile tolerates garbage and fills missing lists", () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-state-" });
  const f = join(dir, "status.json");
  for (const junk of ["", "{", "[]", "null", '{"pid":"x"}', "\u0000\u0001"]) {
    Deno.writeTextFileSync(f, junk);
    assertEquals(readStatusFile(f), null, JSON.stringify(junk));
  }
  Deno.writeTextFileSync(f, '{"pid": 5, "state": "connected"}');
  const s = readStatusFile(f)!;
  assertEquals([s.blocks, s.managers, s.errors], [[], [], []]);
  assertEquals(s.tasks.queued, 0);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("formatUptime", () => {
  assertEquals(formatUptime(null), "-");
  assertEquals(formatUptime(9), "9s");
  assertEquals(formatUptime(250), "4m 10s");
  assertEquals(formatUptime(3725), "1h 2m");
  assertEquals(formatUptime(2 * 86400 + 3 * 3600), "2d 3h");
});
