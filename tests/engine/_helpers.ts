// Shared helpers of the workers tests (temp endpoint dirs, configs, task bodies, results).
import { join } from "node:path";
import { DEFAULT_ENDPOINT_CONFIG, type EndpointConfig } from "../../src/config/types.ts";
import { createLogger, type Logger } from "../../src/daemon/log.ts";
import { decodePickle, PyTuple, type PyValue } from "../../src/protocol/pickle/mod.ts";
import { packTask } from "../../src/protocol/messages.ts";
import {
  buildTaskPayload,
  decodeRemoteException,
  deserialize,
  serializeData,
  serializeSource,
} from "../../src/protocol/serialize.ts";
import type { InterchangeResult } from "../../src/engine/interchange.ts";

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

/** Python functions the tests run in the real worker. */
export const FUNCTIONS = {
  ident: "def ident(x):\n    import os\n    return [x, os.getpid()]\n",
  envkeys: "def envkeys():\n    import os\n    return sorted(os.environ)\n",
  nap:
    "def nap(x, secs):\n    import os, time\n    time.sleep(secs)\n    return [x, os.getpid()]\n",
  sleeper: [
    "def sleeper(path, secs):",
    "    import os, time",
    "    with open(path + '.tmp', 'w') as f:",
    "        f.write(str(os.getpid()))",
    "    os.rename(path + '.tmp', path)",
    "    time.sleep(secs)",
    "    return 'survived'",
    "",
  ].join("\n"),
};

/** A real upstream Task message calling `FUNCTIONS[name](*args)`. */
export function pyTask(taskId: string, name: keyof typeof FUNCTIONS, args: PyValue[]) {
  const body = packTask(
    taskId,
    "RAW",
    buildTaskPayload(
      serializeSource(name, FUNCTIONS[name]),
      serializeData(new PyTuple(args)),
      serializeData({}),
    ),
  );
  return { taskId, containerId: "RAW", body };
}

/** A decoded result dict. */
export interface Decoded {
  taskId: string;
  result?: PyValue;
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
  if (res !== undefined) out.result = deserialize(String(res));
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
  waitFor(pred: () => boolean, what: string, timeoutMs = 90_000): Promise<void> {
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
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 90_000) {
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
