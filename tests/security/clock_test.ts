/**
 * Wall-clock jumps under a running endpoint daemon (real service, real CLI, real workers),
 * made without privileges with libfaketime (`LD_PRELOAD`, the daemon and its managers only;
 * the monotonic clock is left alone, as with a real NTP step or a suspended VM).
 * After a jump forward and a jump backward the endpoint keeps running tasks, and it still
 * notices a forwarder that went silent (heartbeat_threshold) — a backward jump must not
 * make the silence check wait for the clock to catch up.
 * Skipped when libfaketime is not installed (`apt-get install libfaketime`). The daemon runs
 * with LD_PRELOAD set; the bootstrap parks it (`FUNCX_ENV_LD_PRELOAD`) so children can be
 * spawned (see the LD_PRELOAD test below).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import { createWorld, fastEndpointConfig, PY } from "../e2e/_world.ts";
import { MAIN_TS } from "../helpers/cli.ts";

const LIBFAKETIME = [
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/faketime/libfaketime.so.1",
].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

/**
 * `start ep --foreground` in `home` under libfaketime, whose offset is read from `clockFile`
 * on every clock call (monotonic time stays real).
 */
function _startUnderFakeClock(home: string, clockFile: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMPILE_FLAGS, MAIN_TS, "start", "ep", "--foreground"],
    env: {
      FUNCX_HOME: home,
      NO_COLOR: "1",
      LD_PRELOAD: LIBFAKETIME!,
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_NO_CACHE: "1",
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let done = false;
  child.status.then(() => done = true);
  return { child, exited: () => done };
}

/**
 * Hang the service (SIGSTOP) until the daemon in `dir` no longer reports "connected" (within
 * 20 s), resume it, and wait for the daemon to reconnect.
 */
async function _silentForwarderNoticed(servicePid: number, dir: string): Promise<void> {
  Deno.kill(servicePid, "SIGSTOP");
  try {
    await _until("the daemon to notice the silent forwarder", 20_000, () => {
      const s = _status(dir);
      return !!s && s.state !== "connected";
    });
  } finally {
    Deno.kill(servicePid, "SIGCONT");
  }
  await _until("the endpoint to reconnect", 60_000, () => _status(dir)?.state === "connected");
}

function _status(dir: string): StatusFile | null {
  try {
    return JSON.parse(Deno.readTextFileSync(join(dir, "status.json")));
  } catch {
    return null;
  }
}

async function _until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name: "faults: wall-clock jumps forward and backward do not stop the endpoint",
  // Liveness and silence checks of the endpoint and the daemon use the monotonic clock
  // (performance.now()); the wall clock is only written into status.json. (This test used
  // to fail because its config had heartbeat_threshold 20 s against a 20 s bound.)
  ignore: !LIBFAKETIME,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await createWorld();
    const clockFile = join(w.home, "faketime");
    Deno.writeTextFileSync(clockFile, "+0\n");
    // heartbeat_threshold 8 s: the silence bound below (20 s) leaves room for a loaded machine
    w.configure(
      "ep",
      fastEndpointConfig().replace("heartbeat_threshold: 20", "heartbeat_threshold: 8"),
    );
    const dir = join(w.home, "ep");
    const { child, exited } = _startUnderFakeClock(w.home, clockFile);
    const jump = async (offset: string) => {
      // libfaketime offsets are relative to the real clock
      Deno.writeTextFileSync(clockFile, `${offset}\n`);
      await new Promise((r) => setTimeout(r, 1500));
    };
    try {
      await _until("the endpoint to connect with a manager", 90_000, () => {
        if (exited()) throw new Error("the endpoint exited (see the LD_PRELOAD test)");
        const s = _status(dir);
        return s?.pid === child.pid && s.state === "connected" && s.managers.length > 0;
      });
      const endpointId = _status(dir)!.endpoint_id!;
      const fn = await w.client.registerFunction(PY.square, "square");
      const run = async (x: number) => {
        const [id] = await w.client.submit([{ functionId: fn, endpointId, args: [x] }]);
        const o = (await w.client.waitForResults([id], { timeoutMs: 30_000 })).get(id)!;
        // a jump may cost a manager (ManagerLost) but never a silent loss
        return o.error ? o.error.type : o.value;
      };
      assertEquals(await run(3), 9);
      await jump("+2h");
      const fwd = await run(4);
      assert(fwd === 16 || fwd === "ManagerLost", `after +2h: ${fwd}`);
      assertEquals(await run(5), 25);
      await jump("-2h"); // four hours back
      const back = await run(6);
      assert(back === 36 || back === "ManagerLost", `after -4h: ${back}`);
      assertEquals(await run(7), 49);
      // the forwarder goes silent (service hung): with the clock behind, the daemon must still
      // give up on it after heartbeat_threshold (8 s) rather than hours later
      await _silentForwarderNoticed(w.svc.pid, dir);
      assertEquals(await run(8), 64);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 30_000);
      await child.status;
      clearTimeout(t);
      await w.close().catch(() => {});
    }
  },
});

Deno.test({
  name:
    "faults: LD_PRELOAD in the user's environment (XALT, darshan, libfaketime) does not stop start",
  ignore: !LIBFAKETIME,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Deno refuses to spawn a child while LD_PRELOAD is set unless run permission is
    // unrestricted; the sandboxed daemon must start its managers with it removed.
    const w = await createWorld();
    w.configure("ep", fastEndpointConfig());
    const dir = join(w.home, "ep");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...COMPILE_FLAGS, MAIN_TS, "start", "ep", "--foreground"],
      env: { FUNCX_HOME: w.home, NO_COLOR: "1", LD_PRELOAD: LIBFAKETIME! },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let stderr = "";
    const drained = (async () => {
      for await (const c of child.stderr) stderr += new TextDecoder().decode(c);
    })();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    try {
      await _until("the endpoint to connect with a manager", 60_000, () => {
        if (exited) throw new Error(`the endpoint exited: ${stderr.slice(-600)}`);
        const s = _status(dir);
        return s?.pid === child.pid && s.state === "connected" && s.managers.length > 0;
      });
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await status;
      await drained;
      await w.close().catch(() => {});
    }
  },
});

Deno.test({
  name: "faults: after a backward clock jump a silent forwarder is still noticed in time",
  ignore: !LIBFAKETIME,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // no blocks: the daemon starts no child, so LD_PRELOAD does not get in the way
    const w = await createWorld();
    const clockFile = join(w.home, "faketime");
    Deno.writeTextFileSync(clockFile, "+0\n");
    w.configure(
      "ep",
      "heartbeat_period: 1\nheartbeat_threshold: 5\nprovider:\n  init_blocks: 0\n  min_blocks: 0\n",
    );
    const dir = join(w.home, "ep");
    const { child, exited } = _startUnderFakeClock(w.home, clockFile);
    try {
      await _until("the endpoint to connect", 60_000, () => {
        if (exited()) throw new Error("the endpoint exited (see the LD_PRELOAD test)");
        const s = _status(dir);
        return s?.pid === child.pid && s.state === "connected";
      });
      Deno.writeTextFileSync(clockFile, "-2h\n"); // two hours back
      await new Promise((r) => setTimeout(r, 2000));
      assertEquals(_status(dir)?.state, "connected", "a backward jump alone changes nothing");
      // heartbeat_threshold is 5 s: noticed within ~5-7 s, not two hours later
      await _silentForwarderNoticed(w.svc.pid, dir);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await w.close().catch(() => {});
    }
  },
});
