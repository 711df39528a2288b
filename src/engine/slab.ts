/**
 * Compact storage for the bodies of queued tasks.
 *
 * A task arrives as its own ZeroMQ frame with its own small buffer (a V8 backing store, freed
 * only by a finalizer). {@linkcode ByteSlab.copy} packs small bodies side by side into shared
 * 64 KiB chunks instead, and the frames become garbage at once (measurements in
 * bench/FINDINGS.md). Tasks leave the queue in order, so a
 * chunk is freed once its tasks are dispatched, and {@linkcode ByteSlab.detach} gives a
 * dispatched task its own bytes so that one long-running task does not pin a whole chunk.
 *
 * @example
 * ```ts
 * import { ByteSlab } from "./slab.ts";
 * const slab = new ByteSlab();
 * const kept = slab.copy(new Uint8Array([1, 2, 3])); // a view into a shared chunk
 * const own = slab.detach(kept); // Uint8Array [1, 2, 3] with its own buffer
 * ```
 * @module
 */

/** Size of one shared chunk (bytes). */
export const SLAB_CHUNK_BYTES = 64 * 1024;
/** Bodies larger than this are kept as they are (the per-frame overhead is small beside them). */
export const SLAB_MAX_COPY_BYTES = 2048;

/** Packs small byte strings into shared chunks (see the module doc). */
export class ByteSlab {
  #chunk = new Uint8Array(0);
  #used = 0;
  #chunks = new WeakSet<ArrayBufferLike>();

  /**
   * `bytes` copied into the current chunk (a new one when it is full); bodies larger than
   * {@linkcode SLAB_MAX_COPY_BYTES} are returned unchanged.
   *
   * @example
   * ```ts
   * new ByteSlab().copy(new Uint8Array([7])); // Uint8Array [7], backed by a 64 KiB chunk
   * ```
   */
  copy(bytes: Uint8Array): Uint8Array {
    const n = bytes.byteLength;
    if (n > SLAB_MAX_COPY_BYTES) return bytes;
    if (this.#used + n > this.#chunk.byteLength) {
      this.#chunk = new Uint8Array(SLAB_CHUNK_BYTES);
      this.#chunks.add(this.#chunk.buffer);
      this.#used = 0;
    }
    const out = this.#chunk.subarray(this.#used, this.#used + n);
    out.set(bytes);
    // 8-byte steps keep every view aligned (cheap: bodies are ~200 bytes)
    this.#used += (n + 7) & ~7;
    return out;
  }

  /**
   * A copy with its own buffer when `bytes` lives in one of this slab's chunks, else
   * `bytes` itself.
   *
   * @example
   * ```ts
   * const slab = new ByteSlab();
   * slab.detach(slab.copy(new Uint8Array([1]))).buffer.byteLength; // 1
   * ```
   */
  detach(bytes: Uint8Array): Uint8Array {
    return this.#chunks.has(bytes.buffer) ? bytes.slice() : bytes;
  }
}
