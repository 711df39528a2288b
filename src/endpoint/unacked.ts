/**
 * The store of results sent to the forwarder but not yet acknowledged (`ResultsAck`),
 * persisted to `unacked_results.json` as `{task_id: base64(pickled result)}`.
 *
 * Changes are written in batches (debounced, at most every `debounceMs`) and on
 * {@linkcode UnackedStore.flush}; nothing touches the disk per result. A corrupt file is
 * moved aside (never deleted) and reported once.
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
import { atomicWrite } from "./files.ts";

interface _Entry {
  bytes: Uint8Array;
  b64?: string;
}

/** Options of {@linkcode UnackedStore}. */
export interface UnackedStoreOptions {
  /** Delay before a change batch is written (ms), default 200. */
  debounceMs?: number;
  /** Reports a problem (corrupt file moved aside, write failed) once per occurrence. */
  onError?: (message: string) => void;
}

/** Unacknowledged results, in insertion order. */
export class UnackedStore {
  #map = new Map<string, _Entry>();
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #debounceMs: number;
  #onError: (m: string) => void;
  #lastWriteError = "";

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
      this.#map.set(k, { bytes: new Uint8Array(Buffer.from(v, "base64")), b64: v });
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

  /** Remember a sent result. */
  put(taskId: string, bytes: Uint8Array): void {
    this.#map.set(taskId, { bytes });
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
    const parts: string[] = [];
    for (const [k, e] of this.#map) {
      e.b64 ??= Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength).toString(
        "base64",
      );
      parts.push(`${JSON.stringify(k)}:"${e.b64}"`);
    }
    try {
      atomicWrite(this.path, `{${parts.join(",\n")}}\n`, 0o600);
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

  #touch(): void {
    this.#dirty = true;
    this.#schedule(this.#debounceMs);
  }

  #schedule(ms: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, ms);
  }
}
