/**
 * `executor.worker_ports: "54000-55000"`: confine the interchange's listening port to a range
 * a firewall lets through. The order in which ports are tried is a pure function
 * ({@linkcode portOrder}: from a random start, wrapping, so endpoints sharing a range do not
 * all race for its first port); {@linkcode bindInRange} tries them on anything with a
 * `bind(address)`.
 *
 * @example
 * ```ts ignore
 * import { bindInRange, parsePortRange } from "./ports.ts";
 * const range = parsePortRange("54000-55000");
 * const address = await bindInRange(router, "10.1.0.7", range);
 * ```
 * @module
 */

/** An inclusive port range. */
export interface PortRange {
  lo: number;
  hi: number;
}

/**
 * Parse `"LO-HI"`; `undefined` when malformed (not two ports 1-65535 with LO <= HI).
 *
 * @example
 * ```ts
 * parsePortRange("54000-55000"); // { lo: 54000, hi: 55000 }
 * parsePortRange("9-1"); // undefined
 * ```
 */
export function parsePortRange(text: string): PortRange | undefined {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) return undefined;
  return { lo, hi };
}

/**
 * Every port of `range` once, starting at offset `floor(random * size)` and wrapping.
 *
 * @example
 * ```ts
 * [...portOrder({ lo: 10, hi: 13 }, 0.5)]; // [12, 13, 10, 11]
 * ```
 */
export function* portOrder(range: PortRange, random: number): Generator<number> {
  const size = range.hi - range.lo + 1;
  const start = Math.min(size - 1, Math.floor(random * size));
  for (let i = 0; i < size; i++) yield range.lo + (start + i) % size;
}

/** A socket that can listen on `tcp://host:port`. */
export interface Bindable {
  bind(address: string): Promise<unknown>;
}

/** No port of the range could be bound. */
export class PortRangeExhaustedError extends Error {
  constructor(readonly range: PortRange, host: string) {
    super(
      `executor.worker_ports: no free port in ${range.lo}-${range.hi} on ${host} (all ${
        range.hi - range.lo + 1
      } in use); widen the range or stop what uses it`,
    );
    this.name = "PortRangeExhaustedError";
  }
}

function _inUse(e: unknown): boolean {
  return e instanceof Deno.errors.AddrInUse ||
    /address (already )?in use|EADDRINUSE/i.test(String((e as Error)?.message ?? e));
}

/**
 * Bind `socket` on `host` to a port of `range` (any port when `range` is undefined); returns
 * the `tcp://` address bound. Ports in use are skipped; other errors are thrown.
 *
 * @example
 * ```ts ignore
 * await bindInRange(router, "127.0.0.1", { lo: 54000, hi: 54010 }); // "tcp://127.0.0.1:54007"
 * ```
 */
export async function bindInRange(
  socket: Bindable,
  host: string,
  range: PortRange | undefined,
  random: () => number = Math.random,
): Promise<string> {
  const h = host.includes(":") ? `[${host}]` : host;
  if (!range) {
    const r = await socket.bind(`tcp://${h}:*`);
    return typeof r === "string" ? r : `tcp://${h}:*`;
  }
  for (const port of portOrder(range, random())) {
    try {
      await socket.bind(`tcp://${h}:${port}`);
      return `tcp://${h}:${port}`;
    } catch (e) {
      if (!_inUse(e)) throw e;
    }
  }
  throw new PortRangeExhaustedError(range, host);
}
