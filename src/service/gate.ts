/**
 * The connection gate in front of the service's HTTP server. `Deno.serve` has no
 * header-read timeout and no connection limit, so a client could hold thousands of
 * half-sent requests open (slowloris) until the process runs out of file descriptors. The
 * gate owns the public listener (and TLS), and for each connection:
 *
 * - refuses it at once when its address already has `perAddress` connections or the gate
 *   `total`;
 * - closes it unless the first request's headers (up to the blank line) arrive within
 *   `headerTimeoutMs` and fit in `maxHeaderBytes`;
 * - closes it after `idleTimeoutMs` without a byte either way;
 * - otherwise pipes it to the HTTP server on a private loopback port, remembering which
 *   client each private connection stands for ({@linkcode ConnectionGate.clientOf}).
 *
 * @example
 * ```ts ignore
 * import { ConnectionGate } from "./gate.ts";
 * const inner = Deno.serve({ hostname: "127.0.0.1", port: 0 }, handler);
 * const gate = await ConnectionGate.start({ hostname: "0.0.0.0", port: 8400, innerPort: inner.addr.port });
 * // in the handler: const client = gate.clientOf(info.remoteAddr.port) ?? "unknown";
 * await gate.close();
 * ```
 * @module
 */
import type { TlsPair } from "./tls.ts";

/** Limits of the gate. */
export interface GateLimits {
  /** Open connections per client address (default 64). */
  perAddress: number;
  /** Open connections in all (default 2048). */
  total: number;
  /** Time to send the first request's headers (default 10 s). */
  headerTimeoutMs: number;
  /** Largest request head before the blank line (default 64 KiB). */
  maxHeaderBytes: number;
  /** Close after this long without traffic either way (default 15 min). */
  idleTimeoutMs: number;
}

/** Defaults of {@linkcode GateLimits}. */
export const DEFAULT_GATE_LIMITS: GateLimits = {
  perAddress: 64,
  total: 2048,
  headerTimeoutMs: 10_000,
  maxHeaderBytes: 64 * 1024,
  idleTimeoutMs: 15 * 60_000,
};

/** Options of {@linkcode ConnectionGate.start}. */
export interface GateOptions {
  /** Public interface. */
  hostname: string;
  /** Public port (0 = any free one). */
  port: number;
  /** Port of the HTTP server on 127.0.0.1. */
  innerPort: number;
  /** Serve TLS with this pair. */
  tls?: TlsPair;
  /** Limits (defaults above). */
  limits?: Partial<GateLimits>;
  /** Told about refused and timed-out connections. */
  onRefused?: (addr: string, why: string) => void;
}

/** Counters of the gate. */
export interface GateStats {
  open: number;
  refused: number;
  headerTimeouts: number;
}

const _CRLF2 = new Uint8Array([13, 10, 13, 10]);

function _indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = Math.max(0, from); i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** The gate; see the module documentation. */
export class ConnectionGate {
  /** Limits in force. */
  readonly limits: GateLimits;
  #listener: Deno.Listener;
  #opts: GateOptions;
  #perAddr = new Map<string, number>();
  #byInnerPort = new Map<number, string>();
  #conns = new Set<Deno.Conn>();
  #stats: GateStats = { open: 0, refused: 0, headerTimeouts: 0 };
  #closed = false;
  #accepting: Promise<void>;

  private constructor(listener: Deno.Listener, opts: GateOptions) {
    this.#listener = listener;
    this.#opts = opts;
    this.limits = { ...DEFAULT_GATE_LIMITS, ...opts.limits };
    this.#accepting = this.#accept(listener);
  }

  /**
   * Bind the public listener and start accepting.
   *
   * @example
   * ```ts ignore
   * const gate = await ConnectionGate.start({ hostname: "127.0.0.1", port: 0, innerPort });
   * ```
   */
  static start(opts: GateOptions): Promise<ConnectionGate> {
    return Promise.resolve(new ConnectionGate(ConnectionGate.#listen(opts, opts.port), opts));
  }

  static #listen(opts: GateOptions, port: number): Deno.Listener {
    const o = { hostname: opts.hostname, port, transport: "tcp" as const };
    return opts.tls ? Deno.listenTls({ ...o, ...opts.tls }) : Deno.listen(o);
  }

  /** The public address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** Counters so far. */
  get stats(): GateStats {
    return { ...this.#stats, open: this.#conns.size };
  }

  /**
   * The client address a connection to the inner server stands for (by its source port).
   *
   * @example
   * ```ts ignore
   * gate.clientOf((info.remoteAddr as Deno.NetAddr).port); // "203.0.113.9"
   * ```
   */
  clientOf(innerSourcePort: number): string | undefined {
    return this.#byInnerPort.get(innerSourcePort);
  }

  /**
   * Serve new connections with another TLS pair: the listener is rebound on the same port
   * (connections arriving during the swap are refused); open connections stay.
   *
   * @example
   * ```ts ignore
   * await gate.reload(await loadTlsPair(files));
   * ```
   */
  async reload(tls: TlsPair): Promise<void> {
    const port = this.addr.port;
    this.#listener.close();
    await this.#accepting;
    this.#opts = { ...this.#opts, tls };
    const deadline = performance.now() + 5000;
    while (true) {
      try {
        this.#listener = ConnectionGate.#listen(this.#opts, port);
        break;
      } catch (e) {
        if (performance.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    this.#accepting = this.#accept(this.#listener);
  }

  /** Stop accepting and close every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* closed */ }
    await this.#accepting;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    while (true) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // closed
      }
      const addr = (conn.remoteAddr as Deno.NetAddr).hostname;
      const mine = this.#perAddr.get(addr) ?? 0;
      if (mine >= this.limits.perAddress || this.#conns.size >= this.limits.total) {
        this.#stats.refused++;
        this.#opts.onRefused?.(
          addr,
          mine >= this.limits.perAddress ? "too many connections from it" : "gate full",
        );
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      this.#perAddr.set(addr, mine + 1);
      this.#conns.add(conn);
      this.#serve(conn, addr).catch(() => {}).finally(() => {
        this.#conns.delete(conn);
        const n = (this.#perAddr.get(addr) ?? 1) - 1;
        if (n <= 0) this.#perAddr.delete(addr);
        else this.#perAddr.set(addr, n);
      });
    }
  }

  async #serve(conn: Deno.Conn, addr: string): Promise<void> {
    const closeAll = (...cs: (Deno.Conn | undefined)[]) => {
      for (const c of cs) {
        try {
          c?.close();
        } catch { /* closed */ }
      }
    };
    let inner: Deno.Conn | undefined;
    let innerPort: number | undefined;
    let last = Date.now();
    const idle = setInterval(() => {
      if (Date.now() - last > this.limits.idleTimeoutMs) closeAll(conn, inner);
    }, Math.min(this.limits.idleTimeoutMs, 30_000));
    Deno.unrefTimer(idle);
    try {
      // 1. the first request's head, within the deadline
      const head = await this.#readHead(conn);
      if (!head) {
        this.#stats.headerTimeouts++;
        this.#opts.onRefused?.(addr, "request headers too slow or too large");
        return;
      }
      inner = await Deno.connect({ hostname: "127.0.0.1", port: this.#opts.innerPort });
      innerPort = (inner.localAddr as Deno.NetAddr).port;
      this.#byInnerPort.set(innerPort, addr);
      await _writeAll(inner, head);
      // 2. both ways until either side closes
      const up = (async () => {
        const buf = new Uint8Array(64 * 1024);
        while (true) {
          const n = await conn.read(buf);
          if (n === null) break;
          last = Date.now();
          await _writeAll(inner!, buf.subarray(0, n));
        }
        await inner!.closeWrite().catch(() => {});
      })();
      up.catch(() => {}); // ends with an error when the other side closed first
      const down = (async () => {
        const buf = new Uint8Array(64 * 1024);
        while (true) {
          const n = await inner!.read(buf);
          if (n === null) break;
          last = Date.now();
          await _writeAll(conn, buf.subarray(0, n));
        }
      })();
      await Promise.race([up, down]).catch(() => {});
      await down.catch(() => {});
    } finally {
      clearInterval(idle);
      if (innerPort !== undefined) this.#byInnerPort.delete(innerPort);
      closeAll(conn, inner);
    }
  }

  /** Bytes up to and including the first blank line (and whatever came with them). */
  async #readHead(conn: Deno.Conn): Promise<Uint8Array | undefined> {
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch { /* closed */ }
    }, this.limits.headerTimeoutMs);
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(16 * 1024);
    try {
      while (true) {
        let n: number | null;
        try {
          n = await conn.read(chunk);
        } catch {
          return undefined; // closed by the deadline, reset, or a failed TLS handshake
        }
        if (n === null) return undefined;
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        const from = buf.length - 3;
        buf = next;
        const end = _indexOf(buf, _CRLF2, from);
        if (end >= 0 && end + 4 <= this.limits.maxHeaderBytes) return buf;
        if (buf.length > this.limits.maxHeaderBytes) return undefined;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

async function _writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}
