/**
 * `deno task demo [--home DIR] [--tasks N] [--keep]`: the whole funcX round trip on this
 * machine, with the real programs only.
 *
 * 1. starts the local funcX service (`funcx-endpoint service start --port 0`) unless one is
 *    already running in the funcX home (a fresh temporary home under /tmp by default);
 * 2. creates a demo user and logs in with `funcx-endpoint login`, answered the way a user
 *    does: the printed URL is opened by an HTTP "browser" that approves the printed code
 *    with the user's name and password (device authorization grant). With `--home` of an
 *    existing funcX home, the login, the global config and the endpoint go to a separate
 *    temporary funcX home: the demo never touches the user's credentials or config;
 * 3. `funcx-endpoint configure demo`, then `funcx-endpoint start demo` (local provider,
 *    python3 workers);
 * 4. submits Python functions — a sum, one that raises, a batch of 1,000 — and a shell
 *    command through the funcX web API, and prints results and timings;
 * 5. stops the endpoint and the service it started, also on Ctrl-C.
 *
 * @example
 * ```sh
 * deno task demo
 * deno task demo --home /tmp/fx --keep --tasks 5000
 * ```
 * @module
 */
import { join } from "node:path";
import { getAccessToken } from "../src/auth/access.ts";
import { loadGlobalConfig } from "../src/config/schema.ts";
import { COMPILE_FLAGS } from "../src/config/permissions.ts";
import { authUrl, readServiceInfo, serviceUrl } from "../src/service/info.ts";
import { FuncXClient, RemoteError } from "../src/sdk/client.ts";

/** Parsed command line of the demo. */
export interface DemoArgs {
  home?: string;
  tasks: number;
  keep: boolean;
  /** `--help`: print the usage and exit 0. */
  help?: boolean;
}

/** The demo's usage text. */
export const DEMO_USAGE = `usage: deno task demo [--home DIR] [--tasks N] [--keep]

  --home DIR   funcX home whose local service to use (started there if not running);
               the demo's login and endpoint live in a separate home when DIR already
               holds credentials or a config (a fresh temporary home by default)
  --tasks N    size of the batch of tasks (default 1000)
  --keep       keep the service, the endpoint and the temporary home afterwards`;

/**
 * Parse `--home DIR`, `--tasks N`, `--keep`; throws a one-line error naming the flag.
 *
 * @example
 * ```ts
 * parseDemoArgs(["--tasks", "10"]); // { tasks: 10, keep: false }
 * ```
 */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const out: DemoArgs = { tasks: 1000, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--home") out.home = value();
    else if (flag === "--tasks") {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) {
        throw new Error(`--tasks: "${v}" is invalid; expected an integer from 1 to 100000`);
      }
      out.tasks = n;
    } else if (flag === "--keep") out.keep = true;
    else if (flag === "-h" || flag === "--help") out.help = true;
    else throw new Error(`unknown option ${flag}; expected --home DIR, --tasks N or --keep`);
  }
  return out;
}

const _MAIN = new URL("../main.ts", import.meta.url).pathname;
const _USER = "demo";
const _PASSWORD = "local-funcx-pass-7";
const _ENDPOINT = "demo";

const _PY_SUM = "def total(*numbers):\n    return sum(numbers)\n";
const _PY_DIVIDE = "def divide(a, b):\n    return a / b\n";
const _PY_SQUARE = "def square(x):\n    return x * x\n";
const _PY_PLATFORM =
  "def where():\n    import platform, sys\n    return '%s, Python %s' % (platform.node(), sys.version.split()[0])\n";

function _say(msg: string) {
  console.log(`\x1b[1m==>\x1b[0m ${msg}`);
}

function _ms(t0: number): string {
  const ms = performance.now() - t0;
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Run the CLI (`deno run <COMPILE_FLAGS> main.ts ...`) with FUNCX_HOME; throws on failure. */
async function _cli(home: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMPILE_FLAGS, _MAIN, ...args],
    env: { FUNCX_HOME: home },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `funcx-endpoint ${args.join(" ")} failed (exit ${out.code}): ${
        dec.decode(out.stderr).trim()
      }`,
    );
  }
  return dec.decode(out.stdout);
}

/** The user's browser: open the verification URL and approve the code as the demo user. */
async function _approveInBrowser(url: string, userCode: string): Promise<void> {
  const page = await fetch(url);
  const html = await page.text();
  if (!page.ok) throw new Error(`verification page: HTTP ${page.status}`);
  const unescape = (s: string) =>
    s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    form.set(m[1], unescape(m[2]));
  }
  form.set("user_code", userCode);
  form.set("username", _USER);
  form.set("password", _PASSWORD);
  form.set("action", "approve");
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error("the verification page has no form");
  // a browser sends the page's CSRF cookie back
  const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0];
  const posted = await fetch(new URL(unescape(action), url), {
    headers: { cookie },
    method: "POST",
    body: form,
  });
  const done = await posted.text();
  if (!posted.ok || !done.includes('id="done"')) {
    throw new Error(`login refused: HTTP ${posted.status}`);
  }
}

/** `funcx-endpoint login`, answered like a user: open the URL, approve the code. */
async function _login(home: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMPILE_FLAGS, _MAIN, "login", "--force"],
    env: { FUNCX_HOME: home },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let out = "";
  while (!/approve the code [A-Z]{4}-[A-Z]{4}/.test(out)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += dec.decode(value, { stream: true });
  }
  const url = /https?:\/\/\S+/.exec(out)?.[0];
  const code = /approve the code ([A-Z]{4}-[A-Z]{4})/.exec(out)?.[1];
  if (!url || !code) {
    const err = await new Response(child.stderr).text();
    throw new Error(`funcx-endpoint login printed no URL and code: ${err.trim() || out.trim()}`);
  }
  console.log(`    login URL: ${url}, code ${code}`);
  await _approveInBrowser(url, code);
  console.log(`    (the "browser" approved the code as ${_USER})`);
  const drain = (async () => {
    while (!(await reader.read()).done) { /* rest of the output */ }
  })();
  const [status, err] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    drain,
  ]);
  if (!status.success) throw new Error(`funcx-endpoint login failed: ${err.trim()}`);
}

const _ENDPOINT_CONFIG = `# written by the demo: the local provider with a few python3 workers
heartbeat_period: 5
heartbeat_threshold: 30
provider:
  type: local
  init_blocks: 1
  min_blocks: 1
  max_blocks: 1
executor:
  max_workers_per_node: 4
  heartbeat_period: 2
  heartbeat_threshold: 10
`;

/** Whether `home` holds credentials or a global config that the demo must not replace. */
function _hasUserState(home: string): boolean {
  for (const f of ["credentials", "config.yaml"]) {
    try {
      Deno.statSync(join(home, f));
      return true;
    } catch { /* absent */ }
  }
  return false;
}

async function _serviceRunning(home: string): Promise<boolean> {
  const info = await readServiceInfo(home);
  if (!info) return false;
  try {
    const r = await fetch(`${serviceUrl(info)}/version`, { signal: AbortSignal.timeout(2000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** Run the demo; returns the exit code. */
export async function runDemo(args: DemoArgs): Promise<number> {
  const t0 = performance.now();
  const home = args.home ?? Deno.makeTempDirSync({ dir: "/tmp", prefix: "funcx-demo-" });
  Deno.mkdirSync(home, { recursive: true, mode: 0o700 });
  // the login, global config and endpoint: never in a home that is already somebody's
  const separate = args.home !== undefined && _hasUserState(home);
  const client = separate ? Deno.makeTempDirSync({ dir: "/tmp", prefix: "funcx-demo-" }) : home;
  let startedService = false;
  let startedEndpoint = false;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      if (startedEndpoint) {
        _say(`stopping the endpoint: funcx-endpoint stop ${_ENDPOINT}`);
        await _cli(client, ["stop", _ENDPOINT]).catch((e) => console.error(`    ${e.message}`));
      }
      if (startedService) {
        _say("stopping the service: funcx-endpoint service stop");
        await _cli(home, ["service", "stop"]).catch((e) => console.error(`    ${e.message}`));
      }
      if (!args.home && !args.keep) Deno.removeSync(home, { recursive: true });
      else console.log(`    funcX home kept: ${home}`);
      if (separate && !args.keep) Deno.removeSync(client, { recursive: true });
      else if (separate) console.log(`    the demo's login and endpoint kept in: ${client}`);
    })();
  const onSigint = () => {
    console.error("\ninterrupted: cleaning up");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    _say(`funcX home: ${home}`);
    if (separate) {
      _say(
        `${home} already holds a login or config: the demo logs in and runs its endpoint in ${client}`,
      );
    }
    if (await _serviceRunning(home)) {
      _say("the local funcX service is already running; using it");
    } else {
      _say("starting the local funcX service (HTTP API, ZeroMQ forwarder, OAuth2 server)");
      const t = performance.now();
      startedService = true;
      console.log(`    ${(await _cli(home, ["service", "start", "--port", "0"])).trim()}`);
      console.log(`    (${_ms(t)})`);
    }
    const info = (await readServiceInfo(home))!;
    Deno.writeTextFileSync(
      join(client, "config.yaml"),
      `service_address: ${serviceUrl(info)}\nauth_address: ${authUrl(info)}\n`,
      { mode: 0o600 },
    );

    _say(`creating the user "${_USER}" and logging in (funcx-endpoint login, device code)`);
    await _cli(home, ["service", "add-user", _USER, "--password-stdin"], `${_PASSWORD}\n`)
      .catch((e) => {
        if (!/exist/i.test(e.message)) throw e;
      });
    let t = performance.now();
    await _login(client);
    console.log(`    ${(await _cli(client, ["whoami"])).trim()} (${_ms(t)})`);

    _say(`configuring and starting the endpoint "${_ENDPOINT}"`);
    try {
      Deno.statSync(join(client, _ENDPOINT, "config.yaml"));
    } catch {
      await _cli(client, ["configure", _ENDPOINT]);
      Deno.writeTextFileSync(join(client, _ENDPOINT, "config.yaml"), _ENDPOINT_CONFIG, {
        mode: 0o600,
      });
    }
    t = performance.now();
    startedEndpoint = true;
    console.log(
      `    ${(await _cli(client, ["start", _ENDPOINT])).trim().split("\n").join("\n    ")}`,
    );
    console.log(`    (${_ms(t)})`);
    const endpointId = JSON.parse(
      Deno.readTextFileSync(join(client, _ENDPOINT, "endpoint.json")),
    ).endpoint_id as string;

    const global = loadGlobalConfig(join(client, "config.yaml"));
    const fx = new FuncXClient({
      serviceAddress: global.service_address,
      token: () => getAccessToken(client, global),
    });
    const run = async (fn: string, name: string, args: unknown[] = [], kwargs = {}) => {
      const f = await fx.registerFunction(fn, name);
      const [id] = await fx.submit([{
        functionId: f,
        endpointId,
        args: args as never[],
        kwargs,
      }]);
      return (await fx.waitForResults([id], { timeoutMs: 120_000 })).get(id)!;
    };

    _say("waiting for the first block's manager and workers");
    t = performance.now();
    while (true) {
      try {
        const st = JSON.parse(Deno.readTextFileSync(join(client, _ENDPOINT, "status.json")));
        if (st.managers?.length > 0) {
          const w = st.managers.reduce((n: number, m: { workers: number }) => n + m.workers, 0);
          console.log(`    ${st.managers.length} manager(s), ${w} python3 worker(s) (${_ms(t)})`);
          break;
        }
      } catch { /* not written yet */ }
      if (performance.now() - t > 120_000) throw new Error("no manager connected in 120 s");
      await new Promise((r) => setTimeout(r, 100));
    }

    _say("where do the functions run?");
    t = performance.now();
    console.log(`    where() = ${(await run(_PY_PLATFORM, "where")).value} (${_ms(t)})`);

    _say("a sum: total(1, 2, 3, 4)");
    t = performance.now();
    console.log(`    = ${(await run(_PY_SUM, "total", [1, 2, 3, 4])).value} (${_ms(t)})`);

    _say("a function that raises: divide(1, 0)");
    t = performance.now();
    const failed = await run(_PY_DIVIDE, "divide", [1, 0]);
    if (!(failed.error instanceof RemoteError)) throw new Error("divide(1, 0) did not fail");
    console.log(`    raised ${failed.error.type}: ${failed.error.remoteMessage} (${_ms(t)})`);
    console.log(
      failed.error.remoteTraceback.trim().split("\n").map((l) => `      | ${l}`).join("\n"),
    );

    _say(`a batch of ${args.tasks} tasks: square(i) for i in range(${args.tasks})`);
    const sq = await fx.registerFunction(_PY_SQUARE, "square");
    t = performance.now();
    const ids = await fx.submit(
      Array.from({ length: args.tasks }, (_, i) => ({ functionId: sq, endpointId, args: [i] })),
    );
    const submitted = _ms(t);
    const results = await fx.waitForResults(ids, { timeoutMs: 600_000 });
    const elapsed = (performance.now() - t) / 1000;
    let ok = 0;
    for (const [i, id] of ids.entries()) if (results.get(id)?.value === i * i) ok++;
    console.log(
      `    ${ok}/${args.tasks} correct; submitted in ${submitted}, all results in ${
        elapsed.toFixed(2)
      } s (${(args.tasks / elapsed).toFixed(0)} tasks/s)`,
    );
    if (ok !== args.tasks) throw new Error(`${args.tasks - ok} result(s) missing or wrong`);

    _say('a shell command: echo "hello from {name}" && uname -sr');
    t = performance.now();
    const shf = await fx.registerShellFunction('echo "hello from {name}" && uname -sr', {
      timeout: 30,
    });
    const [sid] = await fx.submit([{ functionId: shf, endpointId, kwargs: { name: "funcX" } }]);
    const sh = (await fx.waitForResults([sid], { timeoutMs: 120_000 })).get(sid)!;
    const v = sh.value as Record<string, unknown>;
    console.log(`    returncode ${v?.returncode} (${_ms(t)}), stdout:`);
    console.log(String(v?.stdout ?? "").trim().split("\n").map((l) => `      | ${l}`).join("\n"));

    _say("endpoint status");
    console.log(
      (await _cli(client, ["status", _ENDPOINT])).trim().split("\n").slice(0, 6).map((l) =>
        `    ${l}`
      ).join("\n"),
    );
    await cleanup();
    _say(`demo finished in ${_ms(t0)}`);
    return 0;
  } catch (e) {
    console.error(`demo failed: ${(e as Error).message}`);
    await cleanup();
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

if (import.meta.main) {
  let args: DemoArgs;
  try {
    args = parseDemoArgs(Deno.args);
  } catch (e) {
    console.error(`demo: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if (args.help) {
    console.log(DEMO_USAGE);
    Deno.exit(0);
  }
  Deno.exit(await runDemo(args));
}
