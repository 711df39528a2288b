/**
 * JSON-lines RPC between the scale benchmark (`scale.ts`) and the child processes it
 * measures on their own (the interchange host, the simulated managers, the simulated
 * endpoints): one request per stdin line `{id, cmd, args}`, one reply per stdout line
 * `{id, ok, result | error}`. Anything else a child prints goes to stderr.
 *
 * @example
 * ```ts
 * import { ChildRpc, serveRpc } from "./_rpc.ts";
 * // child:  await serveRpc({ ping: () => "pong" });
 * // parent:
 * const c = ChildRpc.spawn(["run", "-A", "child.ts"]);
 * await c.call("ping"); // "pong"
 * await c.close();
 * ```
 * @module
 */

/** Lines of a byte stream (without their newline). */
async function* _lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

type _Handler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

/**
 * Serve `handlers` on stdin/stdout until stdin closes or a handler named `exit` returns.
 *
 * @example
 * ```ts
 * await serveRpc({ add: (a) => (a.x as number) + 1 });
 * ```
 */
export async function serveRpc(handlers: Record<string, _Handler>): Promise<void> {
  const enc = new TextEncoder();
  const out = Deno.stdout.writable.getWriter();
  for await (const line of _lines(Deno.stdin.readable)) {
    if (!line.trim()) continue;
    const { id, cmd, args } = JSON.parse(line) as {
      id: number;
      cmd: string;
      args: Record<string, unknown>;
    };
    const h = handlers[cmd];
    // requests run concurrently: a long `run` does not block a `status`
    (async () => {
      let reply;
      try {
        if (!h) throw new Error(`unknown command ${cmd}`);
        reply = { id, ok: true, result: (await h(args ?? {})) ?? null };
      } catch (e) {
        reply = { id, ok: false, error: (e as Error).stack ?? String(e) };
      }
      await out.write(enc.encode(JSON.stringify(reply) + "\n"));
      if (cmd === "exit") Deno.exit(0);
    })();
  }
}

/** The parent's end of a child process serving {@linkcode serveRpc}. */
export class ChildRpc {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #exited: Promise<Deno.CommandStatus>;
  #stderr: string[] = [];
  /** Process id of the child. */
  readonly pid: number;

  private constructor(child: Deno.ChildProcess, readonly label: string) {
    this.#child = child;
    this.pid = child.pid;
    this.#writer = child.stdin.getWriter();
    this.#exited = child.status;
    void this.#read();
    void this.#readErr();
    this.#exited.then((s) => {
      for (const p of this.#pending.values()) {
        p.reject(
          new Error(
            `${label} exited (code ${s.code}) mid-request: ${this.#stderr.join("").slice(-2000)}`,
          ),
        );
      }
      this.#pending.clear();
    });
  }

  /**
   * Start `deno <args>` (with `ulimit -n` raised to the hard limit for many connections).
   *
   * @example
   * ```ts
   * ChildRpc.spawn(["run", "-A", "scripts/bench/scale_interchange.ts"], "interchange");
   * ```
   */
  static spawn(args: string[], label = "child"): ChildRpc {
    const child = new Deno.Command("bash", {
      args: [
        "-c",
        'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
        "bash",
        Deno.execPath(),
        ...args,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new ChildRpc(child, label);
  }

  async #read() {
    for await (const line of _lines(this.#child.stdout)) {
      let msg: { id: number; ok: boolean; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        this.#stderr.push(line + "\n");
        continue;
      }
      const p = this.#pending.get(msg.id);
      if (!p) continue;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${this.label}: ${msg.error}`));
    }
  }

  async #readErr() {
    for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      this.#stderr.push(chunk);
      if (this.#stderr.length > 200) this.#stderr.splice(0, 100);
      if (Deno.env.get("FX_BENCH_VERBOSE")) Deno.stderr.writeSync(new TextEncoder().encode(chunk));
    }
  }

  /** Call `cmd` in the child and wait for its reply. */
  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    const p = new Promise<T>((resolve, reject) =>
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
    );
    this.#writer.write(new TextEncoder().encode(JSON.stringify({ id, cmd, args }) + "\n"))
      .catch(() => {});
    return p;
  }

  /** Ask the child to exit (`exit` command), then kill it if it has not within `ms`. */
  async close(ms = 30_000): Promise<void> {
    this.call("exit").catch(() => {});
    let t: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((r) =>
      t = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* gone */ }
        r();
      }, ms)
    );
    await Promise.race([this.#exited, killed]);
    await this.#exited;
    clearTimeout(t);
    await this.#writer.close().catch(() => {});
  }
}
