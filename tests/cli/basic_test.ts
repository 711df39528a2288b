import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { expectedBuild, programCommand, runCli, tempHome } from "../helpers/cli.ts";

const COMMANDS = ["configure", "start", "stop", "restart", "list", "delete", "status", "logs"];

function oneLineError(stderr: string, pattern: RegExp) {
  const lines = stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `expected one line, got: ${stderr}`);
  match(lines[0], /^funcx-endpoint: /);
  match(lines[0], pattern);
  assert(!/\bat .*:\d+:\d+/.test(stderr), `stack trace in: ${stderr}`);
}

Deno.test("--version and --help list every command and global option", async () => {
  const home = tempHome();
  const v = await runCli(home, ["--version"]);
  assertEquals(v.code, 0);
  const want = expectedBuild();
  if (want) {
    assertEquals(
      v.stdout,
      `FuncX endpoint version: 0.3.4\nrelease: ${want.release}\ncommit: ${want.commit}\n`,
    );
  } else {
    // a compiled binary carries the release and commit that scripts/compile.ts baked in
    match(
      v.stdout,
      /^FuncX endpoint version: 0\.3\.4\nrelease: [0-9A-Za-z.+_-]+\ncommit: [0-9a-f]{7,64}\n$/,
    );
  }
  const h = await runCli(home, ["--help"]);
  assertEquals(h.code, 0);
  for (const c of COMMANDS) match(h.stdout, new RegExp(`^  ${c}\\b`, "m"));
  for (const o of ["--version", "--debug", "--config-dir <dir>", "--help"]) {
    assert(h.stdout.includes(o), `missing ${o}`);
  }
  assert(!h.stdout.includes("debug-sandbox"), "hidden command shown");
  Deno.removeSync(home, { recursive: true });
});

Deno.test("each command has complete help", async () => {
  const home = tempHome();
  const expectations: Record<string, string[]> = {
    configure: ["[name]"],
    start: ["[name]", "--endpoint-uuid <uuid>", "--foreground", "--timeout <seconds>"],
    stop: ["[name]", "--timeout <seconds>"],
    restart: ["[name]", "--endpoint-uuid <uuid>"],
    list: ["--json"],
    delete: ["<name>", "-y, --yes"],
    status: ["[name]", "--json"],
    logs: ["[name]", "-f, --follow", "-n, --lines <count>"],
  };
  const results = await Promise.all(
    COMMANDS.map((c) => runCli(home, [c, "--help"]).then((r) => [c, r] as const)),
  );
  for (const [c, r] of results) {
    assertEquals(r.code, 0, `${c} --help: ${r.stderr}`);
    match(r.stdout, new RegExp(`^Usage: funcx-endpoint ${c} `));
    assert(r.stdout.includes("-h, --help"), `${c}: no --help`);
    for (const e of expectations[c] ?? []) assert(r.stdout.includes(e), `${c}: missing ${e}`);
    assert(!r.stdout.includes("--daemon"), `${c}: internal flag shown`);
  }
  Deno.removeSync(home, { recursive: true });
});

Deno.test("configure writes commented templates; list shows Initialized", async () => {
  const home = tempHome();
  const r = await runCli(home, ["configure", "ep1"]);
  assertEquals(r.code, 0, r.stderr);
  match(r.stdout, /A default profile has been created for ep1 at .*ep1\/config\.yaml/);
  const cfg = Deno.readTextFileSync(join(home, "ep1", "config.yaml"));
  match(cfg, /^# funcx-endpoint configuration for endpoint "ep1"/);
  assert(Deno.statSync(join(home, "config.yaml")).isFile);
  assertEquals(Deno.statSync(join(home, "ep1", "config.yaml")).mode! & 0o777, 0o600);
  const again = await runCli(home, ["configure", "ep1"]);
  assertEquals(again.code, 1);
  oneLineError(again.stderr, /endpoint "ep1" is already configured/);
  const l = await runCli(home, ["list"]);
  assertEquals(l.code, 0);
  match(l.stdout, /Endpoint Name.*Status.*Endpoint ID.*PID.*Uptime/);
  match(l.stdout, /ep1 +│ Initialized │ None/);
  const j = await runCli(home, ["list", "--json"]);
  assertEquals(JSON.parse(j.stdout), [
    {
      name: "ep1",
      status: "Initialized",
      endpoint_id: null,
      pid: null,
      host: null,
      remote: false,
      uptime_seconds: null,
      degraded: null,
    },
  ]);
  Deno.removeSync(home, { recursive: true });
});

Deno.test("bad names, missing endpoints, bad flags: one-line errors, non-zero exit", async () => {
  const home = tempHome();
  const cases: [string[], RegExp][] = [
    [["configure", "a/b"], /endpoint name "a\/b" must not contain a path separator/],
    [["configure", "../x"], /must not contain a path separator/],
    [["configure", ""], /endpoint name must not be empty/],
    [["configure", ".hidden"], /is invalid: use 1-64 letters/],
    [["configure", "credentials"], /endpoint name "credentials" is reserved/],
    [["start", "nope"], /endpoint "nope" is not configured .*funcx-endpoint configure nope/],
    [["stop", "nope"], /endpoint "nope" is not configured/],
    [["status", "nope"], /endpoint "nope" is not configured/],
    [["logs", "nope"], /endpoint "nope" is not configured/],
    [["delete", "nope", "--yes"], /endpoint "nope" does not exist/],
    [["delete"], /missing required argument 'name'/],
    [["start", "--endpoint-uuid", "xyz"], /--endpoint-uuid: "xyz" is not a UUID/],
    [["bogus"], /unknown command 'bogus'/],
    [["list", "--bogus"], /unknown option '--bogus'/],
    [["stop", "--timeout", "soon"], /--timeout: "soon" is not a positive number/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(home, args)));
  results.forEach((r, i) => {
    assert(r.code !== 0, `${cases[i][0].join(" ")} exited 0`);
    oneLineError(r.stderr, cases[i][1]);
  });
  // nothing was created for the rejected names
  assertEquals([...Deno.readDirSync(home)].map((e) => e.name).sort(), []);
  Deno.removeSync(home, { recursive: true });
});

Deno.test("delete asks for confirmation and aborts on no", async () => {
  const home = tempHome();
  assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
  const no = await runCli(home, ["delete", "ep"], { stdin: "n\n" });
  assertEquals(no.code, 1);
  match(no.stdout, /Are you sure you want to delete the endpoint ep\?/);
  oneLineError(no.stderr, /Aborted!/);
  assert(Deno.statSync(join(home, "ep")).isDirectory);
  const yes = await runCli(home, ["delete", "ep"], { stdin: "y\n" });
  assertEquals(yes.code, 0, yes.stderr);
  match(yes.stdout, /Endpoint "ep" deleted/);
  assertEquals([...Deno.readDirSync(home)].map((e) => e.name), ["config.yaml"]);
  Deno.removeSync(home, { recursive: true });
});

Deno.test("--config-dir (and upstream --config_dir) selects the funcX home", async () => {
  const home = tempHome();
  const other = tempHome();
  const r = await runCli(home, ["--config-dir", other, "configure", "x"]);
  assertEquals(r.code, 0, r.stderr);
  assert(Deno.statSync(join(other, "x", "config.yaml")).isFile);
  const l = await runCli(home, ["--config_dir", other, "list", "--json"]);
  assertEquals(JSON.parse(l.stdout)[0].name, "x");
  assertEquals([...Deno.readDirSync(home)].length, 0);
  Deno.removeSync(home, { recursive: true });
  Deno.removeSync(other, { recursive: true });
});

Deno.test("completion bash completes commands, options and endpoint names", async () => {
  const home = tempHome();
  assertEquals((await runCli(home, ["configure", "alpha"])).code, 0);
  const r = await runCli(home, ["completion", "bash"]);
  assertEquals(r.code, 0, r.stderr);
  const script = join(home, "completion.sh");
  Deno.writeTextFileSync(script, r.stdout);
  const complete = async (...words: string[]) => {
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        `source "$1"; shift; COMP_WORDS=(funcx-endpoint "$@"); COMP_CWORD=$#; _funcx_endpoint; echo "\${COMPREPLY[*]}"`,
        "t",
        script,
        ...words,
      ],
      env: { FUNCX_HOME: home },
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  assertEquals(await complete("sta"), "start status");
  assertEquals(await complete("start", ""), "alpha");
  assertEquals(await complete("delete", "--"), "--yes --help");
  const bad = await runCli(home, ["completion", "fish"]);
  assertEquals(bad.code, 1);
  oneLineError(bad.stderr, /"fish" is not supported; expected bash or zsh/);
  Deno.removeSync(home, { recursive: true });
});

Deno.test("logs -n prints the tail; logs -f follows new lines until SIGINT", async () => {
  const home = tempHome();
  assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
  const log = join(home, "ep", "endpoint.log");
  Deno.writeTextFileSync(log, Array.from({ length: 10 }, (_, i) => `old ${i}`).join("\n") + "\n");
  const tail = await runCli(home, ["logs", "ep", "-n", "3"]);
  assertEquals(tail.stdout, "old 7\nold 8\nold 9\n");
  const program = programCommand();
  const child = new Deno.Command(program.cmd, {
    args: [...program.args, "logs", "ep", "-f", "-n", "1"],
    env: { FUNCX_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const until = async (text: string) => {
    while (!seen.includes(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before ${text}: ${seen}`);
      seen += value;
    }
  };
  await until("old 9\n");
  Deno.writeTextFileSync(log, "new line\n", { append: true });
  await until("new line\n");
  child.kill("SIGINT");
  const status = await child.status;
  clearTimeout(guard);
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel();
  assertEquals(status.code, 0);
  assertEquals(seen, "old 9\nnew line\n");
  Deno.removeSync(home, { recursive: true });
});
