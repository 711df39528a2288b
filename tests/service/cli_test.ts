/**
 * `funcx-endpoint service ...` run as the real CLI (`deno run <COMPILE_FLAGS> main.ts`):
 * detached start / status / stop, add-user, add-client, and bad flags.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../helpers/cli.ts";
import { loginViaForm } from "../helpers/service.ts";
import { checkStartOptions } from "../../src/cli/service.ts";
import { CliError } from "../../src/cli/context.ts";
import { createLogger } from "../../src/daemon/log.ts";
import { LocalService } from "../../src/service/service.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("service cli: add-user, add-client, detached start, status, stop", opts, async () => {
  const home = await Deno.makeTempDir({ prefix: "fx-svc-cli-" });
  try {
    const add = await runCli(home, ["service", "add-user", "alice", "--password-stdin"], {
      stdin: "s3cret passphrase\n",
    });
    assertEquals(add.code, 0, add.stderr);
    match(add.stdout, /User "alice" created/);
    const dup = await runCli(home, ["service", "add-user", "alice", "--password-stdin"], {
      stdin: "another passphrase\n",
    });
    assertEquals(dup.code, 1);
    match(dup.stderr, /funcx-endpoint: user "alice" already exists/);
    const noTty = await runCli(home, ["service", "add-user", "bob"]);
    assertEquals(noTty.code, 1);
    match(noTty.stderr, /use --password-stdin/);

    const client = await runCli(home, ["service", "add-client", "robot"]);
    assertEquals(client.code, 0, client.stderr);
    match(client.stdout, /^client_id: [0-9a-f-]{36}$/m);
    match(client.stdout, /^client_secret: fxs_\S+$/m);

    const start = await runCli(home, [
      "service",
      "start",
      "--port",
      "0",
      "--heartbeat-period",
      "1",
    ]);
    assertEquals(start.code, 0, start.stderr);
    match(start.stdout, /funcX service started \(pid \d+\): API http:\/\/127\.0\.0\.1:\d+\/v2/);
    const info = JSON.parse(await Deno.readTextFile(join(home, "service", "service.json")));
    assertEquals(typeof info.tasks_port, "number");
    const status = await runCli(home, ["service", "status", "--json"]);
    const st = JSON.parse(status.stdout);
    assertEquals(st.running, true);
    assertEquals(st.pid, info.pid);
    assertEquals(st.service_address, `http://127.0.0.1:${info.port}/v2`);
    // the detached service really serves, and the user added before start can log in
    const tokens = await loginViaForm(st.auth_address, "alice", "s3cret passphrase");
    assert(tokens.access_token.startsWith("fxa_"));
    const again = await runCli(home, ["service", "start", "--port", "0"]);
    assertEquals(again.code, 1);
    match(again.stderr, /the service is already running \(pid \d+/);

    const stop = await runCli(home, ["service", "stop"]);
    assertEquals(stop.code, 0, stop.stderr);
    match(stop.stdout, /Service stopped \(pid \d+\)/);
    match((await runCli(home, ["service", "stop"])).stdout, /The service is not running/);
    const log = await Deno.readTextFile(join(home, "service", "service.log"));
    match(log, /listening on http/);
    assert(!log.includes(tokens.access_token), "token in the log");
    for (const f of ["curve/server.key_secret", "funcx.sqlite", "service.log"]) {
      assertEquals((await Deno.stat(join(home, "service", f))).mode! & 0o777, 0o600, f);
    }
    assertEquals((await Deno.stat(join(home, "service"))).mode! & 0o777, 0o700);
  } finally {
    await runCli(home, ["service", "stop"]).catch(() => {});
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

Deno.test("service cli: bad flags give one-line errors", opts, async () => {
  const home = await Deno.makeTempDir({ prefix: "fx-svc-cli-" });
  try {
    const r = await runCli(home, ["service", "start", "--foreground", "--port", "99999"]);
    assertEquals(r.code, 1);
    match(r.stderr, /^funcx-endpoint: --port: expected an integer port 0-65535, got "99999"\n$/);
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

Deno.test("service cli: start options are validated", () => {
  const base = {
    host: "127.0.0.1",
    port: "0",
    heartbeatPeriod: "30",
    tokenLifetime: "3600",
    logLevel: "info",
  };
  assertEquals(checkStartOptions(base).port, 0);
  assertEquals(checkStartOptions({ ...base, resultRetention: "0" }).resultRetentionS, 0);
  const cases: [
    Partial<typeof base> & { forwarderPort?: string; resultRetention?: string },
    RegExp,
  ][] = [
    [{ resultRetention: "-5" }, /--result-retention: expected a number of seconds \(0 or more\)/],
    [{ port: "abc" }, /--port: expected an integer port 0-65535/],
    [{ heartbeatPeriod: "-1" }, /--heartbeat-period: expected a positive number of seconds/],
    [{ tokenLifetime: "x" }, /--token-lifetime: expected a positive number of seconds/],
    [{ forwarderPort: "65535" }, /--forwarder-port: must leave room for 3 ports/],
    [{ logLevel: "loud" }, /--log-level: expected debug, info, warn or error/],
    [{ host: "a b" }, /--host: expected an IP address or host name/],
  ];
  for (const [o, re] of cases) {
    let msg = "";
    try {
      checkStartOptions({ ...base, ...o });
    } catch (e) {
      assert(e instanceof CliError);
      msg = e.message;
    }
    match(msg, re);
  }
});

Deno.test("service: a busy port gives a clear error naming it", opts, async () => {
  const home = await Deno.makeTempDir({ prefix: "fx-svc-port-" });
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  try {
    let msg = "";
    try {
      await LocalService.start({
        home,
        port,
        forwarderPort: 0,
        log: createLogger({ level: "error" }),
      });
    } catch (e) {
      msg = (e as Error).message;
    }
    match(msg, new RegExp(`cannot (listen|bind).*127\\.0\\.0\\.1:${port}`));
  } finally {
    busy.close();
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});
