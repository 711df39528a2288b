/**
 * Small file helpers of the endpoint daemon: atomic writes and `endpoint.json`.
 *
 * @example
 * ```ts
 * import { atomicWrite, readEndpointJson } from "./files.ts";
 * atomicWrite("/home/u/.funcx/default/status.json", "{}\n");
 * readEndpointJson("/home/u/.funcx/default/endpoint.json"); // { endpoint_id: "..." } or null
 * ```
 * @module
 */

const _UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True for a canonical UUID string.
 *
 * @example
 * ```ts
 * isUuid("4b116d3c-1703-4f8f-9f6f-39921e5864df"); // true
 * ```
 */
export function isUuid(s: unknown): s is string {
  return typeof s === "string" && _UUID_RE.test(s);
}

/**
 * Write `data` to `path` atomically (temporary file in the same directory + rename).
 *
 * @example
 * ```ts
 * atomicWrite("/tmp/x.json", "{}\n", 0o600);
 * ```
 */
export function atomicWrite(path: string, data: string | Uint8Array, mode = 0o600): void {
  _replaceWith(path, mode, (tmp) => {
    if (typeof data === "string") Deno.writeTextFileSync(tmp, data, { mode });
    else Deno.writeFileSync(tmp, data, { mode });
  });
}

/**
 * Like {@linkcode atomicWrite}, for text produced piece by piece: each chunk is encoded and
 * written as it comes, so a large file never exists as one string or one buffer.
 *
 * @example
 * ```ts
 * atomicWriteChunks("/tmp/x.json", ["{", '"a":1', "}\n"], 0o600);
 * ```
 */
export function atomicWriteChunks(path: string, chunks: Iterable<string>, mode = 0o600): void {
  _replaceWith(path, mode, (tmp) => {
    const f = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode });
    try {
      for (const chunk of chunks) _writeAll(f, _enc.encode(chunk));
    } finally {
      f.close();
    }
  });
}

/**
 * `write` fills a temporary file beside `path`; it then gets `mode` and replaces `path` by a
 * rename. On any failure the temporary file is removed and the error rethrown.
 */
function _replaceWith(path: string, mode: number, write: (tmp: string) => void): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  try {
    write(tmp);
    Deno.chmodSync(tmp, mode);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw e;
  }
}

const _enc = new TextEncoder();

function _writeAll(f: Deno.FsFile, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.byteLength;) off += f.writeSync(bytes.subarray(off));
}

/**
 * `endpoint.json` exists but is unusable; the message says how to recover.
 *
 * @example
 * ```ts
 * new EndpointJsonError("/h/default/endpoint.json", "not valid JSON").message;
 * ```
 */
export class EndpointJsonError extends Error {
  /** @param file the file, @param problem what is wrong */
  constructor(readonly file: string, problem: string) {
    super(
      `${file}: ${problem}; expected {"endpoint_id": "<uuid>", ...} — fix it, or delete it to register as a new endpoint`,
    );
    this.name = "EndpointJsonError";
  }
}

/**
 * The saved registration (`endpoint_id` checked), `null` when the file does not exist.
 * Throws {@linkcode EndpointJsonError} for a corrupt file rather than silently taking a
 * new identity.
 *
 * @example
 * ```ts
 * readEndpointJson("/home/u/.funcx/default/endpoint.json")?.endpoint_id;
 * ```
 */
export function readEndpointJson(
  path: string,
): ({ endpoint_id: string } & Record<string, unknown>) | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new EndpointJsonError(path, `cannot be read (${(e as Error).name})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new EndpointJsonError(path, "not valid JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new EndpointJsonError(path, "not a JSON object");
  }
  const id = (data as Record<string, unknown>).endpoint_id;
  if (!isUuid(id)) throw new EndpointJsonError(path, "endpoint_id is missing or not a UUID");
  return data as { endpoint_id: string } & Record<string, unknown>;
}
