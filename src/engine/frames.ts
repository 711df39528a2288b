/**
 * The manager ↔ Python worker framing (DESIGN.md §6): each payload is preceded by its
 * length as a 4-byte big-endian unsigned integer, both ways over stdin/stdout.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameReader } from "./frames.ts";
 * const r = new FrameReader(1024);
 * r.push(encodeFrame(new Uint8Array([1, 2, 3]))); // [Uint8Array [1, 2, 3]]
 * ```
 * @module
 */

/**
 * Prefix `payload` with its 4-byte big-endian length.
 *
 * @example
 * ```ts
 * encodeFrame(new Uint8Array([7])); // Uint8Array [0, 0, 0, 1, 7]
 * ```
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  return encodeFrames([payload]);
}

/**
 * Several frames back to back in one buffer (one pipe write for a batch of tasks).
 *
 * @example
 * ```ts
 * encodeFrames([new Uint8Array([1]), new Uint8Array([2, 3])]); // 0,0,0,1,1, 0,0,0,2,2,3
 * ```
 */
export function encodeFrames(payloads: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of payloads) n += 4 + p.byteLength;
  const out = new Uint8Array(n);
  const view = new DataView(out.buffer);
  let off = 0;
  for (const p of payloads) {
    view.setUint32(off, p.byteLength, false);
    out.set(p, off + 4);
    off += 4 + p.byteLength;
  }
  return out;
}

/** A frame longer than the reader's limit. */
export class FrameTooLargeError extends Error {
  /** `size` of the offending frame and the reader's `limit`, in bytes. */
  constructor(readonly size: number, readonly limit: number) {
    super(`frame of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.name = "FrameTooLargeError";
  }
}

/**
 * Incremental decoder of length-prefixed frames from a byte stream.
 *
 * @example
 * ```ts
 * const r = new FrameReader(100);
 * const f = encodeFrame(new Uint8Array([9, 9]));
 * r.push(f.subarray(0, 3)); // []
 * r.push(f.subarray(3)); // [Uint8Array [9, 9]]
 * ```
 */
export class FrameReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #limit: number;

  /** `limit`: largest accepted payload in bytes. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Add bytes; returns the frames completed by them. Throws {@linkcode FrameTooLargeError}. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.byteLength) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
    }
    const frames: Uint8Array[] = [];
    while (this.#buffered >= 4) {
      const head = this.#peek(4);
      const size = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, false);
      if (size > this.#limit) throw new FrameTooLargeError(size, this.#limit);
      if (this.#buffered < 4 + size) break;
      this.#take(4);
      frames.push(this.#take(size));
    }
    return frames;
  }

  #peek(n: number): Uint8Array {
    if (this.#chunks[0].byteLength >= n) return this.#chunks[0].subarray(0, n);
    const out = new Uint8Array(n);
    let off = 0;
    for (const c of this.#chunks) {
      const k = Math.min(c.byteLength, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (off === n) break;
    }
    return out;
  }

  #take(n: number): Uint8Array {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first && first.byteLength >= n) {
      const out = first.slice(0, n);
      if (first.byteLength === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return out;
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0];
      const k = Math.min(c.byteLength, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.byteLength) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }
}
