/**
 * The first hour of a new user (issue 17): a wrong service address fails `start` fast with
 * its cause and leaves nothing running; help and small messages; the password policy; the
 * demo leaves a user's login alone; no npm build-script box; the device grant's rules.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { programCommand, runCli, tempHome } from "../helpers/cli.ts";
import { DeviceGrants, MAX_FAILURES, normalizeUserCode } from "../../src/service/device.ts";
import { progress } from "../../src/cli/progress.ts";
import {
  addUser,
  loginViaForm,
  startService,
  writeGlobalConfig,
  writeTokens,
} from "../helpers/service.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** A home with an endpoint "default" configured and a stored, unexpired token. */
function homeFor(serviceAddress: string): string {
  const home = tempHome();
  Deno.mkdirSync(join(home, "credentials"), { mode: 0o700 });
  Deno.writeTextFileSync(
    join(home, "credentials", "funcx_sdk_tokens.json"),
    JSON.stringify({
      funcx_service: {
        scope: "s",
        access_token: "t",
        refresh_token: null,
        token_type: "Bearer",
        expires_at_seconds: Math.floor(Date.now() / 1000) + 3600,
        resource_server: "funcx_service",
      },
    }),
    { mode: 0o600 },
  );
  Deno.writeTextFileSync(join(home, "config.yaml"), `service_address: ${serviceAddress}\n`);
  Deno.mkdirSync(join(home, "default"));
  Deno.writeTextFileSync(join(home, "default", "config.yaml"), "log_level: info\n");
  return home;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function startFails(address: string, cause: RegExp): Promise<void> {
  const home = homeFor(address);
  try {
    const t0 = performance.now();
    const r = await runCli(home, ["start"]);
    const s = (performance.now() - t0) / 1000;
    assertEquals(r.code, 1, r.stderr);
    const first = r.stderr.split("\n")[0];
    match(first, /^funcx-endpoint: cannot reach the funcX service at /);
    match(first, cause);
    assert(s < 5 + 3, `start took ${s.toFixed(1)} s (5 s probe + program start-up)`);
    assert(!exists(join(home, "default", "daemon.pid")), "nothing left running");
    assert(!/WARN/.test(r.stderr), r.stderr);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
}

Deno.test("start: an unknown host fails at once with 'not found'", async () => {
  await startFails("http://no-such-host.invalid:8400/v2", /host "no-such-host.invalid" not found/);
});

Deno.test("start: nothing listening fails at once with 'connection refused'", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await startFails(`http://127.0.0.1:${port}/v2`, /connection refused by 127\.0\.0\.1:\d+/);
});

Deno.test("start: TLS to a plain HTTP server, and an HTTP error status, are named", async () => {
  const ac = new AbortController();
  const srv = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () => new Response("no", { status: 404 }),
  );
  try {
    const port = srv.addr.port;
    await startFails(`https://127.0.0.1:${port}/v2`, /TLS handshake with 127\.0\.0\.1:\d+ failed/);
    await startFails(`http://127.0.0.1:${port}/v2`, /HTTP 404 .*\/v2\/version/);
  } finally {
    ac.abort();
    await srv.finished;
  }
});

Deno.test({
  name: "start --keep-retrying: starts anyway, leaves it retrying, never logs 'up'",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const home = homeFor(`http://127.0.0.1:${port}/v2`);
    try {
      const r = await runCli(home, ["start", "--keep-retrying", "--timeout", "2"]);
      assertEquals(r.code, 1, r.stderr);
      match(r.stderr, /keeps retrying in the background/);
      assert(exists(join(home, "default", "daemon.pid")), "the daemon runs");
      const log = Deno.readTextFileSync(join(home, "default", "endpoint.log"));
      match(log, /connection refused/);
      assert(!/fetch failed/.test(log), log);
      assert(!/is up/.test(log), log);
      match(log, /started; connecting to the service/);
    } finally {
      await runCli(home, ["stop"]);
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test("help and small messages", async () => {
  const home = tempHome();
  try {
    const help = await runCli(home, ["service", "start", "--help"]);
    assertEquals(help.code, 0);
    assert(!help.stdout.includes("--daemon"), help.stdout);
    const login = await runCli(home, ["login", "--help"]);
    match(login.stdout, /--user <name>/);
    const start = await runCli(home, ["start", "--help"]);
    match(start.stdout, /--keep-retrying/);
    // add-user: a password policy
    for (
      const [pw, why] of [
        ["x", /too short \(1 characters\); use at least 12/],
        ["alice1234567", /too close to the user name/],
        ["aaaaaaaaaaaaaaa", /at least 4 different characters/],
      ] as const
    ) {
      const r = await runCli(home, ["service", "add-user", "alice", "--password-stdin"], {
        stdin: `${pw}\n`,
      });
      assertEquals(r.code, 1);
      match(r.stderr, why);
    }
    const ok = await runCli(home, ["service", "add-user", "alice", "--password-stdin"], {
      stdin: "correct horse battery\n",
    });
    assertEquals(ok.code, 0, ok.stderr);
    // a service that cannot start: one prefix, the cause
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = String((l.addr as Deno.NetAddr).port);
      const r = await runCli(home, ["service", "start", "--port", port]);
      assertEquals(r.code, 1);
      assertEquals(r.stderr.match(/funcx-endpoint:/g)?.length, 1, r.stderr);
      match(r.stderr, /the service did not start: .*(in use|AddrInUse)/i);
    } finally {
      l.close();
    }
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("deno task demo --help exits 0 with the usage", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "demo", "--help"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  assertEquals(out.code, 0);
  match(new TextDecoder().decode(out.stdout), /^usage: deno task demo/);
});

Deno.test({
  name: "demo --home <a user's home> leaves the user's login and config alone",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = tempHome();
    const tokens = '{"funcx_service": {"access_token": "alice-token"}}\n';
    const config = "service_address: http://127.0.0.1:8400/v2\n";
    Deno.mkdirSync(join(home, "credentials"), { mode: 0o700 });
    Deno.writeTextFileSync(join(home, "credentials", "funcx_sdk_tokens.json"), tokens);
    Deno.writeTextFileSync(join(home, "config.yaml"), config);
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "demo", "--home", home, "--tasks", "3"],
        cwd: ROOT,
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, text);
      match(text, /already holds a login or config/);
      assertEquals(
        Deno.readTextFileSync(join(home, "credentials", "funcx_sdk_tokens.json")),
        tokens,
      );
      assertEquals(Deno.readTextFileSync(join(home, "config.yaml")), config);
      assert(!exists(join(home, "demo")), "no demo endpoint in the user's home");
      assert(!exists(join(home, "service", "service.pid")), "the service it started is stopped");
    } finally {
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test("a fresh install prints no npm 'Ignored build scripts' box", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-install-" });
  try {
    for (const f of ["deno.json", "deno.lock"]) Deno.copyFileSync(join(ROOT, f), join(dir, f));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["install", "--frozen"],
      cwd: dir,
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text);
    assert(!/Ignored build scripts|approve-scripts/.test(text), text);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("device grant: one-time answers, slow_down, expiry, wrong passwords", () => {
  let now = 1000;
  const g = new DeviceGrants({ now: () => now, ttl: 600, interval: 5 });
  const a = g.create("cli", "openid")!;
  match(a.userCode, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assertEquals(normalizeUserCode(a.userCode.toLowerCase().replace("-", " ")), a.userCode);
  assertEquals(g.poll(a.deviceCode, "cli").kind, "pending");
  assertEquals(g.poll(a.deviceCode, "cli").kind, "slow_down");
  assertEquals(g.poll(a.deviceCode, "other-client").kind, "invalid");
  assertEquals(g.poll("fxd-guess", "cli").kind, "invalid");
  assert(g.approve(a.userCode, { id: 7, username: "alice" }));
  const r = g.poll(a.deviceCode, "cli");
  assertEquals(r.kind, "approved");
  assertEquals(g.poll(a.deviceCode, "cli").kind, "invalid", "answered once");
  // wrong passwords deny it
  const b = g.create("cli", "openid")!;
  for (let i = 1; i < MAX_FAILURES; i++) assert(!g.failed(b.userCode));
  assert(g.failed(b.userCode));
  assert(!g.approve(b.userCode, { id: 7, username: "alice" }));
  assertEquals(g.poll(b.deviceCode, "cli").kind, "denied");
  // expiry
  const c = g.create("cli", "openid")!;
  now += 601;
  assertEquals(g.pending(c.userCode), undefined);
  assertEquals(g.poll(c.deviceCode, "cli").kind, "invalid");
  const d = g.create("cli", "openid")!;
  now += 601;
  assertEquals(g.poll(d.deviceCode, "cli").kind, "expired");
});

Deno.test("progress: a line redrawn on a terminal and erased at the end; nothing otherwise", async () => {
  const quiet: string[] = [];
  const q = progress("waiting", { tty: false, write: (t) => quiet.push(t), periodMs: 5 });
  await new Promise((r) => setTimeout(r, 30));
  q.done();
  assertEquals(quiet, []);
  const shown: string[] = [];
  let now = 0;
  const p = progress("waiting for x", {
    tty: true,
    write: (t) => shown.push(t),
    periodMs: 5,
    now: () => now,
  });
  now = 3000;
  p.update("2 left");
  const deadline = performance.now() + 5000;
  while (shown.length === 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  p.done();
  p.done();
  // deno-lint-ignore no-control-regex
  match(shown[0], /^\r\x1b\[2K. waiting for x: 2 left \(3 s\)$/);
  assertEquals(shown.at(-1), "\r\x1b[2K");
});

Deno.test({
  name: "start: a daemon that does not connect in time is stopped, with the last error shown",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // answers the reachability check, then is overloaded (503) for the daemon's calls
    const ac = new AbortController();
    const srv = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req) =>
        new URL(req.url).search === ""
          ? Response.json({ api: "0.3.4" })
          : Response.json({ reason: "overloaded" }, { status: 503 }),
    );
    const home = homeFor(`http://127.0.0.1:${srv.addr.port}/v2`);
    try {
      const r = await runCli(home, ["start", "--timeout", "3"]);
      assertEquals(r.code, 1, r.stderr);
      match(
        r.stderr,
        /endpoint "default" did not connect within 3 s: .*HTTP 503: overloaded.*; stopped it/,
      );
      assert(!exists(join(home, "default", "daemon.pid")), "nothing left running");
      const log = Deno.readTextFileSync(join(home, "default", "endpoint.log"));
      assert(!/is up/.test(log), log);
    } finally {
      await runCli(home, ["stop"]);
      Deno.removeSync(home, { recursive: true });
      ac.abort();
      await srv.finished;
    }
  },
});

Deno.test({
  name: "start on a terminal shows progress while it waits; piped, it shows none",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const ac = new AbortController();
    const srv = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req) =>
        new URL(req.url).search === ""
          ? Response.json({ api: "0.3.4" })
          : Response.json({ reason: "overloaded" }, { status: 503 }),
    );
    const home = homeFor(`http://127.0.0.1:${srv.addr.port}/v2`);
    try {
      const program = programCommand();
      const cmd = [program.cmd, ...program.args, "start", "--timeout", "2"]
        .map((a) => `'${a}'`).join(" ");
      const out = await new Deno.Command("script", {
        args: ["-qefc", cmd, "/dev/null"],
        env: { FUNCX_HOME: home, NO_COLOR: "1", TERM: "dumb" },
        stdin: "null",
      }).output();
      const tty = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 1, tty);
      match(tty, /waiting for endpoint "default" to connect \(\d s\)/);
      match(tty, /did not connect within 2 s/);
      const piped = await runCli(home, ["start", "--timeout", "2"]);
      assertEquals(piped.code, 1);
      assert(!piped.stderr.includes("waiting for"), piped.stderr);
    } finally {
      await runCli(home, ["stop"]);
      Deno.removeSync(home, { recursive: true });
      ac.abort();
      await srv.finished;
    }
  },
});

Deno.test({
  name: "a block scaled in and a stop log no WARN (the manager's BYE after its removal)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = tempHome();
    const svc = await startService({ home });
    try {
      await addUser(home, "alice", "correct horse battery");
      await writeTokens(home, await loginViaForm(svc.authUrl, "alice", "correct horse battery"));
      await writeGlobalConfig(home, svc);
      assertEquals((await runCli(home, ["configure"])).code, 0);
      Deno.writeTextFileSync(
        join(home, "default", "config.yaml"),
        "provider:\n  init_blocks: 1\n  min_blocks: 0\n  max_blocks: 1\n" +
          "executor:\n  max_idletime: 1\n  heartbeat_period: 1\n  heartbeat_threshold: 5\n",
      );
      const r = await runCli(home, ["--debug", "start"]);
      assertEquals(r.code, 0, r.stderr);
      const log = join(home, "default", "endpoint.log");
      const deadline = performance.now() + 30_000;
      while (!/BYE from manager \S+, already removed/.test(Deno.readTextFileSync(log))) {
        assert(performance.now() < deadline, Deno.readTextFileSync(log));
        await new Promise((r) => setTimeout(r, 100));
      }
      assertEquals((await runCli(home, ["stop"])).code, 0);
      const text = Deno.readTextFileSync(log);
      match(text, /scaling in idle block 0/);
      assert(!/WARN/.test(text), text);
    } finally {
      await runCli(home, ["stop"]);
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test("login to an auth server that is not there says why in one line", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const home = tempHome();
  try {
    Deno.writeTextFileSync(
      join(home, "config.yaml"),
      `auth_address: http://127.0.0.1:${port}/auth\n`,
    );
    const r = await runCli(home, ["login"]);
    assertEquals(r.code, 1);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    match(r.stderr, /^funcx-endpoint: .*connection refused by 127\.0\.0\.1:\d+/);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
