/**
 * Faults around a running endpoint (real service, real CLI daemon, real python3 workers):
 * - the endpoint directory's disk fills up: tasks keep completing, the problem is reported
 *   in clear words, the daemon does not stop, and it recovers once space is freed;
 * - the refresh token stops working while the daemon runs (expired access token, revoked
 *   refresh token) and the service restarts: a clear error in the log and in status.json
 *   telling the user to log in again, and the daemon keeps running.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { createWorld, fastEndpointConfig, PY } from "../e2e/_world.ts";
import { waitFor } from "../helpers/wait.ts";

function _mountTmpfs(dir: string, size: string): boolean {
  try {
    const r = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return r.success;
  } catch {
    return false;
  }
}

function _umount(dir: string) {
  try {
    new Deno.Command("umount", { args: ["-l", dir], stdout: "null", stderr: "null" }).outputSync();
  } catch { /* not mounted */ }
}

/** Can this machine mount a tmpfs (root, no seccomp block)? */
function _canMount(): boolean {
  const d = Deno.makeTempDirSync({ prefix: "fx-mount-probe-" });
  const ok = _mountTmpfs(d, "64k");
  if (ok) _umount(d);
  Deno.removeSync(d, { recursive: true });
  return ok;
}

const CAN_MOUNT = _canMount();

Deno.test({
  name: "faults: a full disk under the endpoint dir is reported, tasks still finish, it recovers",
  // needs root to mount a small tmpfs; elsewhere there is no unprivileged way to fill a disk
  ignore: !CAN_MOUNT,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await createWorld();
    const dir = join(w.home, "full");
    Deno.mkdirSync(dir, { mode: 0o700 });
    assert(_mountTmpfs(dir, "4m"), "mount tmpfs");
    try {
      w.configure("full", fastEndpointConfig());
      const ep = await w.startEndpoint("full");
      const fn = await w.client.registerFunction(PY.square, "square");
      // fill the endpoint's disk completely
      const filler = join(dir, "filler");
      const f = Deno.openSync(filler, { write: true, create: true });
      const chunk = new Uint8Array(64 * 1024);
      try {
        while (true) f.writeSync(chunk);
      } catch (e) {
        assert(String(e).includes("No space left"), String(e));
      } finally {
        f.close();
      }
      const ids = await w.client.submit(
        Array.from(
          { length: 8 },
          (_, i) => ({ functionId: fn, endpointId: ep.endpointId, args: [i] }),
        ),
      );
      const res = await w.client.waitForResults(ids, { timeoutMs: 30_000 });
      const values = ids.map((id) => res.get(id)?.value);
      assertEquals(values, [0, 1, 4, 9, 16, 25, 36, 49], "tasks finish while the disk is full");
      await waitFor(() => ep.stderr(), {
        what: "the daemon reporting the full disk",
        until: (err) => /No space left|ENOSPC|cannot write/i.test(err),
        describe: (err) => err?.slice(-2000) ?? "",
      });
      // the daemon is still there, and recovers when space is freed
      Deno.kill(ep.pid, "SIGCONT"); // throws if the process is gone
      Deno.removeSync(filler);
      const freed = Date.now();
      await waitFor(() => ep.status(), {
        what: "status.json written again once there is space",
        until: (st) => !!st && Date.parse(st.updated_at) > freed && st.state === "connected",
        timeoutMs: 10_000,
      });
      const [after] = await w.client.submit([{
        functionId: fn,
        endpointId: ep.endpointId,
        args: [9],
      }]);
      assertEquals(
        (await w.client.waitForResults([after], { timeoutMs: 20_000 })).get(after)?.value,
        81,
      );
      assertEquals(await ep.stop(), 0);
    } finally {
      await w.close().catch(() => {});
      _umount(dir);
    }
  },
});

Deno.test({
  name: "faults: an expired refresh token while running is a clear error, the daemon keeps going",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await createWorld();
    try {
      // a short heartbeat_threshold: the test hangs the service to force a re-registration
      w.configure(
        "ep",
        fastEndpointConfig().replace("heartbeat_threshold: 20", "heartbeat_threshold: 6"),
      );
      const ep = await w.startEndpoint("ep");
      // the stored login goes stale: access token expired, refresh token no longer valid
      const tokFile = join(w.home, "credentials", "funcx_sdk_tokens.json");
      const tokens = JSON.parse(Deno.readTextFileSync(tokFile));
      tokens.funcx_service.expires_at_seconds = Math.floor(Date.now() / 1000) - 3600;
      tokens.funcx_service.refresh_token = "revoked-or-expired-refresh-token";
      Deno.writeTextFileSync(`${tokFile}.tmp`, JSON.stringify(tokens), { mode: 0o600 });
      Deno.renameSync(`${tokFile}.tmp`, tokFile);
      // the service hangs for longer than heartbeat_threshold: the endpoint reconnects and
      // must re-register, which needs a fresh token
      Deno.kill(w.svc.pid, "SIGSTOP");
      try {
        await waitFor(() => ep.status()?.state, {
          what: "the endpoint noticing the hung service",
          until: (state) => state !== "connected",
          timeoutMs: 40_000,
        });
      } finally {
        Deno.kill(w.svc.pid, "SIGCONT");
      }
      const err = await waitFor(
        () => ep.status()?.errors.map((e) => e.message).find((m) => /login/i.test(m)) ?? "",
        {
          what: "a login error in status.json",
          timeoutMs: 30_000,
          describe: () => JSON.stringify(ep.status()?.errors),
        },
      );
      assert(/funcx-endpoint login/.test(err), err);
      assertEquals(err.split("\n").length, 1);
      const log = Deno.readTextFileSync(join(ep.dir, "endpoint.log"));
      assert(log.includes("funcx-endpoint login"), log.slice(-1500));
      assert(!log.includes("revoked-or-expired-refresh-token"), "the token value is not logged");
      // not a silent stop: the daemon is alive and says it is disconnected
      Deno.kill(ep.pid, "SIGCONT");
      const st = ep.status()!;
      assertEquals(st.pid, ep.pid);
      assert(Date.now() - Date.parse(st.updated_at) < 3000, "status.json is still being written");
      assert(st.state !== "connected", `state ${st.state}`);
      assertEquals(await ep.stop(), 0);
    } finally {
      await w.close().catch(() => {});
    }
  },
});
