/**
 * Child process of `deno task bench --scale`: many simulated managers in one process, each
 * a real {@linkcode Dealer} of our ZMTP transport speaking the real manager protocol of
 * `src/engine/wire.ts` to the interchange (REGISTER with the block's token, HEARTBEAT every
 * period, STARTED + RESULTS for every TASKS message, CAPACITY 20 ms later, as
 * `manager.ts` sends them). Their 64 (or W) workers answer instantly: every task's result,
 * a pickled result dict as the Python worker writes it, leaves on the next macrotask.
 * Driven over `_rpc.ts`.
 *
 * @example
 * ```sh
 * deno run -A scripts/bench/scale_managers.ts
 * ```
 * @module
 */
import { setImmediate } from "node:timers";
import { cpuUsage } from "node:process";
import { Dealer, SocketClosedError } from "../../src/io/zmtp/mod.ts";
import { encodePickle } from "../../src/protocol/pickle/mod.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import {
  decodeInterchangeMessage,
  encodeBare,
  encodeCapacity,
  encodeRegister,
  encodeResults,
  encodeStarted,
  type WireResult,
} from "../../src/engine/wire.ts";
import { serveRpc } from "./_rpc.ts";

const _NONE = serializeData(null);

/** One simulated manager. */
class _SimManager {
  readonly sock: Dealer;
  #out: WireResult[] = [];
  #started: string[] = [];
  #flushQueued = false;
  #capTimer?: ReturnType<typeof setTimeout>;
  tasks = 0;
  closed = false;

  constructor(readonly uid: string, readonly workers: number) {
    this.sock = new Dealer({ routingId: uid, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  }

  start(address: string, blockId: string, token: string): void {
    this.sock.connect(address);
    this.send(encodeRegister({
      token,
      uid: this.uid,
      block_id: blockId,
      hostname: "bench-sim",
      pid: Deno.pid,
      workers: this.workers,
      cores: this.workers,
    }));
    this.sock.setHandler((frames) => this.#onMessage(frames));
  }

  send(frames: Uint8Array[]): void {
    this.sock.send(frames).catch((e) => {
      if (!(e instanceof SocketClosedError)) console.error(`sim manager ${this.uid}:`, e);
    });
  }

  #onMessage(frames: Uint8Array[]): void {
    const msg = decodeInterchangeMessage(frames);
    if (msg.type === "SHUTDOWN") {
      this.close();
      return;
    }
    if (msg.type !== "TASKS") return;
    for (const t of msg.tasks) {
      this.#started.push(t.taskId);
      this.#out.push({
        taskId: t.taskId,
        failed: false,
        message: encodePickle({ task_id: t.taskId, container_id: "RAW", result: _NONE }),
      });
    }
    this.tasks += msg.tasks.length;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.closed) return;
    for (let i = 0; i < this.#started.length; i += 1000) {
      this.send(encodeStarted(this.#started.slice(i, i + 1000)));
    }
    this.#started = [];
    while (this.#out.length) this.send(encodeResults(this.#out.splice(0, 256)));
    if (this.#capTimer === undefined) {
      this.#capTimer = setTimeout(() => {
        this.#capTimer = undefined;
        if (!this.closed) this.send(encodeCapacity({ free: this.workers, queued: 0 }));
      }, 20);
    }
  }

  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.#capTimer);
    return this.sock.close();
  }
}

let managers: _SimManager[] = [];
let beat: ReturnType<typeof setInterval> | undefined;

/** Start `n` managers (they connect and register at once); returns right away. */
function connect(a: Record<string, unknown>) {
  const n = a.n as number, workers = a.workers as number;
  const run = crypto.randomUUID().slice(0, 8);
  for (let i = 0; i < n; i++) {
    const m = new _SimManager(`sim-${run}-${i}`, workers);
    managers.push(m);
    m.start(a.address as string, a.blockId as string, a.token as string);
  }
  // each manager beats once per period at its own phase, as managers started at different
  // times do (one burst of N heartbeats would be an artefact of simulating them in one process)
  const hb = encodeBare("HEARTBEAT");
  const periodMs = (a.hbPeriod as number) * 1000, tickMs = 10;
  let next = 0, owed = 0;
  beat = setInterval(() => {
    owed += (managers.length * tickMs) / periodMs;
    for (; owed >= 1 && managers.length > 0; owed--) {
      const m = managers[next++ % managers.length];
      if (!m.closed) m.send(hb);
    }
  }, tickMs);
  return { n: managers.length };
}

async function close() {
  clearInterval(beat);
  await Promise.all(managers.map((m) => m.close()));
  managers = [];
}

if (import.meta.main) {
  await serveRpc({
    connect,
    close,
    cpu: () => {
      const u = cpuUsage();
      return { cpuUs: u.user + u.system };
    },
    tasks: () => ({ tasks: managers.reduce((n, m) => n + m.tasks, 0) }),
    exit: close,
  });
}
