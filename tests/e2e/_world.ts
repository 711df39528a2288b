/**
 * The e2e world: a real local service (child process), a logged-in user (real PKCE form
 * flow), an SDK client, and endpoints run as the real CLI
 * (`deno run <COMPILE_FLAGS> main.ts start NAME --foreground`) with real python3 workers.
 * @module
 */
import { join } from "node:path";
import { FuncXClient } from "../../src/sdk/client.ts";
import { spawnMain } from "../helpers/cli.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import {
  addUser,
  loginViaForm,
  type StartedService,
  startService,
  writeGlobalConfig,
  writeTokens,
} from "../helpers/service.ts";

/** Endpoint config for fast tests (2 local workers, short heartbeats). */
export function fastEndpointConfig(extra = ""): string {
  return [
    "heartbeat_period: 1",
    "heartbeat_threshold: 20",
    "log_level: info",
    "provider:",
    "  type: local",
    "  init_blocks: 1",
    "  min_blocks: 1",
    "  max_blocks: 1",
    "executor:",
    "  max_workers_per_node: 2",
    "  heartbeat_period: 1",
    "  heartbeat_threshold: 15",
    extra,
  ].join("\n") + "\n";
}

/** A running endpoint CLI process. */
export interface RunningEndpoint {
  name: string;
  dir: string;
  pid: number;
  endpointId: string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Everything the process wrote to stderr. */
  stderr(): string;
  status(): StatusFile | null;
}

/** The world of one e2e test. */
export interface World {
  home: string;
  svc: StartedService;
  client: FuncXClient;
  /** Restart the service on the same ports (after kill/stop). */
  restartService(): Promise<void>;
  configure(name: string, yaml?: string): void;
  startEndpoint(name: string, opts?: { timeoutMs?: number }): Promise<RunningEndpoint>;
  /** Stop everything and remove the home. */
  close(): Promise<void>;
}

function _readStatus(dir: string): StatusFile | null {
  try {
    return JSON.parse(Deno.readTextFileSync(join(dir, "status.json")));
  } catch {
    return null;
  }
}

/** Start the service, create and log in a user, and return the world. */
export async function createWorld(opts: { heartbeatPeriod?: number } = {}): Promise<World> {
  const home = Deno.makeTempDirSync({ prefix: "fx-e2e-" });
  const hb = opts.heartbeatPeriod ?? 1;
  // Fixed ports below the ephemeral range, so that a restart "on the same ports" cannot
  // collide with a port the kernel handed to another process in the meantime.
  let svc: StartedService = await (async () => {
    for (let attempt = 0;; attempt++) {
      const port = 20_000 + 4 * Math.floor(Math.random() * 2500);
      try {
        return await startService({ home, heartbeatPeriod: hb, port, forwarderPort: port + 1 });
      } catch (e) {
        if (attempt >= 5 || !/in use/i.test((e as Error).message)) throw e;
      }
    }
  })();
  await addUser(home, "alice", "alice-pw");
  const tokens = await loginViaForm(svc.authUrl, "alice", "alice-pw");
  await writeTokens(home, tokens);
  await writeGlobalConfig(home, svc);
  const client = new FuncXClient({ serviceAddress: svc.url, token: tokens.access_token });
  const endpoints: RunningEndpoint[] = [];
  const world: World = {
    home,
    get svc() {
      return svc;
    },
    client,
    async restartService() {
      svc = await startService({
        home,
        heartbeatPeriod: hb,
        port: svc.info.port,
        forwarderPort: svc.info.tasks_port,
      });
    },
    configure(name, yaml = fastEndpointConfig()) {
      const dir = join(home, name);
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      Deno.writeTextFileSync(join(dir, "config.yaml"), yaml, { mode: 0o600 });
    },
    async startEndpoint(name, o = {}) {
      const dir = join(home, name);
      try {
        Deno.removeSync(join(dir, "status.json"));
      } catch { /* first start */ }
      const { child, stderr, drained } = spawnMain(
        home,
        ["start", name, "--foreground"],
        4_000_000,
      );
      let exited = false;
      const status = child.status.then((s) => {
        exited = true;
        return s;
      });
      const deadline = Date.now() + (o.timeoutMs ?? 240_000);
      let st: StatusFile | null = null;
      while (true) {
        st = _readStatus(dir);
        if (st?.state === "connected" && st.pid === child.pid && st.managers.length > 0) break;
        if (exited) {
          await drained;
          throw new Error(`endpoint ${name} exited early: ${stderr().slice(-3000)}`);
        }
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          await status;
          await drained;
          throw new Error(
            `endpoint ${name} not connected with a manager in time (state ${st?.state}): ${
              stderr().slice(-3000)
            }`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      let stopped: Promise<number> | undefined;
      const ep: RunningEndpoint = {
        name,
        dir,
        pid: child.pid,
        endpointId: st.endpoint_id!,
        stop() {
          stopped ??= (async () => {
            if (!exited) child.kill("SIGTERM");
            const t = setTimeout(() => {
              if (!exited) child.kill("SIGKILL");
            }, 60_000);
            const s = await status;
            clearTimeout(t);
            await drained;
            return s.code;
          })();
          return stopped;
        },
        async kill() {
          if (!exited) child.kill("SIGKILL");
          await status;
          await drained;
        },
        stderr,
        status: () => _readStatus(dir),
      };
      endpoints.push(ep);
      return ep;
    },
    async close() {
      for (const ep of endpoints) await ep.stop().catch(() => {});
      await svc.stop().catch(() => {});
      // managers of a killed endpoint exit on their own once the interchange is gone
      Deno.removeSync(home, { recursive: true });
    },
  };
  return world;
}

/** Python source helpers for the tests. */
export const PY = {
  add: "def add(a, b, c=0):\n    return a + b + c\n",
  fail: "def fail(msg):\n    raise ValueError('bad input: ' + msg)\n",
  square: "def square(x):\n    return x * x\n",
  sleepy: "def sleepy(t, v):\n    import time\n    time.sleep(t)\n    return v\n",
  /** Appends "<task tag> <pid> <ppid>" to `path`, sleeps `t` s, returns `v`. */
  logged: "def logged(path, tag, t, v):\n    import os, time\n" +
    "    with open(path, 'a') as f:\n" +
    "        f.write('%s %d %d\\n' % (tag, os.getpid(), os.getppid()))\n" +
    "    time.sleep(t)\n    return v\n",
};

/**
 * The endpoint's task counters once its status.json shows nothing queued or running and no
 * unacked result (and at least `minCompleted` completed), waiting up to `timeoutMs`.
 */
export async function settledTasks(
  ep: RunningEndpoint,
  minCompleted = 0,
  timeoutMs = 60_000,
): Promise<StatusFile["tasks"]> {
  const end = Date.now() + timeoutMs;
  const since = new Date().toISOString();
  while (true) {
    const st = ep.status();
    if (
      st && st.updated_at > since && st.tasks.queued === 0 && st.tasks.running === 0 &&
      st.unacked_results === 0 && st.tasks.completed >= minCompleted
    ) return st.tasks;
    if (Date.now() > end) {
      throw new Error(
        `endpoint did not settle: ${JSON.stringify(st?.tasks)} unacked ${st?.unacked_results}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
