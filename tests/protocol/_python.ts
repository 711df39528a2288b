/**
 * Test helper: run a python3 snippet with stdin, return stdout (throws with stderr on failure).
 *
 * @example
 * ```ts
 * import { runPython } from "./_python.ts";
 * const out = await runPython("import sys; print(sys.stdin.read())", "hi");
 * ```
 * @module
 */

/** Run `python3 -c code` feeding `input`; resolve to stdout as text. */
export async function runPython(code: string, input: string | Uint8Array = ""): Promise<string> {
  const bytes = await runPythonBytes(code, input);
  return new TextDecoder().decode(bytes);
}

/** Like {@linkcode runPython} but resolves to raw stdout bytes. */
export async function runPythonBytes(
  code: string,
  input: string | Uint8Array = "",
): Promise<Uint8Array> {
  const child = new Deno.Command("python3", {
    args: ["-c", code],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { PYTHONHASHSEED: "0", PYTHONIOENCODING: "utf-8" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
  await w.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(`python3 failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

/** Hex of bytes. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hex string. */
export function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}
