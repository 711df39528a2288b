/**
 * The store of results sent to the forwarder but not yet acknowledged (`ResultsAck`),
 * persisted to `unacked_results.json` as `{task_id: base64(pickled result)}`.
 *
 * Changes are written in batches (debounced: at most every `debounceMs`, or every 10 × the
 * time the last write took when that is longer) and on {@linkcode UnackedStore.flush};
 * nothing touches the disk per result. A corrupt file is moved aside (never deleted) and
 * reported once.
 *
 * Results are normally acked within milliseconds, but a burst of tasks holds thousands at once
 * (acks queue behind the tasks on the tasks channel), and writing that many as one multi-MB
 * string on every change batch costs the daemon memory and time. So: a stored result is a copy
 * packed into a shared slab (`engine/slab.ts`), not the ZeroMQ frame it came in; its base64
 * form exists only while the file is written, in ~64 KiB pieces; a slow write delays the next
 * one (figures: bench/FINDINGS.md, "Memory"). A result still unacknowledged at its second
 * write gets its own buffer, so a straggler never pins a whole slab chunk.
 *
 * @example
 * ```ts
 * import { UnackedStore } from "./unacked.ts";
 * const store = new UnackedStore("/home/u/.funcx/default/unacked_results.json");
 * store.load();
 * store.put("task-1", new Uint8Array([128, 4]));
 * store.ack("task-1");
 * store.flush();
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { ByteSlab } from "../engine/slab.ts";
import { atomicWriteChunks } from "./files.ts";

interface _Entry {
  bytes: Uint8Array;
  /** Already in a written file (then it no longer shares a slab chunk). */
  written?: boolean;
}

/** Options of {@linkcode UnackedStore}. */
export interface UnackedStoreOptions {
  /** Delay before a change batch is written (ms), default 200 (longer for a slow write). */
  debounceMs?: number;
  /** Reports a problem (corrupt file moved aside, write failed) once per occurrence. */
  onError?: (message: string) => void;
}

/** Unacknowledged results, in insertion order. */
export class UnackedStore {
  #map = new Map<string, _Entry>();
  #slab = new ByteSlab();
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #debounceMs: number;
  #onError: (m: string) => void;
  #lastWriteError = "";
  /** How long the last write took (ms). */
  #writeMs = 0;

  /** @param path the JSON file, @param opts debounce and error reporting */
  constructor(readonly path: string, opts: UnackedStoreOptions = {}) {
    this.#debounceMs = opts.debounceMs ?? 200;
    this.#onError = opts.onError ?? (() => {});
  }

  /** Number of unacknowledged results. */
  get size(): number {
    return this.#map.size;
  }

  /** Load the file (if any); returns how many results were loaded. */
  load(): number {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return 0;
      this.#onError(`${this.path}: cannot be read (${(e as Error).message})`);
      return 0;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
      if (typeof data !== "object" || data === null || Array.isArray(data)) throw new Error();
    } catch {
      const aside = `${this.path}.corrupt-${Date.now()}`;
      try {
        Deno.renameSync(this.path, aside);
      } catch { /* keep it where it is */ }
      this.#onError(
        `${this.path}: not a JSON object {task_id: base64}; moved aside to ${aside}, starting empty`,
      );
      return 0;
    }
    let bad = 0;
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
      if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length === 0) {
        bad++;
        continue;
      }
      this.#map.set(k, { bytes: new Uint8Array(Buffer.from(v, "base64")) });
    }
    if (bad) {
      this.#onError(
        `${this.path}: ${bad} entr${
          bad === 1 ? "y is" : "ies are"
        } not base64 strings and were skipped`,
      );
      // keep the original for inspection; the next write replaces the file
      try {
        Deno.copyFileSync(this.path, `${this.path}.corrupt-${Date.now()}`);
      } catch { /* best effort */ }
    }
    return this.#map.size;
  }

  /** Is a result for `taskId` waiting for its ack? */
  has(taskId: string): boolean {
    return this.#map.has(taskId);
  }

  /** The pickled result of `taskId`, if unacknowledged. */
  get(taskId: string): Uint8Array | undefined {
    return this.#map.get(taskId)?.bytes;
  }

  /** Remember a sent result (a copy of `bytes`; the caller's buffer is not kept). */
  put(taskId: string, bytes: Uint8Array): void {
    this.#map.set(taskId, { bytes: this.#slab.copy(bytes) });
    this.#touch();
  }

  /** Forget an acknowledged result; false if it was unknown. */
  ack(taskId: string): boolean {
    const had = this.#map.delete(taskId);
    if (had) this.#touch();
    return had;
  }

  /** All unacknowledged results, oldest first. */
  *entries(): IterableIterator<[string, Uint8Array]> {
    for (const [k, v] of this.#map) yield [k, v.bytes];
  }

  /** Write now if anything changed (also cancels a pending debounced write). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#dirty) return;
    const t0 = performance.now();
    try {
      atomicWriteChunks(this.path, this.#json(), 0o600);
      this.#writeMs = performance.now() - t0;
      this.#dirty = false;
      this.#lastWriteError = "";
    } catch (e) {
      const msg = `cannot write ${this.path}: ${(e as Error).message} (kept in memory, will retry)`;
      if (msg !== this.#lastWriteError) this.#onError(msg);
      this.#lastWriteError = msg;
      this.#schedule(1000);
    }
  }

  /** Flush and stop the timer. */
  close(): void {
    this.flush();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The file's text in ~64 KiB pieces. An entry already written once stops sharing its slab
   * chunk (see the module doc).
   */
  *#json(): Generator<string> {
    let chunk = "{";
    let sep = "";
    for (const [k, e] of this.#map) {
      if (e.written) e.bytes = this.#slab.detach(e.bytes);
      e.written = true;
      chunk += `${sep}${JSON.stringify(k)}:"${e.bytes.toBase64()}"`;
      sep = ",\n";
      if (chunk.length >= 65536) {
        yield chunk;
        chunk = "";
      }
    }
    yield `${chunk}}\n`;
  }

  #touch(): void {
    this.#dirty = true;
    // a large store (thousands of results during a burst) takes tens of ms to write: writing
    // it at most every 10 × that keeps the writes under ~10 % of the daemon's time
    this.#schedule(Math.max(this.#debounceMs, 10 * this.#writeMs));
  }

  #schedule(ms: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, ms);
  }
}
