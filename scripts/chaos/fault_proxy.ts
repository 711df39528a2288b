/**
 * A TCP fault proxy on loopback, for the chaos run and the tests: it listens on one address,
 * connects every accepted client to a target, and copies bytes both ways until told to
 * misbehave. Faults act on the connections open at that moment and on the ones accepted while
 * the fault lasts:
 *
 * - `stall`: no bytes in either direction (both peers keep their sockets open); bytes held back
 *   are delivered when the fault is cleared — a link that goes quiet and comes back;
 * - `half-open`: for the connections open when it starts, the target side is closed and the
 *   client side is kept open, whatever the client sends is discarded — the client must notice
 *   by itself (heartbeats) that nobody is there any more; new connections work;
 * - `reset`: every connection is cut after `afterBytes` more bytes of the next chunk in the
 *   chosen direction, i.e. in the middle of a message; both sides are closed at once (the
 *   kernel sends RST when unread bytes are pending, FIN otherwise — Deno has no SO_LINGER);
 * - `drip`: at most `bytesPerTick` bytes per `tickMs` in each direction;
 * - `partition`: bytes are dropped both ways and new connections are accepted but not
 *   connected; when it heals ({@linkcode FaultProxy.clear}, or after `healAfterMs`) the
 *   connections that lived through it are closed (TCP would have given up on them) and new
 *   ones work again.
 *
 * @example
 * ```ts
 * import { FaultProxy } from "./fault_proxy.ts";
 * const proxy = FaultProxy.start({ target: { hostname: "127.0.0.1", port: 8400 } });
 * proxy.fault({ kind: "stall" });
 * // ... the peers see no bytes ...
 * proxy.clear();
 * await proxy.close();
 * ```
 * @module
 */

/** A fault of the proxy; see the module doc. */
export type Fault =
  | { kind: "stall" }
  | { kind: "half-open" }
  | { kind: "reset"; afterBytes?: number; direction?: "up" | "down" }
  | { kind: "drip"; bytesPerTick: number; tickMs: number }
  | { kind: "partition"; healAfterMs?: number };

/** Options of {@linkcode FaultProxy.start}. */
export interface FaultProxyOptions {
  /** Where the proxy connects to. */
  target: { hostname: string; port: number };
  /** Where it listens (default 127.0.0.1, a free port). */
  listen?: { hostname?: string; port?: number };
}

/** Counters of what the proxy did (for reports and tests). */
export interface FaultProxyStats {
  accepted: number;
  /** Connections cut by `reset`, `half-open` or the end of a `partition`. */
  cut: number;
  /** Bytes forwarded client → target and target → client. */
  up: number;
  down: number;
  /** Bytes dropped by `half-open` and `partition`. */
  dropped: number;
}

interface _Pair {
  client: Deno.TcpConn;
  target: Deno.TcpConn | null;
  closed: boolean;
  /** Lived through a partition: cut when it heals. */
  partitioned: boolean;
}

const _CHUNK = 64 * 1024;

/** A running fault proxy. */
export class FaultProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #pairs = new Set<_Pair>();
  #fault: Fault | null = null;
  /** Resolved (and replaced) whenever the fault changes: pumps waiting on a stall wake up. */
  #changed = Promise.withResolvers<void>();
  #healTimer: ReturnType<typeof setTimeout> | undefined;
  #closing = false;
  #accepting: Promise<void>;
  readonly stats: FaultProxyStats = { accepted: 0, cut: 0, up: 0, down: 0, dropped: 0 };

  private constructor(listener: Deno.TcpListener, target: { hostname: string; port: number }) {
    this.#listener = listener;
    this.#target = target;
    this.#accepting = this.#acceptLoop();
  }

  /**
   * Listen and start forwarding (no fault).
   *
   * @example
   * ```ts
   * const p = FaultProxy.start({ target: { hostname: "127.0.0.1", port: 5000 } });
   * console.log(p.port);
   * ```
   */
  static start(opts: FaultProxyOptions): FaultProxy {
    const listener = Deno.listen({
      hostname: opts.listen?.hostname ?? "127.0.0.1",
      port: opts.listen?.port ?? 0,
    });
    return new FaultProxy(listener, opts.target);
  }

  /** The port the proxy listens on. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Connections open now. */
  get open(): number {
    return this.#pairs.size;
  }

  /** The current fault (null: forwarding). */
  get current(): Fault | null {
    return this.#fault;
  }

  /**
   * Start a fault (replacing the current one).
   *
   * @example
   * ```ts ignore
   * proxy.fault({ kind: "partition", healAfterMs: 5000 });
   * ```
   */
  fault(f: Fault): void {
    this.#endFault();
    this.#fault = f;
    if (f.kind === "half-open") {
      for (const p of this.#pairs) this.#halfOpen(p);
    } else if (f.kind === "partition") {
      for (const p of this.#pairs) p.partitioned = true;
      if (f.healAfterMs !== undefined) {
        this.#healTimer = setTimeout(() => this.clear(), f.healAfterMs);
      }
    }
    this.#wake();
  }

  /**
   * End the fault: forward normally again (a partition heals: the connections that lived
   * through it are cut, a half-open connection stays a black hole until its client closes it).
   *
   * @example
   * ```ts ignore
   * proxy.clear();
   * ```
   */
  clear(): void {
    this.#endFault();
    this.#fault = null;
    this.#wake();
  }

  /**
   * Cut every open connection now.
   *
   * @example
   * ```ts ignore
   * proxy.cutAll();
   * ```
   */
  cutAll(): void {
    for (const p of [...this.#pairs]) this.#cut(p);
  }

  /**
   * Stop listening and close every connection.
   *
   * @example
   * ```ts ignore
   * await proxy.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#endFault();
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    this.cutAll();
    this.#wake();
    await this.#accepting;
  }

  #endFault(): void {
    clearTimeout(this.#healTimer);
    this.#healTimer = undefined;
    if (this.#fault?.kind === "partition") {
      for (const p of [...this.#pairs]) if (p.partitioned) this.#cut(p);
    }
  }

  #wake(): void {
    const old = this.#changed;
    this.#changed = Promise.withResolvers<void>();
    old.resolve();
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closing) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.stats.accepted++;
      const pair: _Pair = { client, target: null, closed: false, partitioned: false };
      this.#pairs.add(pair);
      this.#serve(pair).catch(() => this.#cut(pair));
    }
  }

  async #serve(pair: _Pair): Promise<void> {
    // while partitioned, a new connection waits (its SYN would go nowhere)
    while (this.#fault?.kind === "partition" && !pair.closed) await this.#changed.promise;
    if (pair.closed) return;
    try {
      pair.target = await Deno.connect(this.#target);
    } catch {
      this.#cut(pair); // target down: the client sees the connection close
      return;
    }
    if (pair.closed) {
      try {
        pair.target.close();
      } catch { /* closed */ }
      return;
    }
    await Promise.all([
      this.#pump(pair, pair.client, () => pair.target, "up"),
      this.#pump(pair, pair.target, () => pair.client, "down"),
    ]);
    this.#cut(pair);
  }

  /** Copy `from` → `to()` under the current fault until either side ends. */
  async #pump(
    pair: _Pair,
    from: Deno.TcpConn,
    to: () => Deno.TcpConn | null,
    dir: "up" | "down",
  ): Promise<void> {
    const buf = new Uint8Array(_CHUNK);
    while (!pair.closed) {
      // stall: do not even read, so the sender's buffers fill up as on a dead link
      while (this.#fault?.kind === "stall" && !pair.closed) await this.#changed.promise;
      if (pair.closed) return;
      let n: number | null;
      try {
        n = await from.read(buf);
      } catch {
        return;
      }
      if (n === null) return;
      let data = buf.subarray(0, n);
      // a stall that began while this read was waiting holds the bytes back
      while (this.#fault?.kind === "stall" && !pair.closed) await this.#changed.promise;
      const f = this.#fault;
      if (pair.closed) return;
      if (f?.kind === "partition" || !to()) {
        this.stats.dropped += n;
        continue;
      }
      if (f?.kind === "reset" && (f.direction ?? dir) === dir) {
        const keep = Math.min(f.afterBytes ?? Math.floor(n / 2), n - 1);
        if (keep > 0 && !await this.#write(to()!, data.subarray(0, keep), dir)) return;
        this.#cut(pair);
        return;
      }
      if (f?.kind === "drip") {
        while (data.length > 0 && !pair.closed) {
          const piece = data.subarray(0, Math.max(1, f.bytesPerTick));
          if (!await this.#write(to()!, piece, dir)) return;
          data = data.subarray(piece.length);
          await new Promise((r) => setTimeout(r, f.tickMs));
        }
        continue;
      }
      if (!await this.#write(to()!, data, dir)) return;
    }
  }

  async #write(to: Deno.TcpConn, data: Uint8Array, dir: "up" | "down"): Promise<boolean> {
    try {
      let off = 0;
      while (off < data.length) off += await to.write(data.subarray(off));
      this.stats[dir] += data.length;
      return true;
    } catch {
      return false;
    }
  }

  /** Close the target side only; the client's bytes go nowhere from now on. */
  #halfOpen(pair: _Pair): void {
    if (!pair.target) return;
    try {
      pair.target.close();
    } catch { /* closed */ }
    pair.target = null;
    this.stats.cut++;
  }

  #cut(pair: _Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    this.#pairs.delete(pair);
    this.stats.cut++;
    for (const c of [pair.client, pair.target]) {
      try {
        c?.close();
      } catch { /* closed */ }
    }
    this.#wake();
  }
}
