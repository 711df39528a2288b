/**
 * Seeded randomness for the fuzz tests: a small PRNG and mutators for bytes, text and JSON
 * values. Every fuzz test prints its seed; set `FUZZ_SEED` to replay another one.
 *
 * @example
 * ```ts
 * import { Rand } from "./_rand.ts";
 * const r = new Rand(1234);
 * const frame = r.mutateBytes(new TextEncoder().encode("hello"));
 * ```
 * @module
 */

/**
 * The seed of this run: `FUZZ_SEED` or the fixed default.
 *
 * @example
 * ```ts
 * const rand = new Rand(fuzzSeed(1234)); // FUZZ_SEED=99 deno test ... replays seed 99
 * ```
 */
export function fuzzSeed(fallback: number): number {
  const s = Deno.env.get("FUZZ_SEED");
  return s && /^\d+$/.test(s) ? Number(s) : fallback;
}

/**
 * A bare seeded generator: uniform numbers in [0, 1), the same sequence as
 * {@linkcode Rand.next} for that seed.
 *
 * @example
 * ```ts
 * const rnd = rng(42);
 * rnd(); // 0.6011...
 * ```
 */
export function rng(seed: number): () => number {
  const r = new Rand(seed);
  return () => r.next();
}

/** Deterministic PRNG (mulberry32) with helpers. */
export class Rand {
  #a: number;
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A random string (ASCII, control characters, unicode, quotes, path tricks). */
  text(max = 40): string {
    const alphabet = [
      "a",
      "Z",
      "0",
      "-",
      "/",
      "..",
      "\\",
      '"',
      "'",
      "\n",
      "\0",
      "%",
      "{",
      "}",
      "é",
      "😀",
      "\u202e",
      " ",
      ":",
      "=",
    ];
    let s = "";
    const n = this.int(max + 1);
    for (let i = 0; i < n; i++) s += this.pick(alphabet);
    return s;
  }

  /** A random JSON value of bounded depth. */
  json(depth = 2): unknown {
    const k = this.int(depth > 0 ? 10 : 7);
    switch (k) {
      case 0:
        return null;
      case 1:
        return this.next() < 0.5;
      case 2:
        return this.pick([0, -1, 1e308, -1e-308, 2 ** 53 + 1, 3.5, 1e21]);
      case 3:
        return this.text();
      case 4:
        return crypto.randomUUID();
      case 5:
        return "x".repeat(this.pick([0, 1, 300, 70_000]));
      case 6:
        return "00\n" + this.text(10);
      case 7:
        return Array.from({ length: this.int(4) }, () => this.json(depth - 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(4); i > 0; i--) o[this.text(8)] = this.json(depth - 1);
        return o;
      }
    }
  }

  /** Flip, insert, delete, duplicate, truncate or splice random bytes of `b`. */
  mutateBytes(b: Uint8Array): Uint8Array {
    const out = Array.from(b);
    const rounds = 1 + this.int(4);
    for (let r = 0; r < rounds; r++) {
      const op = this.int(6);
      const at = out.length === 0 ? 0 : this.int(out.length);
      if (op === 0 && out.length > 0) out[at] ^= 1 << this.int(8);
      else if (op === 1) out.splice(at, 0, ...this.bytes(1 + this.int(8)));
      else if (op === 2) out.splice(at, 1 + this.int(8));
      else if (op === 3) out.length = at;
      else if (op === 4 && out.length > 0) out[at] = this.pick([0, 0x7f, 0x80, 0xff, 0x2e, 0x0a]);
      else out.splice(at, 0, ...out.slice(at, at + this.int(16)));
    }
    return new Uint8Array(out);
  }

  /** Replace, delete or add random keys of a JSON object (a copy), or retype it entirely. */
  mutateJson(v: Record<string, unknown>): unknown {
    if (this.next() < 0.1) return this.json();
    const o: Record<string, unknown> = structuredClone(v);
    const keys = Object.keys(o);
    const rounds = 1 + this.int(3);
    for (let i = 0; i < rounds; i++) {
      const op = this.int(3);
      if (op === 0 && keys.length > 0) o[this.pick(keys)] = this.json();
      else if (op === 1 && keys.length > 0) delete o[this.pick(keys)];
      else {
        const key = this.pick([...keys, this.text(8), "__proto__", "constructor"]);
        Object.defineProperty(o, key, {
          value: this.json(),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return o;
  }
}
