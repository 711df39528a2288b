/**
 * The end of a job's output files as one line, for `status` when a block fails.
 *
 * @example
 * ```ts
 * import { outputTail } from "./tail.ts";
 * outputTail(["/h/ep/submit_scripts/block-0-1.stdout", "/h/ep/submit_scripts/block-0-1.stderr"]);
 * // "worker_init: line 1: module: command not found"
 * ```
 * @module
 */
import { reasonLine } from "../engine/health.ts";

/**
 * The last `maxBytes` bytes of a file as text; "" when it is missing or unreadable.
 *
 * @example
 * ```ts
 * readTail("/nonexistent"); // ""
 * ```
 */
export function readTail(path: string, maxBytes = 4096): string {
  let f: Deno.FsFile | undefined;
  try {
    f = Deno.openSync(path, { read: true });
    const size = f.statSync().size;
    const n = Math.min(size, maxBytes);
    f.seekSync(size - n, Deno.SeekMode.Start);
    const buf = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const r = f.readSync(buf.subarray(off));
      if (r === null || r === 0) break;
      off += r;
    }
    return new TextDecoder().decode(buf.subarray(0, off));
  } catch {
    return "";
  } finally {
    f?.close();
  }
}

/**
 * The last lines of the given files (in that order), one line.
 *
 * @example
 * ```ts
 * outputTail([]); // ""
 * ```
 */
export function outputTail(paths: string[], maxLines = 5): string {
  return reasonLine(paths.map((p) => readTail(p)).join("\n"), maxLines, 600);
}
