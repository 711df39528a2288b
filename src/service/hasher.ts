/**
 * Password checks off the thread that serves the API and routes tasks: scrypt runs in the
 * runtime's blocking thread pool (async `node:crypto.scrypt`), at most `concurrency` at a
 * time, with at most `queue` more waiting. Anything beyond is refused at once with
 * {@linkcode HasherBusy} (the HTTP layer answers 429), so a login flood costs the event
 * loop almost nothing and cannot build an unbounded backlog.
 *
 * @example
 * ```ts ignore
 * import { PasswordHasher, HasherBusy } from "./hasher.ts";
 * const h = new PasswordHasher({ concurrency: 1, queue: 8 });
 * const ok = await h.verify("hunter2", storedRecord); // throws HasherBusy when full
 * ```
 * @module
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** The hashing queue is full: refuse the attempt (429) without queueing it. */
export class HasherBusy extends Error {
  constructor(readonly limit: number) {
    super(`too many sign-in attempts in progress (${limit}); retry shortly`);
    this.name = "HasherBusy";
  }
}

/** Options of {@linkcode PasswordHasher}. */
export interface HasherOptions {
  /** Checks running at once (default 1: the API keeps the other core). */
  concurrency?: number;
  /** Checks allowed to wait (default 8). */
  queue?: number;
}

let _dummy: Promise<string> | undefined;

/** A record in the format of `hashPassword`, made off the API thread. */
function _dummyRecord(): Promise<string> {
  return _dummy ??= new Promise((resolve, reject) => {
    const salt = randomBytes(16);
    scrypt("not a password", salt, 32, { N: 16384, r: 8, p: 1 }, (err, key) => {
      if (err) reject(err);
      else resolve(`scrypt$16384$8$1$${salt.toString("base64")}$${key.toString("base64")}`);
    });
  });
}

/** Bounded, off-thread scrypt verification of {@linkcode hashPassword} records. */
export class PasswordHasher {
  readonly concurrency: number;
  readonly queue: number;
  #running = 0;
  #waiting: (() => void)[] = [];

  constructor(opts: HasherOptions = {}) {
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.queue = Math.max(0, opts.queue ?? 8);
  }

  /** Checks running plus waiting now. */
  get load(): number {
    return this.#running + this.#waiting.length;
  }

  /**
   * Check `password` against `record` (or against a dummy record when `record` is
   * undefined, so an unknown user costs the same). Throws {@linkcode HasherBusy} when
   * `concurrency + queue` checks are already in progress.
   *
   * @example
   * ```ts ignore
   * await h.verify("pw", hashPassword("pw")); // true
   * ```
   */
  async verify(password: string, record: string | undefined): Promise<boolean> {
    if (this.#running >= this.concurrency) {
      if (this.#waiting.length >= this.queue) throw new HasherBusy(this.concurrency + this.queue);
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      const ok = await _verify(password, record ?? await _dummyRecord());
      return ok && record !== undefined;
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // hands its slot over: #running unchanged
      else this.#running--;
    }
  }
}

function _verify(password: string, record: string): Promise<boolean> {
  const parts = record.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return Promise.resolve(false);
  const [n, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], "base64");
  const want = Buffer.from(parts[5], "base64");
  return new Promise((resolve, reject) => {
    scrypt(password, salt, want.length, { N: n, r, p, maxmem: 256 * n * r }, (err, got) => {
      if (err) reject(err);
      else resolve(got.length === want.length && timingSafeEqual(got, want));
    });
  });
}
