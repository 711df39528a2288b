/**
 * `funcx-endpoint logs [NAME] [-f] [-n LINES]`: print (and follow) `NAME/endpoint.log`.
 *
 * @example
 * ```ts
 * import { logTail } from "./logs.ts";
 * console.log(logTail("/home/u/.funcx/default/endpoint.log", 20));
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { endpointName, requireConfigured } from "./common.ts";
import { type CliContext, CliError } from "./context.ts";

const _MAX_TAIL_BYTES = 1024 * 1024;

/**
 * The last `lines` lines of a file (from byte `fromOffset` on); "" when absent.
 *
 * @example
 * ```ts
 * logTail("/tmp/missing.log", 10); // ""
 * ```
 */
export function logTail(path: string, lines: number, fromOffset = 0, toOffset?: number): string {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch {
    return "";
  }
  try {
    const size = Math.min(f.statSync().size, toOffset ?? Infinity);
    const start = Math.max(fromOffset > size ? 0 : fromOffset, size - _MAX_TAIL_BYTES);
    f.seekSync(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let n = 0;
    while (n < buf.length) {
      const r = f.readSync(buf.subarray(n));
      if (r === null || r === 0) break;
      n += r;
    }
    const text = new TextDecoder().decode(buf.subarray(0, n));
    const all = text.split("\n");
    if (all.at(-1) === "") all.pop();
    return all.slice(Math.max(0, all.length - lines)).join("\n");
  } finally {
    f.close();
  }
}

function _stat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

async function _follow(path: string, start: Deno.FileInfo | undefined, signal: AbortSignal) {
  let offset = start?.size ?? 0;
  let ino: number | null = start?.ino ?? null;
  const out = Deno.stdout;
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, 250));
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(path);
    } catch {
      continue;
    }
    if (st.ino !== ino || st.size < offset) {
      // rotated or truncated: start from the beginning of the new file
      ino = st.ino;
      offset = 0;
    }
    if (st.size === offset) continue;
    const f = Deno.openSync(path, { read: true });
    try {
      f.seekSync(offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(Math.min(st.size - offset, 1024 * 1024));
      const n = f.readSync(buf) ?? 0;
      offset += n;
      await out.write(buf.subarray(0, n));
    } finally {
      f.close();
    }
  }
}

/**
 * Add the `logs` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint logs [NAME] [-f] [-n LINES]
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("logs")
    .description("print the endpoint's log (endpoint.log); -f keeps following it")
    .argument("[name]", "endpoint name", "default")
    .option("-f, --follow", "keep printing new lines until interrupted")
    .option("-n, --lines <count>", "number of lines to print first", "50")
    .action(async (nameArg, opts) => {
      const name = endpointName(nameArg);
      const p = requireConfigured(ctx.home, name);
      const lines = Number(opts.lines);
      if (!Number.isInteger(lines) || lines < 0) {
        throw new CliError(`--lines: "${opts.lines}" is not a whole number >= 0`);
      }
      // Everything up to `start` is the tail; -f continues exactly from there.
      const start = _stat(p.log);
      const tail = logTail(p.log, lines, 0, start?.size ?? 0);
      if (tail) console.log(tail);
      else if (!opts.follow) console.error(`No log yet at ${p.log}`);
      if (!opts.follow) return;
      const ac = new AbortController();
      const stop = () => ac.abort();
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      try {
        await _follow(p.log, start, ac.signal);
      } finally {
        Deno.removeSignalListener("SIGINT", stop);
        Deno.removeSignalListener("SIGTERM", stop);
      }
    });
}
