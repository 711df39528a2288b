/**
 * Reading a password: from a terminal without echo, or one line of stdin with
 * `--password-stdin`; and the password policy of the local service's users.
 *
 * @example
 * ```ts
 * import { checkNewPassword, readPassword } from "./password.ts";
 * const pw = await readPassword(false, "Password: ");
 * checkNewPassword("alice", pw);
 * ```
 * @module
 */
import { CliError } from "./context.ts";

/** Shortest password `service add-user` accepts. */
export const MIN_PASSWORD_LENGTH = 12;

/**
 * The password policy of new users: at least {@linkcode MIN_PASSWORD_LENGTH} characters, at
 * least 8 of them besides the user name, at least 4 different ones. Throws a one-line CliError.
 *
 * @example
 * ```ts
 * checkNewPassword("alice", "correct horse battery"); // ok
 * checkNewPassword("alice", "x"); // throws
 * ```
 */
export function checkNewPassword(username: string, password: string): void {
  const chars = [...password];
  if (chars.length < MIN_PASSWORD_LENGTH) {
    throw new CliError(
      `password: too short (${chars.length} characters); use at least ${MIN_PASSWORD_LENGTH}`,
    );
  }
  // the user name plus a few characters is guessable; a long password around it is not
  const rest = username.length >= 3
    ? password.toLowerCase().split(username.toLowerCase()).join("")
    : password;
  if ([...rest].length < 8) {
    throw new CliError("password: too close to the user name; add 8 or more other characters");
  }
  if (new Set(chars).size < 4) {
    throw new CliError("password: use at least 4 different characters");
  }
}

/**
 * Read a password: one line of stdin (`fromStdin`), else typed on the terminal without
 * echo after `prompt`. Without a terminal and without `fromStdin`, a CliError says what to do.
 *
 * @example
 * ```ts
 * const pw = await readPassword(true); // "secret" from `echo secret | ...`
 * ```
 */
export async function readPassword(fromStdin: boolean, prompt = "Password: "): Promise<string> {
  if (fromStdin) {
    const text = await new Response(Deno.stdin.readable).text();
    return text.replace(/\r?\n$/, "");
  }
  if (!Deno.stdin.isTerminal()) {
    throw new CliError("no terminal to ask for the password: use --password-stdin");
  }
  const enc = new TextEncoder();
  await Deno.stdout.write(enc.encode(prompt));
  Deno.stdin.setRaw(true);
  const chars: number[] = [];
  const buf = new Uint8Array(64);
  try {
    outer: while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 13 || b === 10) break outer;
        if (b === 3) throw new CliError("aborted");
        if (b === 127 || b === 8) chars.pop();
        else chars.push(b);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stdout.write(enc.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(chars));
}
