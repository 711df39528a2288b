/**
 * One ZMTP 3.1 connection over a Deno TCP stream: greeting, the mechanism's handshake,
 * then multipart messages both ways, PING/PONG, a message size limit, and a write queue
 * whose length the socket uses for its high-water mark. Sockets (`socket.ts`) own
 * connections; nothing here knows about routing.
 *
 * @example
 * ```ts ignore
 * import { Connection } from "./connection.ts";
 * const conn = new Connection(tcp, mechanism, options, hooks);
 * conn.start();
 * conn.write([new TextEncoder().encode("hello")]);
 * ```
 * @module
 */
import {
  checkSignature,
  decodeCommand,
  encodeCommand,
  encodeFrame,
  encodeGreeting,
  FrameDecoder,
  frameHeaderSize,
  GREETING_SIZE,
  parseGreeting,
  writeFrameHeader,
  ZmtpProtocolError,
} from "./codec.ts";
import { errorReason, HandshakeError, type Mechanism } from "./mechanism.ts";

/** Limits and timers of a connection. */
export interface ConnectionOptions {
  /** Largest message (sum of its parts) accepted from the peer, bytes. */
  maxMessageSize: number;
  /** A handshake not done within this many ms fails ("timeout"). */
  handshakeTimeout: number;
}

/** What a connection tells its socket. */
export interface ConnectionHooks {
  /** The handshake is done; messages may flow. */
  ready(conn: Connection): void;
  /** A whole message; a returned promise pauses reading from this peer until it settles. */
  message(conn: Connection, frames: Uint8Array[]): void | Promise<void>;
  /** Some queued writes reached the kernel (room below the high-water mark). */
  drained(conn: Connection): void;
  /** Closed (once). `handshake` is set when it never became ready. */
  closed(conn: Connection, reason: string, handshake?: HandshakeError): void;
}

let _nextId = 1;
const _PING = "PING";
const _EMPTY = new Uint8Array(0);
/**
 * Most parts in one message: empty parts cost 2 bytes on the wire and nothing against
 * `maxMessageSize`, so without a cap a peer could grow one message without bound.
 */
const _MAX_PARTS = 65_536;

/**
 * Read buffer sizes: a connection starts small (most peers of a ROUTER with thousands of
 * them send little) and switches to the large buffer the first time a read fills it.
 */
const _READ_MIN = 4 * 1024;
const _READ_MAX = 64 * 1024;

/** The largest write: staged parts are sealed into a write once they reach this size. */
const _BATCH = 256 * 1024;
/** Initial size of a staging buffer. */
const _STAGE = 16 * 1024;
/** Parts up to this size are copied into the staging buffer; larger ones are written as is. */
const _COPY_MAX = 64 * 1024;

/** A ZMTP connection (see the module doc). */
export class Connection {
  /** Unique in this process. */
  readonly id = _nextId++;
  /** The peer's `host:port`. */
  readonly address: string;
  /** The mechanism (its peer metadata and key are set once ready). */
  readonly mechanism: Mechanism;
  /** Monotonic ms of the last bytes received. */
  lastReceived: number;
  /** Monotonic ms of the last bytes queued for the peer. */
  lastSent: number;
  /** The peer's PING time-to-live in ms (0: none asked). */
  peerTtl = 0;
  #tcp: Deno.Conn;
  #opts: ConnectionOptions;
  #hooks: ConnectionHooks;
  #clock: () => number;
  #state: "greeting" | "handshake" | "ready" | "closed" = "greeting";
  #decoder: FrameDecoder;
  /** Small parts are copied straight into this staging buffer (no allocation per part). */
  /** Allocated by the first write after each seal: an idle connection holds none. */
  #stage = _EMPTY;
  #stageLen = 0;
  /** Messages that end in the staging buffer. */
  #stageMsgs = 0;
  /** Sealed writes, in order: the staging buffer's bytes, or a large part uncopied. */
  #batches: { bytes: Uint8Array; msgs: number }[] = [];
  /** Messages queued and not yet handed to the kernel. */
  #queuedMsgs = 0;
  #writing = false;
  #flushScheduled = false;
  #parts: Uint8Array[] = [];
  #partsSize = 0;
  #handshakeTimer?: ReturnType<typeof setTimeout>;
  #drainWaiters: (() => void)[] = [];
  #closedPromise: Promise<void>;
  #resolveClosed!: () => void;
  #handshakeDone = false;
  #readPaused = false;

  constructor(
    tcp: Deno.Conn,
    mechanism: Mechanism,
    opts: ConnectionOptions,
    hooks: ConnectionHooks,
    clock: () => number = () => performance.now(),
  ) {
    this.#tcp = tcp;
    this.mechanism = mechanism;
    this.#opts = opts;
    this.#hooks = hooks;
    this.#clock = clock;
    const a = tcp.remoteAddr as Deno.NetAddr;
    this.address = a.hostname?.includes(":")
      ? `[${a.hostname}]:${a.port}`
      : `${a.hostname}:${a.port}`;
    this.#decoder = new FrameDecoder(64 * 1024);
    this.lastReceived = this.lastSent = clock();
    this.#closedPromise = new Promise((r) => this.#resolveClosed = r);
  }

  /** Is reading paused by the socket (back-pressure: a full receive queue or a busy handler)? */
  get readPaused(): boolean {
    return this.#readPaused;
  }

  /** Is the handshake done and the connection open? */
  get ready(): boolean {
    return this.#state === "ready";
  }

  /** Has it closed? */
  get isClosed(): boolean {
    return this.#state === "closed";
  }

  /** Messages waiting to be handed to the kernel. */
  get queued(): number {
    return this.#queuedMsgs;
  }

  /** Resolves once closed. */
  get done(): Promise<void> {
    return this.#closedPromise;
  }

  /** Send the greeting and run the read loop (returns at once). */
  start(): void {
    this.#handshakeTimer = setTimeout(() => {
      this.#fail(
        new HandshakeError(
          "timeout",
          `no complete handshake within ${this.#opts.handshakeTimeout} ms`,
        ),
      );
    }, this.#opts.handshakeTimeout);
    this.#queueRaw(encodeGreeting(this.mechanism.name, this.mechanism.asServer));
    void this.#readLoop();
  }

  /**
   * Queue one multipart message. The caller checks {@linkcode Connection.ready} and the
   * high-water mark; this never refuses.
   */
  write(frames: Uint8Array[]): void {
    if (this.#state !== "ready") return;
    const last = frames.length - 1;
    for (let i = 0; i <= last; i++) {
      const end = i === last ? 1 : 0;
      if (this.mechanism.plain) {
        const body = frames[i];
        const head = frameHeaderSize(body.length);
        if (body.length <= _COPY_MAX) {
          const at = this.#room(head + body.length);
          writeFrameHeader(this.#stage, at, body.length, i < last, false);
          this.#stage.set(body, at + head);
          this.#stageLen = at + head + body.length;
          this.#stageMsgs += end;
        } else {
          const h = new Uint8Array(head);
          writeFrameHeader(h, 0, body.length, i < last, false);
          this.#sealStage();
          this.#batches.push({ bytes: h, msgs: 0 }, { bytes: body, msgs: end });
        }
      } else this.#stageBytes(this.mechanism.encode(frames[i], i < last, false), end);
    }
    this.#queuedMsgs++;
    this.lastSent = this.#clock();
    this.#scheduleFlush();
  }

  /** Make room for `n` bytes in the staging buffer; returns where they go. */
  #room(n: number): number {
    if (this.#stageLen + n > this.#stage.length) {
      if (this.#stageLen > 0 && this.#stageLen + n > _BATCH) this.#sealStage();
      else {
        const bigger = new Uint8Array(
          Math.max(this.#stage.length * 2, this.#stageLen + n, _STAGE),
        );
        bigger.set(this.#stage.subarray(0, this.#stageLen));
        this.#stage = bigger;
      }
    }
    if (this.#stageLen + n > this.#stage.length) this.#stage = new Uint8Array(Math.max(_STAGE, n));
    return this.#stageLen;
  }

  /** Stage already-encoded bytes (copied when small, else a batch of their own). */
  #stageBytes(bytes: Uint8Array, msgs: number) {
    if (bytes.length <= _COPY_MAX) {
      const at = this.#room(bytes.length);
      this.#stage.set(bytes, at);
      this.#stageLen = at + bytes.length;
      this.#stageMsgs += msgs;
    } else {
      this.#sealStage();
      this.#batches.push({ bytes, msgs });
    }
  }

  /** Move the staged bytes to the batches (a new staging buffer takes their place). */
  #sealStage() {
    if (this.#stageLen === 0) return;
    this.#batches.push({ bytes: this.#stage.subarray(0, this.#stageLen), msgs: this.#stageMsgs });
    this.#stage = _EMPTY;
    this.#stageLen = 0;
    this.#stageMsgs = 0;
  }

  /** Send a PING (ZMTP 3.1) asking the peer to consider us gone after `ttlMs`. */
  ping(ttlMs: number): void {
    if (this.#state !== "ready") return;
    const ttl = Math.min(0xffff, Math.round(ttlMs / 100));
    this.#command(encodeCommand(_PING, new Uint8Array([ttl >> 8, ttl & 0xff])));
  }

  /** Resolves when the write queue is empty (or the connection closed). */
  flushed(): Promise<void> {
    if (this.#idle() || this.#state === "closed") {
      return Promise.resolve();
    }
    return new Promise((r) => this.#drainWaiters.push(r));
  }

  /** Close now (queued writes are dropped); `reason` goes to the socket's events. */
  close(reason = "closed"): void {
    if (this.isClosed) return;
    const wasReady = this.#state === "ready";
    this.#state = "closed";
    clearTimeout(this.#handshakeTimer);
    try {
      this.#tcp.close();
    } catch { /* already closed */ }
    this.#batches = [];
    this.#stageLen = 0;
    this.#stageMsgs = 0;
    this.#queuedMsgs = 0;
    for (const w of this.#drainWaiters.splice(0)) w();
    this.#resolveClosed();
    if (wasReady || this.#handshakeDone) this.#hooks.closed(this, reason);
    else {
      this.#hooks.closed(
        this,
        reason,
        this.#pendingFailure ??
          new HandshakeError("closed", `connection closed during the handshake (${reason})`),
      );
    }
  }

  #pendingFailure?: HandshakeError;

  #fail(e: HandshakeError) {
    this.#pendingFailure ??= e;
    this.close(e.message);
  }

  // ------------------------------------------------------------------ writing

  #command(body: Uint8Array) {
    const wire = this.mechanism.plain || this.#state !== "ready"
      ? encodeFrame(body, false, true)
      : this.mechanism.encode(body, false, true);
    this.#queueRaw(wire);
  }

  #queueRaw(bytes: Uint8Array) {
    this.#stageBytes(bytes, 0);
    this.lastSent = this.#clock();
    this.#scheduleFlush();
  }

  #scheduleFlush() {
    if (this.#flushScheduled || this.#writing) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      void this.#flush();
    });
  }

  #idle(): boolean {
    return !this.#writing && this.#batches.length === 0 && this.#stageLen === 0;
  }

  async #flush() {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#state !== "closed") {
        if (this.#batches.length === 0) this.#sealStage();
        const batch = this.#batches.shift();
        if (!batch) break;
        const buf = batch.bytes;
        let off = 0;
        while (off < buf.length) off += await this.#tcp.write(off === 0 ? buf : buf.subarray(off));
        if (batch.msgs > 0) {
          this.#queuedMsgs -= batch.msgs;
          this.#hooks.drained(this);
        }
      }
    } catch (e) {
      this.close(`write failed: ${(e as Error).message}`);
    } finally {
      this.#writing = false;
    }
    if (this.#idle()) { for (const w of this.#drainWaiters.splice(0)) w(); }
    else if (this.#state !== "closed") this.#scheduleFlush();
  }

  // ------------------------------------------------------------------ reading

  async #readLoop() {
    let buf = new Uint8Array(_READ_MIN);
    let grow = false;
    let greeting: Uint8Array | undefined = new Uint8Array(GREETING_SIZE);
    let greetingLen = 0;
    try {
      while (this.#state !== "closed") {
        // (the previous chunk was fully consumed: frames are copies, never views of buf)
        if (grow) buf = new Uint8Array(_READ_MAX);
        const n = await this.#tcp.read(buf);
        if (n === null) {
          this.#closedByPeer();
          return;
        }
        grow = n === buf.length && buf.length < _READ_MAX;
        this.lastReceived = this.#clock();
        let chunk = buf.subarray(0, n);
        if (greeting) {
          const take = Math.min(GREETING_SIZE - greetingLen, chunk.length);
          greeting.set(chunk.subarray(0, take), greetingLen);
          const before = greetingLen;
          greetingLen += take;
          chunk = chunk.subarray(take);
          if (before < 10 && greetingLen >= 10) checkSignature(greeting);
          if (greetingLen < GREETING_SIZE) continue;
          this.#onGreeting(greeting);
          greeting = undefined;
          if (this.isClosed) return;
        }
        if (chunk.length === 0) continue;
        // a header over the handshake's limit right after its last command is held back
        // by the decoder until that command raised the limit: push again while held
        for (let frames = this.#decoder.push(chunk);; frames = this.#decoder.push(_EMPTY)) {
          for (const f of frames) {
            if (this.isClosed) return;
            if (this.#state === "handshake") {
              if (!f.command) {
                throw new ZmtpProtocolError("a message frame before the handshake ended");
              }
              await this.#onHandshakeCommand(f.body);
              continue;
            }
            let body = f.body, more = f.more, command = f.command;
            if (!this.mechanism.plain) ({ body, more, command } = this.mechanism.decode(f.body));
            if (command) {
              this.#onCommand(body);
              continue;
            }
            this.#partsSize += body.length;
            if (this.#partsSize > this.#opts.maxMessageSize) {
              throw new ZmtpProtocolError(
                `a message of more than ${this.#opts.maxMessageSize} bytes (maxMessageSize)`,
              );
            }
            if (this.#parts.length >= _MAX_PARTS) {
              throw new ZmtpProtocolError(`a message of more than ${_MAX_PARTS} parts`);
            }
            this.#parts.push(body);
            if (more) continue;
            const parts = this.#parts;
            this.#parts = [];
            this.#partsSize = 0;
            const r = this.#hooks.message(this, parts);
            if (r) {
              this.#readPaused = true;
              await r;
              this.#readPaused = false;
              // the peer's silence while we were not reading was ours, not its
              this.lastReceived = this.#clock();
            }
          }
          if (!this.#decoder.held) break;
        }
      }
    } catch (e) {
      if (this.isClosed) return;
      if (e instanceof HandshakeError) this.#fail(e);
      else if (e instanceof ZmtpProtocolError) {
        if (this.#state === "ready") this.close(`protocol error: ${e.message}`);
        else this.#fail(new HandshakeError("protocol", e.message));
      } else this.close(`read failed: ${(e as Error).message}`);
    }
  }

  #closedByPeer() {
    if (this.#state === "ready") return this.close("closed by the peer");
    if (this.#state === "greeting") {
      // libzmq reads our whole greeting and hangs up, without finishing its own, when our
      // mechanism is not its mechanism (the only greeting it refuses from a ZMTP 3.1 peer)
      return this.#fail(
        new HandshakeError(
          "mechanism-mismatch",
          `the peer closed the connection on our greeting: it does not accept the ${this.mechanism.name} security mechanism (mechanism mismatch)`,
        ),
      );
    }
    const m = this.mechanism as Mechanism & { closedError?: () => HandshakeError };
    if (this.#state === "handshake" && m.closedError) return this.#fail(m.closedError());
    this.#fail(new HandshakeError("closed", "the peer closed the connection during the handshake"));
  }

  #onGreeting(g: Uint8Array) {
    const peer = parseGreeting(g);
    if (peer.mechanism !== this.mechanism.name) {
      throw new HandshakeError(
        "mechanism-mismatch",
        `security mechanism mismatch: the peer uses ${
          peer.mechanism || "(none)"
        }, we use ${this.mechanism.name}`,
      );
    }
    // the as-server bit is not checked: libzmq does not set it reliably (4.3 sends 0 from a
    // CURVE server); each side's mechanism knows its role
    this.#state = "handshake";
    for (const c of this.mechanism.start()) this.#queueRaw(encodeFrame(c, false, true));
  }

  async #onHandshakeCommand(body: Uint8Array) {
    const step = await this.mechanism.onCommand(body);
    if (this.isClosed) return;
    for (const c of step.send) this.#queueRaw(encodeFrame(c, false, true));
    if (step.fail) {
      // let the ERROR reach the peer before closing
      await this.flushed();
      return this.#fail(step.fail);
    }
    if (step.done) {
      clearTimeout(this.#handshakeTimer);
      this.#handshakeDone = true;
      this.#state = "ready";
      this.#decoder.maxFrame = this.#opts.maxMessageSize + 64;
      this.#hooks.ready(this);
    }
  }

  #onCommand(body: Uint8Array) {
    const cmd = decodeCommand(body);
    if (cmd.name === _PING) {
      if (cmd.data.length < 2) throw new ZmtpProtocolError("malformed PING");
      this.peerTtl = ((cmd.data[0] << 8) | cmd.data[1]) * 100;
      const context = cmd.data.subarray(2, 18);
      this.#command(encodeCommand("PONG", context));
    } else if (cmd.name === "ERROR") {
      this.close(`the peer sent ERROR: ${errorReason(cmd.data)}`);
    }
    // PONG and unknown commands: nothing to do (the bytes already count as traffic)
  }
}
