/**
 * The chaos run: the real local service and a real endpoint (local provider, python3
 * workers), both started with the real CLI (`deno run <COMPILE_FLAGS> main.ts ...`) in a
 * temporary funcX home; a stream of tasks (fast, slow, raising, large result) submitted
 * through the SDK client; and in every round one component killed with SIGKILL at a random
 * moment (service, endpoint daemon, a manager or a worker) and brought back the way an
 * operator would (`service start`, `start`) or left to the endpoint's own recovery.
 *
 * At the end every submitted task must have exactly one final state: a success with the
 * right value, or a failure with a clear reason (the expected `ValueError`, `WorkerLost`,
 * `ManagerLost`, ...). Tasks with no final state are `lost`; tasks seen final more than once
 * or with a wrong value are `duplicated` / `wrong`.
 *
 * @example
 * ```ts
 * import { formatReport, runChaos } from "./run.ts";
 * const report = await runChaos({ rounds: 3, seed: 42 });
 * console.log(formatReport(report)); // rounds=3, tasks=57, succeeded=50, ...
 * ```
 * @module
 */
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import { NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import { outputWithin } from "../../src/daemon/proc.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import { FuncXClient, type TaskOutcome } from "../../src/sdk/client.ts";
import { addUser, loginViaForm, writeTokens } from "../../tests/helpers/service.ts";
import { rng } from "../../tests/fuzz/_rand.ts";
import { findProcesses, freePorts, isAlive, killAndWait, processesOfHome } from "./procs.ts";

/** Options of {@linkcode runChaos}. */
export interface ChaosOptions {
  /** Number of kill rounds (default 5). */
  rounds?: number;
  /** Seed of the random choices (default: time based). */
  seed?: number;
  /** Progress lines go here (default: nothing). */
  log?: (line: string) => void;
  /** Largest pause before the kill of a round, ms (default 3000). */
  maxKillDelayMs?: number;
  /** How long to wait for the last results, ms (default 180 s). */
  drainTimeoutMs?: number;
  /** Keep the funcX home (for debugging) instead of removing it. */
  keepHome?: boolean;
  /** Kill these components in this order instead of choosing at random. */
  victims?: Victim[];
}

/** Component killed in a round. */
export type Victim = "service" | "daemon" | "manager" | "worker";

/** The figures of a chaos run. */
export interface ChaosReport {
  rounds: number;
  seed: number;
  tasks: number;
  succeeded: number;
  failedWithReason: number;
  lost: number;
  duplicated: number;
  /** Successes with a wrong value, or failures without a clear reason. */
  wrong: number;
  /** What was killed in each round. */
  kills: Victim[];
  /** Failure reasons seen (exception type → count). */
  reasons: Record<string, number>;
  /** Problems of the run itself (a component that did not come back, ...). */
  problems: string[];
  /** Short descriptions of lost / duplicated / wrong tasks (at most 20). */
  examples: string[];
  /** The funcX home used (removed unless keepHome). */
  home: string;
}

type _Kind = "fast" | "slow" | "raise" | "large";

interface _Task {
  id: string;
  kind: _Kind;
  arg: number;
  final?: TaskOutcome;
  finals: number;
}

const _EP = "chaos";
const _MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;
const _VICTIMS: Victim[] = ["service", "daemon", "manager", "worker"];
const _LARGE = 1_500_000;
const _CLEAR_REASONS = new Set(["WorkerLost", "ManagerLost", "ValueError", "TaskLost"]);

const _FUNCTIONS: Record<_Kind, [string, string]> = {
  fast: ["square", "def square(x):\n    return x * x\n"],
  slow: [
    "slow",
    "def slow(x):\n    import time\n    time.sleep(0.2 + (x % 8) * 0.15)\n    return x + 1000000\n",
  ],
  raise: ["boom", "def boom(x):\n    raise ValueError('chaos boom %d' % x)\n"],
  large: ["large", `def large(x):\n    return ('%d:' % x) + 'x' * ${_LARGE}\n`],
};

function _sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function _cli(home: string, args: string[], timeoutMs = 120_000) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMPILE_FLAGS, _MAIN_TS, ...args],
    env: { FUNCX_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = await outputWithin(child, timeoutMs);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Reject after `ms` (the SDK client has no request timeout; see the report). */
function _within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function _readJson<T>(path: string): T | null {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch {
    return null;
  }
}

/**
 * Is the outcome the right final state for the task? Returns `"ok"`, `"reason"` (a failure
 * with a clear reason) or a description of what is wrong.
 */
function _judge(t: _Task, o: TaskOutcome): "ok" | "reason" | string {
  if (o.error) {
    const e = o.error;
    if (t.kind === "raise" && e.type === "ValueError") {
      return e.remoteMessage.includes(`chaos boom ${t.arg}`)
        ? "reason"
        : `raised ValueError with message ${JSON.stringify(e.remoteMessage.slice(0, 80))}`;
    }
    if (_CLEAR_REASONS.has(e.type) && e.remoteMessage.trim() !== "") return "reason";
    return `failed without a clear reason: ${e.type}: ${e.remoteMessage.slice(0, 120)}`;
  }
  const v = o.value;
  switch (t.kind) {
    case "fast":
      return v === t.arg * t.arg ? "ok" : `returned ${String(v).slice(0, 40)}`;
    case "slow":
      return v === t.arg + 1000000 ? "ok" : `returned ${String(v).slice(0, 40)}`;
    case "raise":
      return `returned ${String(v).slice(0, 40)} instead of raising`;
    case "large": {
      const ok = typeof v === "string" && v.length === `${t.arg}:`.length + _LARGE &&
        v.startsWith(`${t.arg}:x`) && v.endsWith("xxx");
      return ok ? "ok" : `returned a wrong large value (${typeof v}, ${String(v).length} chars)`;
    }
  }
}

/**
 * Run the chaos experiment and return its figures. Never throws for a problem of the
 * system under test: such problems end up in `problems`/`lost`/`duplicated`.
 *
 * @example
 * ```ts
 * const r = await runChaos({ rounds: 2, seed: 7, log: console.log });
 * if (r.lost + r.duplicated > 0) Deno.exit(1);
 * ```
 */
export async function runChaos(opts: ChaosOptions = {}): Promise<ChaosReport> {
  const rounds = opts.rounds ?? 5;
  const seed = opts.seed ?? (Date.now() % 2147483647);
  // separate streams: the kill schedule does not depend on how many tasks were submitted
  const rand = rng(seed);
  const taskRand = rng(seed ^ 0x5bd1e995);
  const log = opts.log ?? (() => {});
  const home = Deno.makeTempDirSync({ prefix: "fx-chaos-" });
  const report: ChaosReport = {
    rounds,
    seed,
    tasks: 0,
    succeeded: 0,
    failedWithReason: 0,
    lost: 0,
    duplicated: 0,
    wrong: 0,
    kills: [],
    reasons: {},
    problems: [],
    examples: [],
    home,
  };
  const ports = freePorts();
  const serviceArgs = [
    "service",
    "start",
    "--port",
    String(ports.http),
    "--forwarder-port",
    String(ports.forwarder),
    "--heartbeat-period",
    "1",
  ];
  const epDir = join(home, _EP);
  const tasks = new Map<string, _Task>();
  let submitting = true;
  let submitter: Promise<void> = Promise.resolve();
  let poller: Promise<void> = Promise.resolve();
  let polling = true;

  const servicePid = () =>
    _readJson<{ pid: number }>(join(home, "service", "service.json"))?.pid ?? 0;
  const daemonPid = () => {
    try {
      return Number(Deno.readTextFileSync(join(epDir, "daemon.pid")).split("\n")[0]) || 0;
    } catch {
      return 0;
    }
  };
  const status = () => _readJson<StatusFile>(join(epDir, "status.json"));

  const startService = async (): Promise<void> => {
    for (let attempt = 1;; attempt++) {
      const r = await _cli(home, serviceArgs);
      if (r.code === 0) return;
      if (attempt >= 5) {
        throw new Error(`service start failed (exit ${r.code}): ${r.stderr.trim().slice(-500)}`);
      }
      log(`service start failed (attempt ${attempt}), retrying: ${r.stderr.trim().slice(-200)}`);
      await _sleep(1000);
    }
  };
  const startEndpoint = async (): Promise<void> => {
    const r = await _cli(home, ["start", _EP, "--timeout", "90"]);
    if (r.code !== 0) {
      throw new Error(`endpoint start failed (exit ${r.code}): ${r.stderr.trim().slice(-800)}`);
    }
  };
  /** Wait until the daemon is connected with a manager and the service is up. */
  const waitHealthy = async (timeoutMs = 90_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const s = status();
      const pid = daemonPid();
      if (
        s && pid && s.pid === pid && isAlive(pid) && s.state === "connected" &&
        s.managers.length > 0 && isAlive(servicePid()) &&
        Date.now() - Date.parse(s.updated_at) < 5000
      ) return;
      await _sleep(200);
    }
    const s = status();
    throw new Error(
      `endpoint not healthy after ${
        timeoutMs / 1000
      } s (state ${s?.state}, managers ${s?.managers.length}, errors ${
        JSON.stringify(s?.errors.slice(-3))
      })`,
    );
  };

  try {
    // ---------------------------------------------------------------- set up
    await startService();
    await addUser(home, "chaos", "chaos-pw");
    const info = _readJson<{ port: number }>(join(home, "service", "service.json"))!;
    const base = `http://127.0.0.1:${info.port}`;
    const tokens = await loginViaForm(`${base}/auth`, "chaos", "chaos-pw");
    await writeTokens(home, tokens);
    Deno.writeTextFileSync(
      join(home, "config.yaml"),
      `service_address: ${base}/v2\nauth_address: ${base}/auth\nclient_id: ${NATIVE_CLIENT_ID}\n`,
      { mode: 0o600 },
    );
    Deno.mkdirSync(epDir, { recursive: true, mode: 0o700 });
    Deno.writeTextFileSync(
      join(epDir, "config.yaml"),
      [
        "heartbeat_period: 1",
        "heartbeat_threshold: 6",
        "log_level: debug",
        "provider:",
        "  type: local",
        "  init_blocks: 1",
        "  min_blocks: 1",
        "  max_blocks: 1",
        "executor:",
        "  max_workers_per_node: 2",
        "  heartbeat_period: 1",
        "  heartbeat_threshold: 4",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    await startEndpoint();
    await waitHealthy();
    const endpointId = status()!.endpoint_id!;
    const client = new FuncXClient({ serviceAddress: `${base}/v2`, token: tokens.access_token });
    const fnIds = {} as Record<_Kind, string>;
    for (const k of Object.keys(_FUNCTIONS) as _Kind[]) {
      fnIds[k] = await client.registerFunction(_FUNCTIONS[k][1], _FUNCTIONS[k][0]);
    }
    log(`chaos: home ${home}, seed ${seed}, endpoint ${endpointId}`);

    // ---------------------------------------------------------------- streams
    let counter = 0;
    submitter = (async () => {
      while (submitting) {
        const n = 1 + Math.floor(taskRand() * 3);
        const batch: { kind: _Kind; arg: number }[] = [];
        for (let i = 0; i < n; i++) {
          const r = taskRand();
          const kind: _Kind = r < 0.5 ? "fast" : r < 0.75 ? "slow" : r < 0.9 ? "raise" : "large";
          batch.push({ kind, arg: counter++ });
        }
        try {
          const ids = await _within(
            client.submit(
              batch.map((b) => ({ functionId: fnIds[b.kind], endpointId, args: [b.arg] })),
            ),
            20_000,
            "submit",
          );
          ids.forEach((id, i) => tasks.set(id, { id, ...batch[i], finals: 0 }));
        } catch (e) {
          // the service is down: these tasks were never accepted; try again later
          if (String(e).includes("no answer")) log(`submit: ${(e as Error).message}`);
          await _sleep(300);
        }
        await _sleep(100 + taskRand() * 300);
      }
    })();
    const pollOnce = async (ids: string[]) => {
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const got = await _within(client.getBatchResult(chunk), 20_000, "batch_status");
        for (const id of chunk) {
          const o = got.get(id);
          const t = tasks.get(id)!;
          if (!o || o.pending) continue;
          // a task handed out once is deleted: later polls answer "Unknown task id"
          if (o.error?.type === "UnknownTask") continue;
          t.finals++;
          t.final ??= o;
        }
      }
    };
    let lastPollError = "";
    poller = (async () => {
      while (polling) {
        try {
          // poll every task, finished ones too: a second final state is a duplicate
          await pollOnce([...tasks.keys()]);
        } catch (e) {
          // the service is down (or a request hung across its restart): try again
          const m = (e as Error).message.slice(0, 200);
          if (m !== lastPollError) log(`poll failed (retrying): ${m}`);
          lastPollError = m;
        }
        await _sleep(500);
      }
    })();

    // ---------------------------------------------------------------- rounds
    for (let round = 1; round <= rounds; round++) {
      await _sleep(500 + rand() * ((opts.maxKillDelayMs ?? 3000) - 500));
      let victim = opts.victims?.[(round - 1) % opts.victims.length] ??
        _VICTIMS[Math.floor(rand() * _VICTIMS.length)];
      let pid = 0;
      let before = new Set<number>();
      if (victim === "worker" || victim === "manager") {
        const found = findProcesses(home, victim);
        before = new Set(found.map((p) => p.pid));
        if (found.length === 0) {
          log(`round ${round}: no ${victim} running, killing the endpoint daemon instead`);
          victim = "daemon";
        } else pid = found[Math.floor(rand() * found.length)].pid;
      }
      if (victim === "service") pid = servicePid();
      if (victim === "daemon") pid = daemonPid();
      report.kills.push(victim);
      const t0 = Date.now();
      const killed = pid > 0 && await killAndWait(pid);
      log(
        `round ${round}: SIGKILL ${victim} (pid ${pid})${killed ? "" : " - it was already gone"}`,
      );
      try {
        if (victim === "service") {
          await _sleep(rand() * 1000);
          await startService();
        } else if (victim === "daemon") {
          await _sleep(rand() * 1000);
          await startEndpoint();
        } else {
          // the endpoint replaces a lost manager (new block) or worker (new process) itself
          const kind = victim;
          const until = Date.now() + 60_000;
          while (!findProcesses(home, kind).some((p) => !before.has(p.pid))) {
            if (Date.now() > until) throw new Error(`no new ${kind} within 60 s`);
            await _sleep(100);
          }
        }
        await waitHealthy();
        log(`round ${round}: recovered in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      } catch (e) {
        report.problems.push(`round ${round} (${victim}): ${(e as Error).message}`);
        log(`round ${round}: NOT recovered: ${(e as Error).message}`);
        break;
      }
    }

    // ---------------------------------------------------------------- drain
    submitting = false;
    await submitter;
    const deadline = Date.now() + (opts.drainTimeoutMs ?? 180_000);
    while (Date.now() < deadline && [...tasks.values()].some((t) => !t.final)) {
      await _sleep(500);
    }
    polling = false;
    await poller;
    // one more look at everything: a finished task must not come back
    try {
      await pollOnce([...tasks.keys()]);
    } catch (e) {
      report.problems.push(`final poll failed: ${(e as Error).message}`);
    }
  } catch (e) {
    report.problems.push((e as Error).message);
  } finally {
    submitting = false;
    polling = false;
    await submitter.catch(() => {});
    await poller.catch(() => {});
    await _teardown(home, log);
  }

  // ---------------------------------------------------------------- verdict
  report.tasks = tasks.size;
  for (const t of tasks.values()) {
    const what = `${t.kind}(${t.arg}) task ${t.id}`;
    if (!t.final) {
      report.lost++;
      if (report.examples.length < 20) report.examples.push(`lost: ${what}`);
      continue;
    }
    if (t.finals > 1) {
      report.duplicated++;
      if (report.examples.length < 20) {
        report.examples.push(`duplicated: ${what} seen final ${t.finals} times`);
      }
    }
    const verdict = _judge(t, t.final);
    if (verdict === "ok") report.succeeded++;
    else if (verdict === "reason") {
      report.failedWithReason++;
      const type = t.final.error!.type;
      report.reasons[type] = (report.reasons[type] ?? 0) + 1;
    } else {
      report.wrong++;
      if (report.examples.length < 20) report.examples.push(`wrong: ${what}: ${verdict}`);
    }
  }
  if (!opts.keepHome) {
    try {
      Deno.removeSync(home, { recursive: true });
    } catch { /* best effort */ }
  }
  return report;
}

async function _teardown(home: string, log: (l: string) => void): Promise<void> {
  const stop = await _cli(home, ["stop", _EP], 60_000).catch((e) => ({
    code: 1,
    stdout: "",
    stderr: String(e),
  }));
  if (stop.code !== 0) log(`stop: ${stop.stderr.trim().slice(-200)}`);
  await _cli(home, ["service", "stop"], 60_000).catch(() => {});
  // whatever is left (managers orphaned by a killed daemon, ...) was started by this run
  for (let i = 0; i < 3; i++) {
    const left = processesOfHome(home);
    if (left.length === 0) break;
    for (const pid of left) await killAndWait(pid, "SIGKILL", 5000);
  }
}

/**
 * The figures line printed last by `deno task chaos`.
 *
 * @example
 * ```ts
 * formatReport(r); // "rounds=20, tasks=412, succeeded=380, failed-with-reason=32, lost=0, duplicated=0"
 * ```
 */
export function formatReport(r: ChaosReport): string {
  return `rounds=${r.rounds}, tasks=${r.tasks}, succeeded=${r.succeeded}, failed-with-reason=${r.failedWithReason}, lost=${r.lost}, duplicated=${r.duplicated}`;
}
