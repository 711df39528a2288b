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
  /** Accept unmodified funcx-endpoint 0.3 endpoints, trusted on first use (default false). */
  legacyEndpoints?: boolean;
  /** Logger. */
  log: Logger;
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
  #server: Deno.HttpServer<Deno.NetAddr>;
  #hub: ResultsSocketHub;
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
  ) {
    this.#hub = hub;
    this.info = info;
    this.store = store;
    this.forwarder = forwarder;
    this.#server = server;
    this.#log = log;
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
    const store = ServiceStore.open(paths.db);
    let forwarder: Forwarder | undefined;
    let server: Deno.HttpServer<Deno.NetAddr> | undefined;
    try {
      forwarder = await Forwarder.start({
        store,
        curveDir: paths.curveDir,
        host,
        basePort: port === 0 ? 0 : (opts.forwarderPort ?? port + 1),
        heartbeatPeriod: opts.heartbeatPeriod ?? 30,
        log,
      });
      const auth = new AuthServer({ store, tokenLifetime: opts.tokenLifetime ?? 48 * 3600, log });
      const hub = new ResultsSocketHub({ store, auth, log });
      forwarder.onResultsStored = (ids) => hub.resultsStored(ids);
      const api = new ApiServer({
        store,
        auth,
        forwarder,
        publicHost,
        legacyEndpoints: opts.legacyEndpoints ?? false,
        log,
      });
      const listening = Promise.withResolvers<Deno.NetAddr>();
      try {
        server = Deno.serve({
          hostname: host,
          port,
          onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
          onError: (e) => {
            log.error("http", "unhandled error: %s", (e as Error)?.stack ?? e);
            return json(new ApiError(ErrorCode.InternalError, "Internal error").record(), 500);
          },
        }, (req, info) => _route(req, info, { api, auth, store, forwarder: forwarder!, hub }));
      } catch (e) {
        throw new Error(`cannot listen on ${host}:${port} (HTTP): ${(e as Error).message}`);
      }
      const addr = await listening.promise;
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
      };
      await writeServiceInfo(opts.home, info);
      log.info(
        "service",
        "listening on http://%s:%d (forwarder %d/%d/%d)",
        host,
        info.port,
        info.tasks_port,
        info.results_port,
        info.commands_port,
      );
      return new LocalService(info, store, forwarder, server, hub, log);
    } catch (e) {
      await server?.shutdown().catch(() => {});
      await forwarder?.close().catch(() => {});
      store.close();
      throw e;
    }
  }

  /** Stop HTTP and the forwarder (flushing pending results/acks), close the database. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info("service", "stopping");
      this.#hub.close();
      await this.#server.shutdown().catch(() => {});
      await this.forwarder.close();
      this.store.close();
      this.#log.info("service", "stopped");
      this.#resolveDone();
    })();
    return this.#stopping;
  }
}

function _route(
  req: Request,
  info: Deno.ServeHandlerInfo,
  ctx: {
    api: ApiServer;
    auth: AuthServer;
    store: ServiceStore;
    forwarder: Forwarder;
    hub: ResultsSocketHub;
  },
): Response | Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  if (RESULTS_WS_PATHS.includes(path)) return ctx.hub.handle(req);
  if (path === "/" || path === "/index.html") {
    return renderStatusPage(req, info, ctx.store, ctx.forwarder, ctx.auth);
  }
  if (path.startsWith("/auth/")) return ctx.auth.handle(req, path.slice("/auth".length));
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
