/**
 * The README's quick start, run exactly as written: each line of its `sh` block in bash,
 * in a pseudo-terminal (`script`), typing the password where a command asks for one, with
 * `funcx-endpoint` and `npx -y deno@...` on PATH running this checkout. It runs in its own
 * network namespace (`unshare --net`), so the service's fixed port 8400 never meets another
 * one on this machine, and in a fresh HOME.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { programCommand } from "../helpers/cli.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const PASSWORD = "quick start pass 42";

/** The command lines of the README's quick-start block, comments removed. */
export function quickStartLines(readme: string): string[] {
  const at = readme.indexOf("<!-- quickstart");
  assert(at >= 0, "README.md has no quick-start marker");
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert(block, "no sh block after the quick-start marker");
  return block[1].split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter(Boolean);
}

/** This Deno's cache directory (`deno info --json`). */
async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

Deno.test({
  name: "README quick start: nothing -> a function ran on my endpoint, in 5 commands",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const lines = quickStartLines(Deno.readTextFileSync(join(ROOT, "README.md")));
    assert(lines.length <= 5, `the quick start has ${lines.length} commands`);
    const dir = Deno.makeTempDirSync({ prefix: "fx-quickstart-" });
    const bin = join(dir, "bin");
    const home = join(dir, "home");
    Deno.mkdirSync(bin);
    Deno.mkdirSync(home);
    const deno = Deno.execPath();
    // this checkout's program (or the binary under test, FUNCX_TEST_BINARY)
    const program = programCommand();
    Deno.writeTextFileSync(
      join(bin, "funcx-endpoint"),
      `#!/bin/sh\nexec ${[program.cmd, ...program.args].map(sh).join(" ")} "$@"\n`,
      { mode: 0o755 },
    );
    // `npx -y deno@<version> ...` runs this Deno (the version CI pins)
    Deno.writeTextFileSync(
      join(bin, "npx"),
      `#!/bin/sh\n[ "$1" = -y ] && shift\ncase "$1" in deno@*) shift ;; *) exit 127 ;; esac\n` +
        `exec ${sh(deno)} "$@"\n`,
      { mode: 0o755 },
    );
    // every line in a terminal with the password typed ahead; the daemons are stopped at
    // the end even when a line fails
    const steps = lines.map((l, i) =>
      `echo "### $ ${l.replace(/["$`\\]/g, "\\$&")}"\n` +
      `printf '%s\\n' ${sh(PASSWORD)} | script -qefc ${sh(l)} /dev/null || { echo "### line ${
        i + 1
      } failed"; exit 1; }`
    ).join("\n");
    const script = `set -u
ip link set lo up
cleanup() { funcx-endpoint stop >/dev/null 2>&1; funcx-endpoint service stop >/dev/null 2>&1; }
trap cleanup EXIT
${steps}
`;
    const out = await new Deno.Command("unshare", {
      args: ["--net", "bash", "-c", script],
      cwd: ROOT,
      env: {
        PATH: `${bin}:${Deno.env.get("PATH")}`,
        HOME: home,
        TERM: "dumb",
        NO_COLOR: "1",
        // the fresh HOME must not mean a fresh (empty, offline) Deno cache
        DENO_DIR: await denoDir(),
      },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (Deno.env.get("FX_SHOW")) console.log(text);
    try {
      assertEquals(out.code, 0, text);
      match(text, /User "alice" created/);
      match(text, /Logged in/);
      match(text, /Endpoint "default" started/);
      match(text, /hello from .*: 2 \+ 3 = 5 \(Python 3\.\d+/);
      // (the password typed ahead is echoed by the terminal before the prompt turns echo off)
      // a normal stop is not a warning
      const log = Deno.readTextFileSync(join(home, ".funcx/default/endpoint.log"));
      if (Deno.env.get("FX_SHOW")) console.log(log);
      assert(!/WARN/.test(log), log);
      // nothing left running
      for (
        const f of [
          join(home, ".funcx/default/daemon.pid"),
          join(home, ".funcx/service/service.pid"),
        ]
      ) {
        let exists = true;
        try {
          Deno.statSync(f);
        } catch {
          exists = false;
        }
        assert(!exists, `${f} is left`);
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
