/**
 * Shell completion, driven in the real shells: bash runs the generated script's completion
 * function with the words of a command line (as its programmable completion does), and an
 * interactive zsh in a pseudo-terminal gets the command line typed and TAB pressed.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempHome } from "../helpers/cli.ts";

const CAPTURE = new URL("./_zsh_capture.zsh", import.meta.url).pathname;

async function script(home: string, shell: string): Promise<string> {
  const r = await runCli(home, ["completion", shell]);
  assertEquals(r.code, 0, r.stderr);
  const file = join(home, `completion.${shell}`);
  Deno.writeTextFileSync(file, r.stdout);
  return file;
}

async function run(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

/** bash: what COMPREPLY holds after completing the last word of `words`. */
async function bashComplete(file: string, home: string, words: string[]): Promise<string[]> {
  const text = await run("bash", [
    "--norc",
    "--noprofile",
    "-c",
    `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _funcx_endpoint; ` +
    `printf '%s\\n' "\${COMPREPLY[@]}"`,
    "_",
    file,
    "funcx-endpoint",
    ...words,
  ], { FUNCX_HOME: home, HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" });
  return text.split("\n").filter(Boolean).sort();
}

/** zsh: what the completion system offered after typing `line` and TAB. */
async function zshComplete(file: string, home: string, line: string): Promise<string[]> {
  const text = await run("zsh", ["-f", CAPTURE, file, `funcx-endpoint ${line}`], {
    FUNCX_HOME: home,
    HOME: home,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    TERM: "dumb",
  });
  // every compadd call prints its own <<...>> (some calls add nothing): take them all
  const calls = [...text.replace(/\r/g, "").matchAll(/<<([^>]*)>>/g)];
  assert(
    calls.length > 0,
    `zsh offered nothing for "${line}": ${JSON.stringify(text.slice(-500))}`,
  );
  return [...new Set(calls.flatMap((m) => m[1].split(" ").filter(Boolean)))].sort();
}

function hasZsh(): boolean {
  try {
    new Deno.Command("zsh", { args: ["-fc", "true"] }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** The subcommands `service --help` lists: completion offers exactly those. */
async function serviceCommands(home: string): Promise<string[]> {
  const r = await runCli(home, ["service", "--help"]);
  assertEquals(r.code, 0, r.stderr);
  const listed = r.stdout.slice(r.stdout.indexOf("Commands:")).match(/^ {2}[a-z][a-z-]*/gm) ?? [];
  return listed.map((c) => c.trim()).filter((c) => c !== "help").sort();
}

/** Every long option `service start --help` lists: completion offers exactly those. */
async function serviceStartOptions(home: string): Promise<string[]> {
  const r = await runCli(home, ["service", "start", "--help"]);
  assertEquals(r.code, 0, r.stderr);
  return [...new Set(r.stdout.match(/--[a-z][a-z-]*/g) ?? [])].sort();
}

/** [words after the program (last = word being completed), expected candidates]. */
const CASES: [string[], string[]][] = [
  [["completion", ""], ["bash", "zsh"]],
  [["service", "add-user", "--"], ["--email", "--help", "--password-stdin"]],
  [["service", "group", ""], ["add-member", "list", "remove-member"]],
  [["service", "group", "add-member", "--"], ["--help", "--role"]],
  [["stop", ""], ["alpha", "beta"]],
  [["logs", "-n", "5", "a"], ["alpha"]],
  [["start", "--"], ["--endpoint-uuid", "--foreground", "--help", "--keep-retrying", "--timeout"]],
  [["login", "--"], ["--force", "--help", "--password-stdin", "--user"]],
  [["-d", "serv"], ["service"]],
];

Deno.test("completion: every command's subcommands, options and arguments in bash", async () => {
  const home = tempHome();
  try {
    for (const n of ["alpha", "beta"]) {
      Deno.mkdirSync(join(home, n));
      Deno.writeTextFileSync(join(home, n, "config.yaml"), "");
    }
    const file = await script(home, "bash");
    assert(Deno.readTextFileSync(file).startsWith("# bash completion for funcx-endpoint"));
    for (const [words, want] of CASES) {
      assertEquals(await bashComplete(file, home, words), want, words.join(" "));
    }
    const startOpts = await serviceStartOptions(home);
    assert(startOpts.includes("--foreground") && !startOpts.includes("--daemon"), `${startOpts}`);
    assertEquals(await bashComplete(file, home, ["service", "start", "--"]), startOpts);
    const services = await serviceCommands(home);
    for (const c of ["start", "stop", "status", "add-user", "add-client"]) {
      assert(services.includes(c), `${services}`);
    }
    assertEquals(await bashComplete(file, home, ["service", ""]), services);
    // every command and every visible subcommand/option completes
    const top = await bashComplete(file, home, [""]);
    for (const c of ["configure", "start", "stop", "service", "completion", "login", "whoami"]) {
      assert(top.includes(c), c);
    }
    assert(!top.includes("manager") && !top.includes("debug-sandbox"), "hidden commands");
    const svcStart = await bashComplete(file, home, ["service", "start", "--d"]);
    assertEquals(svcStart, [], "the internal --daemon is not offered");
    // -c DIR: directories, and endpoint names from that home
    const other = join(home, "other");
    Deno.mkdirSync(join(other, "gamma"), { recursive: true });
    Deno.writeTextFileSync(join(other, "gamma", "config.yaml"), "");
    assertEquals(await bashComplete(file, home, ["-c", other, "start", ""]), ["gamma"]);
    assertEquals(await bashComplete(file, home, ["--config-dir", join(home, "oth")]), [other]);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test({
  name: "completion: the same in an interactive zsh (TAB pressed in a pseudo-terminal)",
  fn: async () => {
    assert(hasZsh(), "zsh is not installed: apt-get install zsh (.ci/run installs it)");
    const home = tempHome();
    try {
      for (const n of ["alpha", "beta"]) {
        Deno.mkdirSync(join(home, n));
        Deno.writeTextFileSync(join(home, n, "config.yaml"), "");
      }
      const file = await script(home, "zsh");
      const text = Deno.readTextFileSync(file);
      assert(text.startsWith("#compdef funcx-endpoint\n# zsh completion"), text.slice(0, 80));
      assert(!text.includes("completion bash"), "the zsh script names zsh");
      for (const [words, want] of CASES) {
        // zsh's compadd filters by the typed prefix itself: compare what matches it
        const prefix = words[words.length - 1];
        const got = (await zshComplete(file, home, words.join(" "))).filter((c) =>
          c.startsWith(prefix)
        );
        assertEquals(got, want, words.join(" "));
      }
      assertEquals(await zshComplete(file, home, "service "), await serviceCommands(home));
      const got = await zshComplete(file, home, "service start --");
      assertEquals(got.filter((c) => c.startsWith("--")), await serviceStartOptions(home));
    } finally {
      Deno.removeSync(home, { recursive: true });
    }
  },
});
