/**
 * Test helper: a results-WebSocket client written like the funcX 0.3.x SDK's
 * (`WebSocketPollingTask` + `FuncXExecutor`'s poller): Python `websockets` (Debian's
 * python3-websockets, run by `/usr/bin/python3`), `Authorization: Bearer` in the handshake,
 * task group ids sent as text, each JSON message decoded as the SDK does (`result` through
 * the `00` deserializer, `exception` through `dill.loads(wrapper.e_value)`, else `reason`).
 * Unlike 0.3.x it keeps retrying when the service is down (the SDK reconnects once), so a
 * test can restart the service under it.
 *
 * Driven over stdin (`close` / `open` / `quit` lines); it prints one JSON line per event:
 * `{"ev": "open"}`, `{"ev": "closed", "by": "client"|"service"}`, `{"ev": "result",
 * "task_id", "value"}`, `{"ev": "error", "task_id", "type", "message"}`,
 * `{"ev": "refused", "status"}` (handshake refused).
 *
 * @example
 * ```ts ignore
 * import { WsClient } from "./_ws_client.ts";
 * const c = WsClient.start("ws://127.0.0.1:8400/ws/v2/", token, [groupId]);
 * await c.waitFor((evs) => evs.filter((e) => e.ev === "result").length === 10, "10 results");
 * await c.quit();
 * ```
 * @module
 */
import { CLIENT_PYTHON, UPSTREAM_CLIENT_PRELUDE } from "./_upstream_client.ts";

const CLIENT = UPSTREAM_CLIENT_PRELUDE + String.raw`
import asyncio, threading
import websockets.client
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

URI, TOKEN, GROUPS = sys.argv[1], sys.argv[2], sys.argv[3].split(",")

def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()

async def main():
    loop = asyncio.get_running_loop()
    commands = asyncio.Queue()
    def reader():
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")
    threading.Thread(target=reader, daemon=True).start()
    cmd_task = asyncio.ensure_future(commands.get())
    want_open = True
    while True:
        if not want_open:
            cmd = await cmd_task
            cmd_task = asyncio.ensure_future(commands.get())
            if cmd == "quit":
                return
            want_open = cmd == "open"
            continue
        try:
            ws = await websockets.client.connect(
                URI, extra_headers=[("Authorization", "Bearer " + TOKEN)],
                max_size=11 * 1024 * 1024)
        except InvalidStatusCode as e:
            emit(ev="refused", status=e.status_code)
            if e.status_code in (401, 403, 404):
                return
            await asyncio.sleep(0.1)
            continue
        except OSError:
            await asyncio.sleep(0.1)  # the service is (re)starting
            continue
        emit(ev="open")
        for g in GROUPS:
            await ws.send(g)
        while True:
            recv_task = asyncio.ensure_future(ws.recv())
            done, _ = await asyncio.wait({recv_task, cmd_task},
                                         return_when=asyncio.FIRST_COMPLETED)
            if recv_task in done:
                try:
                    raw = recv_task.result()
                except ConnectionClosed:
                    emit(ev="closed", by="service")
                    break
                data = json.loads(raw)
                if data["result"]:
                    emit(ev="result", task_id=data["task_id"],
                         value=sdk_deserialize(data["result"]))
                elif data["exception"]:
                    e = dill.loads(sdk_deserialize(data["exception"]).e_value)
                    emit(ev="error", task_id=data["task_id"], type=type(e).__name__,
                         message=str(e))
                else:
                    emit(ev="error", task_id=data["task_id"], type="reason",
                         message=data["reason"])
                continue
            recv_task.cancel()
            cmd = cmd_task.result()
            cmd_task = asyncio.ensure_future(commands.get())
            if cmd.startswith("sub "):
                await ws.send(cmd[4:])
            elif cmd in ("close", "quit"):
                await ws.close()
                emit(ev="closed", by="client")
                if cmd == "quit":
                    return
                want_open = False
                break

asyncio.run(main())
`;

/** One line the client printed. */
export interface WsEvent {
  ev: "open" | "closed" | "result" | "error" | "refused";
  by?: string;
  task_id?: string;
  value?: unknown;
  type?: string;
  message?: string;
  status?: number;
}

/** A running client process. */
export class WsClient {
  readonly events: WsEvent[] = [];
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #stderr: Promise<string>;
  #done: Promise<void>;

  private constructor(uri: string, token: string, groups: string[]) {
    const child = new Deno.Command(CLIENT_PYTHON, {
      args: ["-c", CLIENT, uri, token, groups.join(",")],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#stderr = new Response(this.#child.stderr).text();
    this.#done = (async () => {
      let buf = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.events.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
        }
      }
    })();
  }

  /** Start a client subscribed to `groups` on `uri`. */
  static start(uri: string, token: string, groups: string[]): WsClient {
    return new WsClient(uri, token, groups);
  }

  /** Results and errors received, by task id (a task seen twice counts twice). */
  received(): Map<string, WsEvent[]> {
    const m = new Map<string, WsEvent[]>();
    for (const e of this.events) {
      if (e.ev !== "result" && e.ev !== "error") continue;
      const l = m.get(e.task_id!) ?? [];
      l.push(e);
      m.set(e.task_id!, l);
    }
    return m;
  }

  /** Send a command line (`close`, `open`, `sub <group id>`). */
  async command(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Wait until `pred(events)` holds (polling), or fail with the events and stderr. */
  async waitFor(pred: (evs: WsEvent[]) => boolean, what: string, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred(this.events)) {
      if (Date.now() > end) {
        throw new Error(
          `ws client: timed out waiting for ${what}; last events ${
            JSON.stringify(this.events.slice(-5))
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Ask the client to close and exit; kill it if it does not; returns its stderr. */
  async quit(): Promise<string> {
    await this.command("quit").catch(() => {});
    await this.#writer.close().catch(() => {});
    const t = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    await this.#child.status;
    clearTimeout(t);
    await this.#done;
    return await this.#stderr;
  }
}
