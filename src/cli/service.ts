/**
 * `funcx-endpoint service start|stop|status|add-user|add-client`: the embedded local funcX
 * service (HTTP API + auth server + ZeroMQ forwarder, state in `$FUNCX_HOME/service/`).
 *
 * @example
 * ```ts ignore
 * import { register } from "./service.ts";
 * register(program, ctx); // adds the `service` command group
 * ```
 * @module
 */
import { type Command, Option } from "@commander-js/extra-typings";
import { resolve } from "node:path";
import { servicePaths } from "../config/paths.ts";
import { createLogger, type LogLevel } from "../daemon/log.ts";
import { acquirePidFile, AlreadyRunningError, checkPidFile } from "../daemon/pidfile.ts";
import { spawnDetached } from "../daemon/detach.ts";
import { stopDaemon } from "../daemon/stop.ts";
import { authUrl, readServiceInfo, serviceUrl } from "../service/info.ts";
import { LocalService } from "../service/service.ts";
import { ServiceStore, StoreError } from "../service/store.ts";
import { formatAuditEntry, parseSince, readAudit } from "../service/audit.ts";
import { readLocks } from "../service/shield.ts";
import { checkExposure, PLAIN_HTTP_FLAG } from "../service/tls.ts";
import { type CliContext, CliError, PROGRAM } from "./context.ts";
import { registerGroupCommands } from "./groups.ts";
import { checkEmail } from "../service/groups.ts";
import { progress, withProgress } from "./progress.ts";
import { checkNewPassword, readPassword } from "./password.ts";

/** Parsed `service start` options. */
export interface ServiceStartOptions {
  /** Run in this process. */
  foreground?: boolean;
  /** Started detached (log to the file only). */
  daemon?: boolean;
  /** Interface the HTTP server listens on. */
  host: string;
  /** HTTP port. */
  port: string;
  /** First forwarder port. */
  forwarderPort?: string;
  /** Address endpoints connect to. */
  publicHost?: string;
  /** Accept unmodified funcx-endpoint 0.3 endpoints (trust on first use). */
  legacyEndpoints?: boolean;
  /** Seconds between heartbeats. */
  heartbeatPeriod: string;
  /** Access-token lifetime, seconds. */
  tokenLifetime: string;
  /** Seconds a handed-out result stays readable. */
  resultRetention?: string;
  /** debug, info, warn or error. */
  logLevel: string;
  /** PEM certificate chain: serve HTTPS. */
  tlsCert?: string;
  /** PEM private key of --tls-cert. */
  tlsKey?: string;
  /** Serve plain HTTP on a non-loopback address anyway. */
  insecurePlainHttp?: boolean;
  /** Open connections allowed per client address (turns the connection gate on). */
  maxConnectionsPerAddress?: string;
  /** Seconds a client has to send its request headers (turns the connection gate on). */
  headerTimeout?: string;
}

function _port(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new CliError(`${flag}: expected an integer port 0-65535, got ${JSON.stringify(value)}`);
  }
  return n;
}

function _seconds(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new CliError(
      `${flag}: expected a positive number of seconds, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function _retention(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new CliError(
      `--result-retention: expected a number of seconds (0 or more), got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function _level(value: string): LogLevel {
  if (!["debug", "info", "warn", "error"].includes(value)) {
    throw new CliError(
      `--log-level: expected debug, info, warn or error, got ${JSON.stringify(value)}`,
    );
  }
  return value as LogLevel;
}

/**
 * Validate the start options into the numbers the service needs (CliError on bad input).
 *
 * @example
 * ```ts
 * checkStartOptions({ host: "127.0.0.1", port: "0", heartbeatPeriod: "30", tokenLifetime: "3600", logLevel: "info" });
 * ```
 */
export function checkStartOptions(o: ServiceStartOptions) {
  const port = _port(o.port, "--port");
  const forwarderPort = o.forwarderPort === undefined
    ? undefined
    : _port(o.forwarderPort, "--forwarder-port");
  if (forwarderPort !== undefined && forwarderPort > 65533) {
    throw new CliError("--forwarder-port: must leave room for 3 ports (at most 65533)");
  }
  if (!o.host || /[\s/]/.test(o.host)) {
    throw new CliError(
      `--host: expected an IP address or host name, got ${JSON.stringify(o.host)}`,
    );
  }
  if (!!o.tlsCert !== !!o.tlsKey) {
    throw new CliError("--tls-cert and --tls-key go together: give both PEM files, or neither");
  }
  const tls = o.tlsCert && o.tlsKey
    ? { certFile: resolve(o.tlsCert), keyFile: resolve(o.tlsKey) }
    : undefined;
  try {
    checkExposure(o.host, !!tls, !!o.insecurePlainHttp);
  } catch (e) {
    throw new CliError(`--host: ${(e as Error).message}`);
  }
  let connectionLimits: { perAddress?: number; headerTimeoutMs?: number } | undefined;
  if (o.maxConnectionsPerAddress !== undefined || o.headerTimeout !== undefined) {
    connectionLimits = {};
    if (o.maxConnectionsPerAddress !== undefined) {
      const n = Number(o.maxConnectionsPerAddress);
      if (!/^\d+$/.test(o.maxConnectionsPerAddress) || n < 1) {
        throw new CliError(
          `--max-connections-per-address: expected a positive integer, got ${
            JSON.stringify(o.maxConnectionsPerAddress)
          }`,
        );
      }
      connectionLimits.perAddress = n;
    }
    if (o.headerTimeout !== undefined) {
      connectionLimits.headerTimeoutMs = _seconds(o.headerTimeout, "--header-timeout") * 1000;
    }
  }
  return {
    host: o.host,
    port,
    forwarderPort,
    tls,
    connectionLimits,
    allowPlainHttp: !!o.insecurePlainHttp,
    publicHost: o.publicHost,
    heartbeatPeriod: _seconds(o.heartbeatPeriod, "--heartbeat-period"),
    tokenLifetime: _seconds(o.tokenLifetime, "--token-lifetime"),
    resultRetentionS: _retention(o.resultRetention),
    logLevel: _level(o.logLevel),
    legacyEndpoints: o.legacyEndpoints ?? false,
  };
}

async function _runForeground(ctx: CliContext, o: ServiceStartOptions): Promise<void> {
  const opts = checkStartOptions(o);
  const paths = servicePaths(ctx.home);
  await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  let pid;
  try {
    pid = await acquirePidFile(paths.pidFile);
  } catch (e) {
    if (e instanceof AlreadyRunningError) {
      throw new CliError(
        `the service is already running (pid ${e.pid}); stop it with \`funcx-endpoint service stop\``,
      );
    }
    throw e;
  }
  const log = createLogger({
    file: paths.log,
    level: ctx.debug() ? "debug" : opts.logLevel,
    echo: !o.daemon,
  });
  await Deno.chmod(paths.log, 0o600).catch(() => {}); // may have been created by the detach
  let svc: LocalService;
  try {
    await Deno.remove(paths.infoFile).catch(() => {});
    svc = await LocalService.start({ home: ctx.home, ...opts, log });
  } catch (e) {
    log.error("service", "start failed: %s", (e as Error).message);
    log.close();
    pid.release();
    throw new CliError(`cannot start the service: ${(e as Error).message}`);
  }
  if (!o.daemon) {
    console.log(`funcX service listening: ${serviceUrl(svc.info)} (auth ${authUrl(svc.info)})`);
  }
  const signals = ["SIGTERM", "SIGINT"] as const;
  const onSignal = () => {
    svc.stop();
  };
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const onHup = () => {
    if (!opts.tls) {
      log.info("service", "SIGHUP ignored: no --tls-cert to reload");
      return;
    }
    svc.reloadTls().catch((e) => log.error("service", "TLS reload refused: %s", e.message));
  };
  Deno.addSignalListener("SIGHUP", onHup);
  await svc.done;
  Deno.removeSignalListener("SIGHUP", onHup);
  for (const s of signals) Deno.removeSignalListener(s, onSignal);
  await Deno.remove(servicePaths(ctx.home).infoFile).catch(() => {});
  log.close();
  pid.release();
}

async function _startDetached(ctx: CliContext, o: ServiceStartOptions): Promise<void> {
  checkStartOptions(o);
  const paths = servicePaths(ctx.home);
  await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const s = checkPidFile(paths.pidFile);
  if (s.state === "running") {
    const info = await readServiceInfo(ctx.home);
    throw new CliError(
      `the service is already running (pid ${s.pid}${info ? `, ${serviceUrl(info)}` : ""})`,
    );
  }
  await Deno.remove(paths.infoFile).catch(() => {});
  const args = [
    "service",
    "start",
    "--foreground",
    "--daemon",
    "--host",
    o.host,
    "--port",
    o.port,
    "--heartbeat-period",
    o.heartbeatPeriod,
    "--token-lifetime",
    o.tokenLifetime,
    "--log-level",
    ctx.debug() ? "debug" : o.logLevel,
  ];
  if (o.forwarderPort !== undefined) args.push("--forwarder-port", o.forwarderPort);
  if (o.resultRetention !== undefined) args.push("--result-retention", o.resultRetention);
  if (o.tlsCert && o.tlsKey) {
    args.push("--tls-cert", resolve(o.tlsCert), "--tls-key", resolve(o.tlsKey));
  }
  if (o.insecurePlainHttp) args.push(PLAIN_HTTP_FLAG);
  if (o.maxConnectionsPerAddress !== undefined) {
    args.push("--max-connections-per-address", o.maxConnectionsPerAddress);
  }
  if (o.headerTimeout !== undefined) args.push("--header-timeout", o.headerTimeout);
  if (o.publicHost !== undefined) args.push("--public-host", o.publicHost);
  if (o.legacyEndpoints) args.push("--legacy-endpoints");
  const child = spawnDetached({ args, home: ctx.home, logFile: paths.log });
  let exited = false;
  child.exited.then(() => exited = true, () => exited = true);
  const deadline = performance.now() + 60_000;
  const starting = progress("starting the service");
  try {
    while (performance.now() < deadline) {
      const info = await readServiceInfo(ctx.home);
      if (info && info.pid === child.pid) {
        starting.done();
        child.unref();
        console.log(
          `funcX service started (pid ${info.pid}): API ${serviceUrl(info)}, auth ${
            authUrl(info)
          }, ` +
            `forwarder ports ${info.tasks_port}/${info.results_port}/${info.commands_port}`,
        );
        return;
      }
      if (exited) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    starting.done();
  }
  child.unref();
  throw new CliError(
    `the service did not start: ${await _lastLogLine(paths.log)} (log: ${paths.log})`,
  );
}

async function _lastLogLine(path: string): Promise<string> {
  try {
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    // the detached child's own one-line error already carries the program name
    return (lines[lines.length - 1] ?? "").replace(`${PROGRAM}: `, "");
  } catch {
    return "(no log)";
  }
}

function _openStore(home: string): ServiceStore {
  const paths = servicePaths(home);
  Deno.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  return ServiceStore.open(paths.db);
}

/**
 * Add the `service` command group.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint service start --foreground --port 0
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  const service = program
    .command("service")
    .description("run the embedded local funcX service (web API, auth server, forwarder)");

  service
    .command("start")
    .description("start the service (detached unless --foreground)")
    .option("--foreground", "run in this process until SIGTERM/SIGINT")
    .addOption(
      new Option("--daemon", "internal: started detached, log to the file only").hideHelp(),
    )
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--port <port>", "HTTP port (0 = pick free ports for everything)", "8400")
    .option(
      "--forwarder-port <port>",
      "first forwarder port: tasks, results +1, commands +2 (default port+1)",
    )
    .option("--public-host <host>", "address endpoints connect to (default: --host)")
    .option(
      "--legacy-endpoints",
      "also accept unmodified funcx-endpoint 0.3 endpoints, trusting the first CURVE key that connects for each after its owner registers it (see SECURITY.md)",
    )
    .option("--heartbeat-period <seconds>", "seconds between heartbeats to endpoints", "30")
    .option("--token-lifetime <seconds>", "access-token lifetime in seconds", "172800")
    .option(
      "--result-retention <seconds>",
      "how long a result stays readable after it was handed out (0 = delete at once); default 600",
    )
    .option("--log-level <level>", "debug, info, warn or error", "info")
    .option("--tls-cert <file>", "serve HTTPS with this PEM certificate chain (reloaded on SIGHUP)")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option(
      PLAIN_HTTP_FLAG,
      "serve plain HTTP on a non-loopback --host: passwords, tokens and endpoint secrets cross the network unencrypted",
    )
    .option(
      "--max-connections-per-address <n>",
      "open connections per client address (default 64; limits are on for a non-loopback --host, and on loopback when this or --header-timeout is given)",
    )
    .option(
      "--header-timeout <seconds>",
      "time a client has to send its request headers (default 10)",
    )
    .action(async (o) => {
      if (o.foreground) await _runForeground(ctx, o);
      else await _startDetached(ctx, o);
    });

  service
    .command("stop")
    .description("stop the running service (SIGTERM, then SIGKILL after --timeout)")
    .option("--timeout <seconds>", "how long to wait for a clean exit", "20")
    .action(async (o) => {
      const timeout = _seconds(o.timeout, "--timeout");
      const r = await withProgress(
        "stopping the service",
        stopDaemon({ pidFile: servicePaths(ctx.home).pidFile, timeoutMs: timeout * 1000 }),
      );
      switch (r.result) {
        case "not-running":
          console.log("The service is not running.");
          break;
        case "stale":
          console.log(`The service was not running (cleaned up a stale pid file: ${r.reason}).`);
          await Deno.remove(servicePaths(ctx.home).infoFile).catch(() => {});
          break;
        case "stopped":
          console.log(`Service stopped (pid ${r.pid}).`);
          break;
        case "killed":
          console.log(`Service did not stop within ${timeout} s and was killed (pid ${r.pid}).`);
          await Deno.remove(servicePaths(ctx.home).infoFile).catch(() => {});
          break;
        case "remote":
          throw new CliError(
            `the service runs on host ${r.host} (pid ${r.pid}): stop it there`,
          );
      }
    });

  service
    .command("status")
    .description("show whether the service runs and where it listens")
    .option("--json", "machine-readable output")
    .action(async (o) => {
      const s = checkPidFile(servicePaths(ctx.home).pidFile);
      const info = s.state === "running" ? await readServiceInfo(ctx.home) : undefined;
      const running = s.state === "running";
      const locks = running ? readLocks(servicePaths(ctx.home).dir) : undefined;
      const locked = [...(locks?.users ?? []), ...(locks?.clients ?? [])];
      if (o.json) {
        console.log(JSON.stringify({
          running,
          pid: running ? s.pid : null,
          service_address: info ? serviceUrl(info) : null,
          auth_address: info ? authUrl(info) : null,
          info: info ?? null,
          locks: locks ? { users: locks.users, clients: locks.clients } : null,
        }));
        return;
      }
      if (!running) {
        console.log("Service: stopped");
        return;
      }
      console.log(`Service: running (pid ${s.pid})`);
      if (info) {
        console.log(`  API:       ${serviceUrl(info)}`);
        console.log(`  auth:      ${authUrl(info)}`);
        console.log(
          `  forwarder: ${info.public_host} tasks ${info.tasks_port}, results ${info.results_port}, commands ${info.commands_port}`,
        );
        console.log(`  started:   ${info.started_at}`);
      }
      if (locked.length === 0) console.log("  sign-in locks: none");
      else {
        console.log(`  sign-in locks (${locked.length}, each expires by itself):`);
        for (const l of locked.slice(0, 20)) {
          const key = /^[\w.@:/+-]+$/.test(l.key) ? l.key : JSON.stringify(l.key);
          console.log(`    ${key}  ${l.failures} failures, until ${l.until}`);
        }
        if (locked.length > 20) console.log(`    ... ${locked.length - 20} more (--json)`);
      }
    });

  service
    .command("audit")
    .description("print the audit log (sign-ins, tokens, endpoint registrations, sharing)")
    .option("--since <when>", "only entries since an ISO date/time or a duration (30m, 12h, 7d)")
    .option("--json", "one JSON object a line")
    .action((o) => {
      let since: Date | undefined;
      if (o.since !== undefined) {
        const v = parseSince(o.since);
        if (typeof v === "string") throw new CliError(v);
        since = v;
      }
      for (const e of readAudit(servicePaths(ctx.home).dir, { since })) {
        console.log(o.json ? JSON.stringify(e) : formatAuditEntry(e));
      }
    });

  service
    .command("add-user")
    .description(
      "create a user of the local auth server (password: 12+ characters, asked on the terminal)",
    )
    .argument("<name>", "user name")
    .option("--password-stdin", "read the password from stdin instead of prompting")
    .option("--email <address>", "the user's email address (shown by whoami and to group admins)")
    .action(async (name, o) => {
      if (o.email !== undefined) {
        try {
          checkEmail(o.email);
        } catch (e) {
          throw new CliError(`--email: ${(e as Error).message}`);
        }
      }
      const password = await readPassword(!!o.passwordStdin);
      checkNewPassword(name, password);
      const store = _openStore(ctx.home);
      try {
        const user = store.addUser(name, password);
        if (o.email !== undefined) store.sharing.setEmail(user.id, o.email);
      } catch (e) {
        if (e instanceof StoreError) throw new CliError(e.message);
        throw e;
      } finally {
        store.close();
      }
      console.log(`User "${name}"${o.email ? ` <${o.email}>` : ""} created.`);
    });

  registerGroupCommands(service, ctx, () => _openStore(ctx.home));

  service
    .command("add-client")
    .description("register a service account (OAuth client_credentials); prints its id and secret")
    .argument("<name>", "client name")
    .action((name) => {
      const store = _openStore(ctx.home);
      let c;
      try {
        c = store.addClient(name);
      } catch (e) {
        if (e instanceof StoreError) throw new CliError(e.message);
        throw e;
      } finally {
        store.close();
      }
      console.log(`client_id: ${c.clientId}`);
      console.log(`client_secret: ${c.clientSecret}`);
      console.log(
        "Keep the secret safe; it is shown only once. Endpoints use it via FUNCX_SDK_CLIENT_ID and FUNCX_SDK_CLIENT_SECRET.",
      );
    });
}
