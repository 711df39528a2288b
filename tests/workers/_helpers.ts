// Shared helpers of the workers tests (temp endpoint dirs, configs, task bodies, results).
import { join } from "node:path";
import { DEFAULT_ENDPOINT_CONFIG, type EndpointConfig } from "../../src/config/types.ts";
import { createLogger, type Logger } from "../../src/daemon/log.ts";
import { decodePickle, type PyValue } from "../../src/protocol/pickle.ts";
import { decodeRemoteException } from "../../src/protocol/serialize.ts";
import type { InterchangeResult } from "../../src/workers/interchange.ts";

export const FIXTURE_WORKER = new URL("./_fixture_worker.py", import.meta.url).pathname;
export const RUN_MANAGER = new URL("./_run_manager.ts", import.meta.url).pathname;

/** A temp funcX home with an endpoint dir `<home>/ep`. */
export async function tempEndpoint(): Promise<{ home: string; dir: string; log: Logger }> {
  const home = await Deno.makeTempDir({ prefix: "fx-workers-" });
  const dir = join(home, "ep");
  await Deno.mkdir(dir, { recursive: true });
  const log = createLogger({ file: join(dir, "endpoint.log"), level: "debug" });
  return { home, dir, log };
}

/** The endpoint config with overrides. */
export function config(
  provider: Partial<EndpointConfig["provider"]>,
  executor: Partial<EndpointConfig["executor"]>,
): EndpointConfig {
  return {
    ...DEFAULT_ENDPOINT_CONFIG,
    provider: { ...DEFAULT_ENDPOINT_CONFIG.provider, ...provider },
    executor: { ...DEFAULT_ENDPOINT_CONFIG.executor, ...executor },
  };
}

/** Manager command for tests: src/cli/manager.ts's command run by a tiny script. */
export function managerCommand(): { cmd: string; args: string[] } {
  return { cmd: Deno.execPath(), args: ["run", "-A", RUN_MANAGER] };
}

/** An upstream-framed task body for the fixture worker. */
export function fixtureTask(taskId: string, command: string) {
  return {
    taskId,
    containerId: "RAW",
    body: new TextEncoder().encode(`\x05TID=${taskId};CID=RAW;${command}`),
  };
}

/** A decoded result dict. */
export interface Decoded {
  taskId: string;
  result?: string;
  exceptionType?: string;
  exceptionMessage?: string;
  raw: Map<string, PyValue> | Record<string, PyValue>;
}

/** Decode a pickled result dict (exceptions via decodeRemoteException when serialized). */
export function decodeResult(r: InterchangeResult): Decoded {
  const d = decodePickle(r.message) as Record<string, PyValue>;
  const get = (k: string) => d instanceof Map ? d.get(k) : d[k];
  const out: Decoded = { taskId: String(get("task_id")), raw: d };
  const res = get("result");
  if (res !== undefined) out.result = String(res);
  const exc = get("exception");
  if (exc !== undefined) {
    const s = String(exc);
    if (s.startsWith("00\n")) {
      const info = decodeRemoteException(s);
      out.exceptionType = info.type;
      out.exceptionMessage = info.message;
    } else {
      out.exceptionType = "str";
      out.exceptionMessage = s;
    }
  }
  return out;
}

/** Collects results and lets a test wait for a condition. */
export class Collector {
  results: Decoded[] = [];
  #waiters: { pred: () => boolean; resolve: () => void }[] = [];

  onResults = (rs: InterchangeResult[]) => {
    for (const r of rs) this.results.push(decodeResult(r));
    this.#waiters = this.#waiters.filter((w) => {
      if (w.pred()) w.resolve();
      return !w.pred();
    });
  };

  byId(id: string): Decoded | undefined {
    return this.results.find((r) => r.taskId === id);
  }

  /** Resolve when pred() holds; reject after timeoutMs with `what`. */
  waitFor(pred: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.#waiters.push({
        pred,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }
}

/** Poll `fn` until it returns a truthy value. */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** True when a process exists. */
export function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}
