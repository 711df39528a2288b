/**
 * A forwarder that speaks for another endpoint (the endpoint room's test-side forwarder,
 * driven by hand) against the real daemon started with the real CLI: heartbeats naming
 * another endpoint id and garbage on the tasks channel are refused with a clear error in
 * status.json and the log, and the daemon keeps going — it still runs a real task and
 * returns its result. (Upstream Task messages carry no endpoint id, only the routing
 * identity, so "for another endpoint" shows up in the heartbeat's id.)
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import { decodePickle, isPlainDict } from "../../src/protocol/pickle/mod.ts";
import { packHeartbeat } from "../../src/protocol/messages.ts";
import {
  buildTaskPayload,
  deserialize,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";
import { TestForwarder } from "../endpoint/_forwarder.ts";
import { MAIN_TS } from "../helpers/cli.ts";
import { writeTokens } from "../helpers/service.ts";

function _status(dir: string): StatusFile | null {
  try {
    return JSON.parse(Deno.readTextFileSync(join(dir, "status.json")));
  } catch {
    return null;
  }
}

Deno.test({
  name:
    "faults: a forwarder speaking for another endpoint id is refused and logged, no silent stop",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-sec-hostile-" });
    const fwd = await TestForwarder.start();
    let child: Deno.ChildProcess | undefined;
    try {
      Deno.writeTextFileSync(
        join(home, "config.yaml"),
        `service_address: ${fwd.url}\nauth_address: http://127.0.0.1:1/auth\n`,
      );
      await writeTokens(home, {
        access_token: "at-test",
        refresh_token: "rt-test",
        token_type: "Bearer",
        expires_in: 3600,
        expires_at_seconds: Math.floor(Date.now() / 1000) + 86400,
        scope: "x",
        resource_server: "funcx_service",
      });
      const dir = join(home, "ep");
      Deno.mkdirSync(dir, { mode: 0o700 });
      Deno.writeTextFileSync(
        join(dir, "config.yaml"),
        "heartbeat_period: 1\nprovider:\n  init_blocks: 1\n  min_blocks: 1\n  max_blocks: 1\nexecutor:\n  max_workers_per_node: 1\n",
      );
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...COMPILE_FLAGS, MAIN_TS, "start", "ep", "--foreground"],
        env: { FUNCX_HOME: home, NO_COLOR: "1" },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const st = await fwd.waitFor("the endpoint to connect with a manager", () => {
        const s = _status(dir);
        return s?.state === "connected" && s.managers.length > 0 && s;
      }, 60_000);
      const id = st.endpoint_id!;
      const other = crypto.randomUUID();
      fwd.send("tasks", id, packHeartbeat(other));
      fwd.send("tasks", id, new Uint8Array([5, 0xff, 0xfe]));
      await fwd.waitFor(
        "the refusal in status.json",
        () =>
          _status(dir)?.errors.some((e) => e.message.includes(`heartbeat for endpoint ${other}`)),
      );
      const log = Deno.readTextFileSync(join(dir, "endpoint.log"));
      assert(log.includes(other), "the other endpoint id is in the log");
      // not a silent stop: a real task still runs and its result goes back
      const taskId = crypto.randomUUID();
      fwd.sendTask(
        id,
        taskId,
        buildTaskPayload(
          serializeSource("sq", "def sq(x):\n    return x * x\n"),
          serializeData(tuple(11)),
          serializeData({}),
        ),
      );
      const result = await fwd.waitFor("the task's result", () => {
        for (const r of fwd.received.results) {
          if (r.payload.length < 20) continue;
          try {
            const d = decodePickle(r.payload);
            if (isPlainDict(d) && d.task_id === taskId) return d;
          } catch { /* a status report or heartbeat */ }
        }
        return undefined;
      }, 30_000);
      assertEquals(deserialize(result.result as string), 121);
      assertEquals(_status(dir)?.state, "connected");
    } finally {
      if (child) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const t = setTimeout(() => {
          try {
            child?.kill("SIGKILL");
          } catch { /* gone */ }
        }, 20_000);
        await child.status;
        clearTimeout(t);
      }
      await fwd.close();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
