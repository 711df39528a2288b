/**
 * The local funcX service: HTTP API + auth server + status page on one port, the
 * ZeroMQ forwarder on three more, state in SQLite under `$FUNCX_HOME/service/`.
 *
 * @example
 * ```ts
 * import { LocalService } from "./service.ts";
 * import { createLogger } from "../daemon/log.ts";
 * const svc = await LocalService.start({ home: "/tmp/h", port: 0, log: createLogger() });
 * console.log(svc.info.port);
 * await svc.stop();
 * ```
 * @module
 */
import { servicePaths } from "../config/paths.ts";
import type { Logger } from "../daemon/log.ts";
import { ApiError, ErrorCode } from "./errors.ts";
import { json } from "./http.ts";
import { SERVICE_VERSION, type ServiceInfo, writeServiceInfo } from "./info.ts";
import { ServiceStore } from "./store.ts";
import { ApiServer } from "./api.ts";
import { AuthServer } from "./auth.ts";
import { Forwarder } from "./forwarder.ts";
import { renderStatusPage } from "./status_page.ts";
import { RESULTS_WS_PATHS, ResultsSocketHub } from "./websocket.ts";
import { Dashboard } from "./dashboard/mod.ts";
import { AuditLog } from "./audit.ts";
import { Shield, type ShieldOptions } from "./shield.ts";
import { checkExposure, isLoopback, loadTlsPair, type TlsFiles, type TlsPair } from "./tls.ts";
import { ConnectionGate, type GateLimits } from "./gate.ts";

/** Options of {@linkcode LocalService.start}. */
export interface ServiceOptions {
  /** funcX home. */
  home: string;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** HTTP port (default 8400; 0 = pick a free one, forwarder ports too). */
  port?: number;
  /** First forwarder port (tasks; results +1, commands +2). Default port+1, or free when port 0. */
  forwarderPort?: number;
  /** Address endpoints connect to (default: host). */
  publicHost?: string;
  /** Seconds between forwarder heartbeats (default 30). */
  heartbeatPeriod?: number;
  /** Access-token lifetime in seconds (default 48 h). */
  tokenLifetime?: number;
  /** Seconds a handed-out result stays readable (default 600; 0 = delete at once). */
  resultRetentionS?: number;
  /** Accept unmodified funcx-endpoint 0.3 endpoints, trusted on first use (default false). */
  legacyEndpoints?: boolean;
  /** Logger. */
  log: Logger;
  /** Serve HTTPS with this certificate chain and key (PEM files). */
  tls?: TlsFiles;
  /** Serve plain HTTP on a non-loopback address (passwords and tokens in clear text). */
  allowPlainHttp?: boolean;
  /** Limits of the defences (tests use small ones). */
  shield?: Omit<ShieldOptions, "dir" | "audit" | "tls">;
  /**
   * Connection limits (per address, total, header-read and idle timeouts; see gate.ts), or
   * `false` for none. Default: on for a non-loopback host, off on loopback.
   */
  connectionLimits?: Partial<GateLimits> | false;
}

/** A running service. */
export class LocalService {
  /** Contents of service.json. */
  readonly info: ServiceInfo;
  /** The service database. */
  readonly store: ServiceStore;
  /** The forwarder. */
  readonly forwarder: Forwarder;
  /** Resolves when {@linkcode LocalService.stop} has finished. */
  readonly done: Promise<void>;
  /** The defences (guessing limits, hasher, rate limits, CSRF, audit). */
  readonly shield: Shield;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #hub: ResultsSocketHub;
  #serve: (tls: TlsPair | undefined, port: number) => Promise<Deno.HttpServer<Deno.NetAddr>>;
  #tlsFiles?: TlsFiles;
  #gate?: ConnectionGate;
  #audit: AuditLog;
  #log: Logger;
  #resolveDone: () => void;
  #stopping?: Promise<void>;

  private constructor(
    info: ServiceInfo,
    store: ServiceStore,
    forwarder: Forwarder,
    server: Deno.HttpServer<Deno.NetAddr>,
    hub: ResultsSocketHub,
    log: Logger,
    parts: {
      shield: Shield;
      audit: AuditLog;
      serve: (tls: TlsPair | undefined, port: number) => Promise<Deno.HttpServer<Deno.NetAddr>>;
      tlsFiles?: TlsFiles;
      gate?: ConnectionGate;
    },
  ) {
    this.#hub = hub;
    this.info = info;
    this.store = store;
    this.forwarder = forwarder;
    this.#server = server;
    this.#log = log;
    this.shield = parts.shield;
    this.#audit = parts.audit;
    this.#serve = parts.serve;
    this.#tlsFiles = parts.tlsFiles;
    this.#gate = parts.gate;
    const d = Promise.withResolvers<void>();
    this.done = d.promise;
    this.#resolveDone = d.resolve;
  }

  /** Open the state, bind HTTP and the forwarder, write `service.json`. */
  static async start(opts: ServiceOptions): Promise<LocalService> {
    const paths = servicePaths(opts.home);
    await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
    const host = opts.host ?? "127.0.0.1";
    const port = opts.port ?? 8400;
    const publicHost = opts.publicHost ??
      (host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host);
    const log = opts.log;
    checkExposure(host, !!opts.tls, !!opts.allowPlainHttp);
    const tls = opts.tls ? await loadTlsPair(opts.tls) : undefined;
    const store = ServiceStore.open(paths.db, { resultRetentionS: opts.resultRetentionS });
    let forwarder: Forwarder | undefined;
    let server: Deno.HttpServer<Deno.NetAddr> | undefined;
    let gate: ConnectionGate | undefined;
    let audit: AuditLog | undefined;
    try {
      audit = AuditLog.open(paths.dir);
      const shield = new Shield({ ...opts.shield, dir: paths.dir, audit, tls: !!tls });
      forwarder = await Forwarder.start({
        store,
        curveDir: paths.curveDir,
        host,
        basePort: port === 0 ? 0 : (opts.forwarderPort ?? port + 1),
        heartbeatPeriod: opts.heartbeatPeriod ?? 30,
        log,
      });
      const auth = new AuthServer({
        store,
        tokenLifetime: opts.tokenLifetime ?? 48 * 3600,
        log,
        shield,
      });
      const hub = new ResultsSocketHub({ store, auth, log });
      forwarder.onResultsStored = (ids) => hub.resultsStored(ids);
      const api = new ApiServer({
        store,
        auth,
        forwarder,
        publicHost,
        legacyEndpoints: opts.legacyEndpoints ?? false,
        log,
        audit,
      });
      const limits = opts.connectionLimits === false
        ? undefined
        : opts.connectionLimits ?? (isLoopback(host) ? undefined : {});
      const dash = new Dashboard({ store, auth, forwarder, log, tls: !!tls });
      const ctx: _RouteContext = { api, auth, store, forwarder, hub, shield, tls: !!tls, dash };
      const serve = async (pair: TlsPair | undefined, onPort: number, hostname = host) => {
        const listening = Promise.withResolvers<Deno.NetAddr>();
        let s: Deno.HttpServer<Deno.NetAddr>;
        try {
          s = Deno.serve({
            hostname,
            port: onPort,
            ...(pair ?? {}),
            onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
            onError: (e) => {
              log.error("http", "unhandled error: %s", (e as Error)?.stack ?? e);
              return json(new ApiError(ErrorCode.InternalError, "Internal error").record(), 500);
            },
          }, (req, info) => _route(req, info, ctx));
        } catch (e) {
          throw new Error(
            `cannot listen on ${host}:${onPort} (${pair ? "HTTPS" : "HTTP"}): ${
              (e as Error).message
            }`,
          );
        }
        await listening.promise;
        return s;
      };
      let addr: Deno.NetAddr;
      if (limits) {
        // the gate owns the public port and TLS; the HTTP server listens on loopback only
        server = await serve(undefined, 0, "127.0.0.1");
        try {
          gate = await ConnectionGate.start({
            hostname: host,
            port,
            innerPort: server.addr.port,
            tls,
            limits,
            onRefused: (a, why) => log.warn("http", "connection from %s closed: %s", a, why),
          });
        } catch (e) {
          throw new Error(`cannot listen on ${host}:${port}: ${(e as Error).message}`);
        }
        ctx.gate = gate;
        addr = gate.addr;
      } else {
        server = await serve(tls, port);
        addr = server.addr;
      }
      const info: ServiceInfo = {
        pid: Deno.pid,
        host,
        port: addr.port,
        public_host: publicHost,
        tasks_port: forwarder.ports.tasks,
        results_port: forwarder.ports.results,
        commands_port: forwarder.ports.commands,
        started_at: new Date().toISOString(),
        version: SERVICE_VERSION,
        ...(tls ? { tls: true } : {}),
      };
      await writeServiceInfo(opts.home, info);
      audit.record("service.started", { host, port: addr.port, tls: !!tls });
      log.info(
        "service",
        "listening on %s://%s:%d (forwarder %d/%d/%d)",
        tls ? "https" : "http",
        host,
        info.port,
        info.tasks_port,
        info.results_port,
        info.commands_port,
      );
      return new LocalService(info, store, forwarder, server, hub, log, {
        shield,
        audit,
        serve,
        tlsFiles: opts.tls,
        gate,
      });
    } catch (e) {
      await gate?.close().catch(() => {});
      await server?.shutdown().catch(() => {});
      await forwarder?.close().catch(() => {});
      audit?.close();
      store.close();
      throw e;
    }
  }

  /**
   * Re-read the TLS certificate and key (on SIGHUP) and serve new connections with them.
   * A pair that does not load or match is refused with an error and the old one stays.
   * Open connections finish on the old certificate.
   *
   * @example
   * ```ts ignore
   * Deno.addSignalListener("SIGHUP", () => svc.reloadTls().catch((e) => console.error(e.message)));
   * ```
   */
  async reloadTls(): Promise<void> {
    if (!this.#tlsFiles) throw new Error("the service does not serve TLS (no --tls-cert)");
    if (this.#stopping) return;
    const pair = await loadTlsPair(this.#tlsFiles);
    if (this.#gate) {
      await this.#gate.reload(pair);
      this.#audit.record("service.tls.reloaded", { cert: this.#tlsFiles.certFile });
      this.#log.info("service", "TLS certificate reloaded from %s", this.#tlsFiles.certFile);
      return;
    }
    const old = this.#server;
    const closing = old.shutdown().catch(() => {});
    // The listener is closed at once; bind the same port again with the new pair.
    let next: Deno.HttpServer<Deno.NetAddr> | undefined;
    const deadline = performance.now() + 5000;
    while (!next) {
      try {
        next = await this.#serve(pair, this.info.port);
      } catch (e) {
        if (performance.now() > deadline) {
          this.#log.error("service", "TLS reload: %s", (e as Error).message);
          throw e;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    this.#server = next;
    this.#audit.record("service.tls.reloaded", { cert: this.#tlsFiles.certFile });
    this.#log.info("service", "TLS certificate reloaded from %s", this.#tlsFiles.certFile);
    await closing;
  }

  /** Stop HTTP and the forwarder (flushing pending results/acks), close the database. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info("service", "stopping");
      this.#hub.close();
      await this.#gate?.close().catch(() => {});
      await this.#server.shutdown().catch(() => {});
      await this.forwarder.close();
      this.shield.close();
      await this.shield.flushLocks().catch(() => {});
      this.#audit.close();
      this.store.close();
      this.#log.info("service", "stopped");
      this.#resolveDone();
    })();
    return this.#stopping;
  }
}

interface _RouteContext {
  api: ApiServer;
  auth: AuthServer;
  store: ServiceStore;
  forwarder: Forwarder;
  hub: ResultsSocketHub;
  shield: Shield;
  tls: boolean;
  gate?: ConnectionGate;
  dash: Dashboard;
}

function _route(
  req: Request,
  info: Deno.ServeHandlerInfo,
  ctx: _RouteContext,
): Response | Promise<Response> {
  if (ctx.gate) {
    // behind the gate: the client is the one the gate let in (a direct connection to the
    // loopback port is local), and the scheme is the gate's
    const remote = info.remoteAddr as Deno.NetAddr;
    const client = ctx.gate.clientOf(remote.port) ?? remote.hostname;
    info = { ...info, remoteAddr: { ...remote, hostname: client } };
    // (a WebSocket upgrade must keep the original request; its URL scheme is not used)
    if (ctx.tls && req.url.startsWith("http:") && !req.headers.has("upgrade")) {
      req = new Request("https:" + req.url.slice(5), {
        method: req.method,
        headers: req.headers,
        body: req.body,
      });
    }
  }
  const url = new URL(req.url);
  const path = url.pathname;
  const addr = (info.remoteAddr as Deno.NetAddr).hostname ?? "unknown";
  if (RESULTS_WS_PATHS.includes(path)) return ctx.hub.handle(req);
  const unauthenticated = path === "/" || path === "/index.html" || path.startsWith("/auth/") ||
    Dashboard.isSignInRoute(path);
  if (unauthenticated) {
    const signin = req.method === "POST" &&
      (path.startsWith("/auth/v2/oauth2/authorize") || path.startsWith("/auth/v2/oauth2/token"));
    const wait = ctx.shield.limitRoute(signin ? "signin" : "public", addr);
    if (wait > 0) return ctx.shield.hold(wait).then(() => _tooMany(wait));
  }
  if (path === "/" || path === "/index.html") {
    return renderStatusPage(req, info, ctx.store, ctx.forwarder, ctx.auth);
  }
  if (Dashboard.owns(path)) return ctx.dash.handle(req, info);
  if (path.startsWith("/auth/")) return ctx.auth.handle(req, path.slice("/auth".length), addr);
  for (const prefix of ["/v2", "/v1", "/api/v1"]) {
    if (path === prefix || path.startsWith(prefix + "/")) {
      return ctx.api.handle(req, path.slice(prefix.length) || "/", info);
    }
  }
  return json(
    new ApiError(ErrorCode.Unknown, `No such route: ${req.method} ${path}`, [path], 404).record(),
    404,
  );
}

function _tooMany(waitMs: number): Response {
  const secs = Math.max(1, Math.ceil(waitMs / 1000));
  return json(
    new ApiError(
      ErrorCode.Unknown,
      `Too many requests from this address; retry in ${secs} s`,
      [],
      429,
    ).record(),
    429,
    { "retry-after": String(secs) },
  );
}
