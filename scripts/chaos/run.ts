/**
 * The chaos run: the real local service and a real endpoint (local provider, python3
 * workers), both started with the real CLI (`deno run <COMPILE_FLAGS> main.ts ...`) in a
 * temporary funcX home; a stream of tasks (fast, slow, raising, large result) submitted
 * through the SDK client; and in every round one fault (see `faults.ts`): a component
 * SIGKILLed at a random or a chosen moment, the service's disk full, the daemon SIGSTOPped,
 * or a TCP fault on the endpoint ↔ forwarder or manager ↔ interchange link (`fault_proxy.ts`
 * sits on both). Components are brought back the way an operator would (`service start`,
 * `start`) or left to the endpoint's own recovery.
 *
 * At the end every task the service acknowledged (its submit answer reached the client) must
 * have exactly one final state: a success with the right value, or a failure with a clear
 * reason (the expected `ValueError`, `WorkerLost`, `ManagerLost`, ...). Tasks with no final
 * state are `lost`; a task whose final state changed between two reads (a second result) is
 * `duplicated`; a wrong value is `wrong`. No task of the service may be left unfinished
 * (`stuck`, acknowledged or not). The figures are also counted per fault kind (a task counts
 * for the fault of the round it was submitted in).
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
import { servicePaths } from "../../src/config/paths.ts";
import { NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import { outputWithin } from "../../src/daemon/proc.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import { FuncXApiError, FuncXClient, type TaskOutcome } from "../../src/sdk/client.ts";
import { ServiceStore } from "../../src/service/store.ts";
import { addUser, loginViaForm, writeTokens } from "../../tests/helpers/service.ts";
import { rng } from "../../tests/fuzz/_rand.ts";
import { FaultProxy } from "./fault_proxy.ts";
import { FAULT_KINDS, type FaultKind, linkFault } from "./faults.ts";
import { findProcesses, freePorts, isAlive, killAndWait, processesOfHome } from "./procs.ts";

export type { FaultKind } from "./faults.ts";

/** Options of {@linkcode runChaos}. */
export interface ChaosOptions {
  /** Number of fault rounds (default 5). */
  rounds?: number;
  /** Seed of the random choices (default: time based). */
  seed?: number;
  /** Progress lines go here (default: nothing). */
  log?: (line: string) => void;
  /** Largest pause before the fault of a round, ms (default 3000). */
  maxKillDelayMs?: number;
  /** How long to wait for the last results, ms (default 180 s). */
  drainTimeoutMs?: number;
  /** Keep the funcX home (it is kept anyway when anything went wrong). */
  keepHome?: boolean;
  /** Inject these faults in this order (cycling) instead of choosing at random. */
  victims?: FaultKind[];
  /** Choose at random among these (default: every kind). */
  faults?: FaultKind[];
  /** The service's `--result-retention` (default 120 s; 0 shows the old, lossy behaviour). */
  resultRetentionS?: number;
}

/** @deprecated the old name of {@linkcode FaultKind}. */
export type Victim = FaultKind;

/** Figures of one fault kind. */
export interface KindFigures {
  rounds: number;
  /** Tasks submitted (and acknowledged) in its rounds. */
  tasks: number;
  succeeded: number;
  failedWithReason: number;
  lost: number;
  duplicated: number;
  wrong: number;
}

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
  /** Tasks of the service still unfinished at the end (acknowledged or not). */
  stuck: number;
  /** Submits whose answer never reached the client (their tasks are not counted). */
  unacknowledgedSubmits: number;
  /** What was injected in each round. */
  kills: FaultKind[];
  /** Figures per fault kind. */
  perKind: Partial<Record<FaultKind, KindFigures>>;
  /** Failure reasons seen (exception type → count). */
  reasons: Record<string, number>;
  /** Problems of the run itself (a component that did not come back, ...). */
  problems: string[];
  /** Short descriptions of lost / duplicated / wrong tasks (at most 20). */
  examples: string[];
  /** The funcX home used (removed unless kept). */
  home: string;
  /** True when the home was kept (asked for, or something went wrong). */
  homeKept: boolean;
}

type _Kind = "fast" | "slow" | "raise" | "large";

interface _Task {
  id: string;
  kind: _Kind;
  arg: number;
  /** Round it was submitted in (0: before the first fault). */
  round: number;
  final?: TaskOutcome;
  /** A later read whose final state differs from the first. */
  changed?: string;
  /** The round in which the service first called it unknown before we had its result. */
  vanished?: number;
}

const _EP = "chaos";
const _MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;
const _LARGE = 1_500_000;
const _CLEAR_REASONS = new Set(["WorkerLost", "ManagerLost", "ValueError", "TaskLost"]);
/** Endpoint ↔ forwarder and manager ↔ interchange heartbeat thresholds of the run (s). */
const _EP_THRESHOLD = 6;
const _MGR_THRESHOLD = 4;
/** The forwarder as the endpoint sees it (proxied), the managers' view of the interchange. */
const _FWD_PROXY_HOST = "127.0.0.2";
const _MGR_PROXY_HOST = "127.0.0.3";

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

async function _run(cmd: string, args: string[]): Promise<{ ok: boolean; err: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "null" }).output();
    return { ok: out.success, err: new TextDecoder().decode(out.stderr).trim() };
  } catch (e) {
    return { ok: false, err: (e as Error).message };
  }
}

/** Reject after `ms`. */
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

/** Two reads of one final task tell the same story (a re-read after a lost answer)? */
function _sameFinal(a: TaskOutcome, b: TaskOutcome): boolean {
  return a.status === b.status && a.completionTime === b.completionTime &&
    (a.error?.type ?? "") === (b.error?.type ?? "");
}

/** The chaos's own view of the run while it goes on. */
interface _Live {
  /** Called right after the next submit / batch_status request was started. */
  onStart: { what: "submit" | "poll"; fire: () => void } | null;
  /** Ask the submitter for one burst of this many tasks of `burstKind`. */
  burst: number;
  burstKind: _Kind;
  burstIds: string[];
}

/**
 * Run the chaos experiment and return its figures. Never throws for a problem of the
 * system under test: such problems end up in `problems`/`lost`/`duplicated`/`stuck`.
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
  // separate streams: the fault schedule does not depend on how many tasks were submitted
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
    stuck: 0,
    unacknowledgedSubmits: 0,
    kills: [],
    perKind: {},
    reasons: {},
    problems: [],
    examples: [],
    home,
    homeKept: false,
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
    "--public-host",
    _FWD_PROXY_HOST,
    // longer than any client retry here, short enough for the tmpfs to hold the large results
    "--result-retention",
    String(opts.resultRetentionS ?? 120),
  ];
  const epDir = join(home, _EP);
  const svcDir = servicePaths(home).dir;
  const tasks = new Map<string, _Task>();
  const live: _Live = { onStart: null, burst: 0, burstKind: "fast", burstIds: [] };
  let round = 0;
  let submitting = true;
  let submitter: Promise<void> = Promise.resolve();
  let poller: Promise<void> = Promise.resolve();
  let polling = true;
  // the forwarder's three ports as the endpoint reaches them, and the interchange's
  const fwdProxies = [0, 1, 2].map((i) =>
    FaultProxy.start({
      target: { hostname: "127.0.0.1", port: ports.forwarder + i },
      listen: { hostname: _FWD_PROXY_HOST, port: ports.forwarder + i },
    })
  );
  let mgrProxy: FaultProxy | null = null;
  let mgrProxyPort = 0;
  let keeper = true;
  let diskFull: "tmpfs" | "unavailable" = "unavailable";

  const servicePid = () => _readJson<{ pid: number }>(servicePaths(home).infoFile)?.pid ?? 0;
  const daemonPid = () => {
    try {
      return Number(Deno.readTextFileSync(join(epDir, "daemon.pid")).split("\n")[0]) || 0;
    } catch {
      return 0;
    }
  };
  const status = () => _readJson<StatusFile>(join(epDir, "status.json"));

  /** Keep a proxy in front of the interchange port the managers are told about. */
  const keepMgrProxy = async () => {
    while (keeper) {
      for (const m of findProcesses(home, "manager")) {
        const url = m.argv[m.argv.indexOf("--task-url") + 1] ?? "";
        const port = Number(/^tcp:\/\/127\.0\.0\.3:(\d+)$/.exec(url)?.[1] ?? 0);
        if (port && port !== mgrProxyPort) {
          const old = mgrProxy;
          mgrProxyPort = port;
          try {
            mgrProxy = FaultProxy.start({
              target: { hostname: "127.0.0.1", port },
              listen: { hostname: _MGR_PROXY_HOST, port },
            });
          } catch (e) {
            mgrProxyPort = 0;
            log(`manager proxy on ${_MGR_PROXY_HOST}:${port}: ${(e as Error).message}`);
          }
          await old?.close();
        }
      }
      await _sleep(50);
    }
  };
  const mgrKeeper = keepMgrProxy();

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
  const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) return false;
      await _sleep(5);
    }
    return true;
  };
  const killService = async (): Promise<number> => {
    const pid = servicePid();
    await killAndWait(pid);
    return pid;
  };

  /** Inject one fault; returns what was done (for the log). Recovery is checked after. */
  const inject = async (kind: FaultKind): Promise<string> => {
    const link = linkFault(kind);
    if (link) {
      const proxies = link.link === "fwd" ? fwdProxies : (mgrProxy ? [mgrProxy] : []);
      if (proxies.length === 0) return "no manager proxy yet: nothing injected";
      const threshold = (link.link === "fwd" ? _EP_THRESHOLD : _MGR_THRESHOLD) * 1000;
      switch (link.fault) {
        case "stall":
          for (const p of proxies) p.fault({ kind: "stall" });
          await _sleep(threshold + 2000);
          break;
        case "half-open": {
          const open = proxies.reduce((n, p) => n + p.open, 0);
          for (const p of proxies) p.fault({ kind: "half-open" });
          await _sleep(threshold + 2000);
          for (const p of proxies) p.clear();
          return `${open} connection(s) left half-open`;
        }
        case "reset": {
          const cut0 = proxies.reduce((n, p) => n + p.stats.cut, 0);
          for (const p of proxies) {
            p.fault({ kind: "reset", afterBytes: 1 + Math.floor(rand() * 20) });
          }
          const cutNow = () => proxies.reduce((n, p) => n + p.stats.cut, 0) - cut0;
          await until(() => cutNow() > 0, 5000);
          for (const p of proxies) p.clear();
          return `${cutNow()} connection(s) reset mid-message`;
        }
        case "drip":
          for (const p of proxies) p.fault({ kind: "drip", bytesPerTick: 64, tickMs: 10 });
          await _sleep(3000);
          break;
        case "partition": {
          const heal = 2000 + Math.floor(rand() * (threshold + 3000));
          for (const p of proxies) p.fault({ kind: "partition", healAfterMs: heal });
          await _sleep(heal + 100);
          return `partition healed after ${(heal / 1000).toFixed(1)} s`;
        }
      }
      for (const p of proxies) p.clear();
      return "";
    }
    switch (kind) {
      case "service": {
        const pid = await killService();
        await _sleep(rand() * 1000);
        await startService();
        return `SIGKILL pid ${pid}`;
      }
      case "service-in-submit":
      case "service-in-poll": {
        // a request has just been sent: the kill lands while the service reads it, runs its
        // transaction or writes the answer (a burst makes the submit transaction longer)
        const what = kind === "service-in-submit" ? "submit" : "poll";
        const started = Promise.withResolvers<void>();
        live.onStart = { what, fire: () => started.resolve() };
        if (what === "submit") {
          live.burstKind = "fast";
          live.burst = 30;
        }
        const seen = await Promise.race([started.promise.then(() => true), _sleep(10_000)]);
        live.onStart = null;
        // 0-30 ms: from "still reading the request" to "writing a large answer"
        const delay = Math.floor(rand() * 30);
        await _sleep(delay);
        const pid = await killService();
        await startService();
        return `SIGKILL pid ${pid} ${
          seen ? `${delay} ms after a ${what} request was sent` : `(no ${what} seen)`
        }`;
      }
      case "service-storing": {
        // slow tasks: their results arrive one by one over several seconds
        live.burstIds = [];
        live.burstKind = "slow";
        live.burst = 20;
        await until(() => live.burstIds.length > 0, 10_000);
        const peek = ServiceStore.open(servicePaths(home).db);
        let stored = 0;
        try {
          await until(() => {
            stored = live.burstIds.filter((id) => peek.getTask(id)?.status === "success").length;
            return stored > 0;
          }, 20_000);
        } finally {
          peek.close();
        }
        const pid = await killService();
        await startService();
        return `SIGKILL pid ${pid} after ${stored} of ${live.burstIds.length} burst results stored`;
      }
      case "daemon": {
        const pid = daemonPid();
        await killAndWait(pid);
        await _sleep(rand() * 1000);
        await startEndpoint();
        return `SIGKILL pid ${pid}`;
      }
      case "manager":
      case "worker": {
        const found = findProcesses(home, kind);
        if (found.length === 0) return `no ${kind} running: nothing injected`;
        const before = new Set(found.map((p) => p.pid));
        const pid = found[Math.floor(rand() * found.length)].pid;
        await killAndWait(pid);
        // the endpoint replaces a lost manager (new block) or worker (new process) itself
        if (!await until(() => findProcesses(home, kind).some((p) => !before.has(p.pid)), 60_000)) {
          throw new Error(`no new ${kind} within 60 s`);
        }
        return `SIGKILL pid ${pid}`;
      }
      case "daemon-sigstop": {
        const pid = daemonPid();
        const ms = (_EP_THRESHOLD + 3) * 1000;
        Deno.kill(pid, "SIGSTOP");
        try {
          await _sleep(ms);
        } finally {
          Deno.kill(pid, "SIGCONT");
        }
        return `SIGSTOP pid ${pid} for ${ms / 1000} s, then SIGCONT`;
      }
      case "disk-full": {
        if (diskFull === "unavailable") return "no tmpfs of its own (not root?): nothing injected";
        const filler = join(svcDir, "filler");
        // fill every free byte: SQLite's next write (WAL append) fails with SQLITE_FULL
        const fill = await _run("fallocate", ["-l", String(_freeBytes(svcDir)), filler]);
        if (!fill.ok) await _fillWithWrites(filler);
        const free = _freeBytes(svcDir);
        await _sleep(3000 + rand() * 2000);
        Deno.removeSync(filler);
        return `filesystem full (${free} bytes free) for a few seconds`;
      }
    }
    return "";
  };

  try {
    // ---------------------------------------------------------------- set up
    // the service's state on a filesystem of its own, which the disk-full fault fills
    Deno.mkdirSync(svcDir, { recursive: true, mode: 0o700 });
    if ((await _run("mount", ["-t", "tmpfs", "-o", "size=512m,mode=0700", "tmpfs", svcDir])).ok) {
      diskFull = "tmpfs";
    }
    await startService();
    await addUser(home, "chaos", "chaos-pw");
    const info = _readJson<{ port: number }>(servicePaths(home).infoFile)!;
    const base = `http://127.0.0.1:${info.port}`;
    const tokens = await loginViaForm(`${base}/auth`, "chaos", "chaos-pw");
    await writeTokens(home, tokens);
    Deno.writeTextFileSync(
      join(home, "config.yaml"),
      `service_address: ${base}/v2\nauth_address: ${base}/auth\nclient_id: ${NATIVE_CLIENT_ID}\n`,
      { mode: 0o600 },
    );
    Deno.mkdirSync(epDir, { recursive: true, mode: 0o700 });
    // managers reach the interchange through the proxy: worker_init (run by bash before the
    // manager, like a batch script's) rewrites the --task-url of the exec that starts it
    const rewrite =
      `exec() { builtin exec "\${@//tcp:\\/\\/127.0.0.1:/tcp://${_MGR_PROXY_HOST}:}"; }`;
    Deno.writeTextFileSync(
      join(epDir, "config.yaml"),
      [
        "heartbeat_period: 1",
        `heartbeat_threshold: ${_EP_THRESHOLD}`,
        "log_level: debug",
        "provider:",
        "  type: local",
        "  init_blocks: 1",
        "  min_blocks: 1",
        "  max_blocks: 1",
        `  worker_init: ${JSON.stringify(rewrite)}`,
        "executor:",
        "  max_workers_per_node: 2",
        "  heartbeat_period: 1",
        `  heartbeat_threshold: ${_MGR_THRESHOLD}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    await startEndpoint();
    await waitHealthy();
    const endpointId = status()!.endpoint_id!;
    const client = new FuncXClient({
      serviceAddress: `${base}/v2`,
      token: tokens.access_token,
      requestTimeoutMs: 20_000,
    });
    const fnIds = {} as Record<_Kind, string>;
    for (const k of Object.keys(_FUNCTIONS) as _Kind[]) {
      fnIds[k] = await client.registerFunction(_FUNCTIONS[k][1], _FUNCTIONS[k][0]);
    }
    log(`chaos: home ${home}, seed ${seed}, endpoint ${endpointId}, disk-full: ${diskFull}`);

    // ---------------------------------------------------------------- streams
    let counter = 0;
    submitter = (async () => {
      while (submitting) {
        const burst = live.burst;
        live.burst = 0;
        const n = burst || 1 + Math.floor(taskRand() * 3);
        const batch: { kind: _Kind; arg: number }[] = [];
        for (let i = 0; i < n; i++) {
          const r = taskRand();
          const kind: _Kind = burst
            ? live.burstKind
            : r < 0.5
            ? "fast"
            : r < 0.75
            ? "slow"
            : r < 0.9
            ? "raise"
            : "large";
          batch.push({ kind, arg: counter++ });
        }
        const submittedIn = round;
        try {
          const sent = client.submit(
            batch.map((b) => ({ functionId: fnIds[b.kind], endpointId, args: [b.arg] })),
          );
          if (live.onStart?.what === "submit") live.onStart.fire();
          const ids = await sent;
          ids.forEach((id, i) => tasks.set(id, { id, ...batch[i], round: submittedIn }));
          if (burst) live.burstIds = ids;
        } catch (e) {
          // refused (the service answered: nothing was queued) or no answer (the tasks may
          // have been queued, but were never acknowledged to us)
          const refused = /connection refused|tcp connect error/i.test(
            `${(e as Error).message} ${String((e as Error).cause ?? "")}`,
          );
          if (!(e instanceof FuncXApiError) && !refused) report.unacknowledgedSubmits++;
          if (burst) live.burst = burst;
          await _sleep(300);
        }
        await _sleep(100 + taskRand() * 300);
      }
    })();
    const pollOnce = async (ids: string[]) => {
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const sent = client.getBatchResult(chunk);
        if (live.onStart?.what === "poll") live.onStart.fire();
        const got = await sent;
        for (const id of chunk) {
          const o = got.get(id);
          const t = tasks.get(id)!;
          if (!o || o.pending) continue;
          // a handed-out task is deleted after the retention: later polls say "unknown"; unknown
          // before we ever had its result is how a lost answer shows (the lost=10 signature)
          if (o.error?.type === "UnknownTask") {
            if (!t.final) t.vanished ??= round;
            continue;
          }
          if (!t.final) t.final = o;
          else if (!t.changed && !_sameFinal(t.final, o)) {
            t.changed =
              `${t.final.status}@${t.final.completionTime} then ${o.status}@${o.completionTime}`;
          }
        }
      }
    };
    let lastPollError = "";
    poller = (async () => {
      while (polling) {
        try {
          // poll every task, finished ones too: a second, different final state is a duplicate
          await pollOnce([...tasks.keys()]);
        } catch (e) {
          // the service is down (or a request hung across its restart): try again
          const m = (e as Error).message.slice(0, 200);
          if (m !== lastPollError) log(`poll failed (retrying): ${m}`);
          lastPollError = m;
        }
        await _sleep(200 + taskRand() * 300);
      }
    })();

    // ---------------------------------------------------------------- rounds
    const choices = opts.faults?.length ? opts.faults : [...FAULT_KINDS];
    for (round = 1; round <= rounds; round++) {
      await _sleep(500 + rand() * ((opts.maxKillDelayMs ?? 3000) - 500));
      const kind = opts.victims?.[(round - 1) % opts.victims.length] ??
        choices[Math.floor(rand() * choices.length)];
      report.kills.push(kind);
      const fig = report.perKind[kind] ??= _emptyFigures();
      fig.rounds++;
      const t0 = Date.now();
      log(`round ${round}: ${kind}`);
      try {
        const what = await inject(kind);
        if (what) log(`round ${round}: ${kind}: ${what}`);
        await waitHealthy();
        log(`round ${round}: recovered in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      } catch (e) {
        report.problems.push(`round ${round} (${kind}): ${(e as Error).message}`);
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
    // one more look at everything: a finished task must not change
    try {
      await pollOnce([...tasks.keys()]);
    } catch (e) {
      report.problems.push(`final poll failed: ${(e as Error).message}`);
    }
    // nothing of the service left unfinished, acknowledged or not (queued forever)
    const peek = ServiceStore.open(servicePaths(home).db);
    try {
      const left = () => {
        const c = peek.taskCounts();
        return c.queued + c.running;
      };
      while (Date.now() < deadline && left() > 0) await _sleep(500);
      report.stuck = left();
    } finally {
      peek.close();
    }
  } catch (e) {
    report.problems.push((e as Error).message);
  } finally {
    submitting = false;
    polling = false;
    await submitter.catch(() => {});
    await poller.catch(() => {});
    await _teardown(home, log);
    keeper = false;
    await mgrKeeper;
    await Promise.all([...fwdProxies, mgrProxy].map((p) => p?.close()));
  }

  // ---------------------------------------------------------------- verdict
  report.tasks = tasks.size;
  for (const t of tasks.values()) {
    const what = `${t.kind}(${t.arg}) task ${t.id}`;
    const kind = t.round > 0 ? report.kills[t.round - 1] : undefined;
    const fig = kind ? report.perKind[kind]! : _emptyFigures();
    fig.tasks++;
    if (!t.final) {
      report.lost++;
      fig.lost++;
      const gone = t.vanished === undefined
        ? "never final"
        : `unknown to the service since round ${t.vanished}, its result never reached us`;
      if (report.examples.length < 20) {
        report.examples.push(`lost: ${what} (submitted in round ${t.round}; ${gone})`);
      }
      continue;
    }
    if (t.changed) {
      report.duplicated++;
      fig.duplicated++;
      if (report.examples.length < 20) {
        report.examples.push(`duplicated: ${what}: ${t.changed}`);
      }
    }
    const verdict = _judge(t, t.final);
    if (verdict === "ok") {
      report.succeeded++;
      fig.succeeded++;
    } else if (verdict === "reason") {
      report.failedWithReason++;
      fig.failedWithReason++;
      const type = t.final.error!.type;
      report.reasons[type] = (report.reasons[type] ?? 0) + 1;
    } else {
      report.wrong++;
      fig.wrong++;
      if (report.examples.length < 20) report.examples.push(`wrong: ${what}: ${verdict}`);
    }
  }
  const bad = report.lost + report.duplicated + report.wrong + report.stuck +
    report.problems.length;
  report.homeKept = !!opts.keepHome || bad > 0;
  if (diskFull === "tmpfs") {
    // the service's files live on the tmpfs: copy them next to the rest before it goes
    if (report.homeKept) {
      await _run("cp", ["-a", svcDir, join(home, "service-kept")]);
    }
    await _run("umount", [svcDir]);
  }
  if (!report.homeKept) {
    try {
      Deno.removeSync(home, { recursive: true });
    } catch { /* best effort */ }
  }
  return report;
}

function _emptyFigures(): KindFigures {
  return {
    rounds: 0,
    tasks: 0,
    succeeded: 0,
    failedWithReason: 0,
    lost: 0,
    duplicated: 0,
    wrong: 0,
  };
}

/** Free bytes of the filesystem holding `dir` (`df`), 0 when unknown. */
function _freeBytes(dir: string): number {
  try {
    const out = new Deno.Command("df", { args: ["-B1", "--output=avail", dir] }).outputSync();
    return Number(new TextDecoder().decode(out.stdout).trim().split("\n").pop()) || 0;
  } catch {
    return 0;
  }
}

/** Fill the filesystem by writing zeros until ENOSPC (when fallocate is not available). */
async function _fillWithWrites(path: string): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(1 << 20);
  try {
    for (;;) await f.write(chunk);
  } catch {
    /* full */
  } finally {
    f.close();
  }
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
 * ```ts ignore
 * formatReport(r); // "rounds=20, tasks=412, succeeded=380, failed-with-reason=32, lost=0, duplicated=0, ..."
 * ```
 */
export function formatReport(r: ChaosReport): string {
  return `rounds=${r.rounds}, tasks=${r.tasks}, succeeded=${r.succeeded}, failed-with-reason=${r.failedWithReason}, lost=${r.lost}, duplicated=${r.duplicated}, wrong=${r.wrong}, stuck=${r.stuck}, unacknowledged-submits=${r.unacknowledgedSubmits}`;
}

/**
 * One line per fault kind that ran: rounds, tasks submitted in its rounds, and their fate.
 *
 * @example
 * ```ts ignore
 * formatPerKind(r); // ["fwd-stall        rounds=3 tasks=41 ok=35 failed=6 lost=0 duplicated=0", ...]
 * ```
 */
export function formatPerKind(r: ChaosReport): string[] {
  const out: string[] = [];
  for (const k of FAULT_KINDS) {
    const f = r.perKind[k];
    if (!f) continue;
    out.push(
      `${
        k.padEnd(18)
      } rounds=${f.rounds} tasks=${f.tasks} ok=${f.succeeded} failed=${f.failedWithReason} lost=${f.lost} duplicated=${f.duplicated} wrong=${f.wrong}`,
    );
  }
  return out;
}
