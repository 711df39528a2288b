/**
 * Shared setup of the service tests: an in-process {@linkcode LocalService} on free ports
 * in a temp home, with users alice and bob logged in through the real PKCE form flow.
 *
 * @example
 * ```ts
 * await withService(async (t) => {
 *   const res = await fetch(`${t.url}/version`);
 * });
 * ```
 * @module
 */
import { join } from "node:path";
import { createLogger } from "../../src/daemon/log.ts";
import { LocalService } from "../../src/service/service.ts";
import { addUser, loginViaForm } from "../helpers/service.ts";
import { closeAllEndpoints } from "./_endpoint.ts";

/** What a test gets. */
export interface ServiceFixture {
  home: string;
  svc: LocalService;
  url: string;
  authUrl: string;
  alice: string;
  bob: string;
  /** The service log so far. */
  log(): string;
}

/** Options of {@linkcode withService}. */
export interface FixtureOptions {
  heartbeatPeriod?: number;
  home?: string;
  users?: boolean;
}

/** Start a service, log alice and bob in, run `fn`, stop and clean up. */
export async function withService(
  fn: (t: ServiceFixture) => Promise<void>,
  opts: FixtureOptions = {},
): Promise<void> {
  const home = opts.home ?? await Deno.makeTempDir({ prefix: "fx-svc-" });
  const logFile = join(home, "test-service.log");
  const log = createLogger({ file: logFile, level: "debug" });
  const svc = await LocalService.start({
    home,
    port: 0,
    heartbeatPeriod: opts.heartbeatPeriod ?? 30,
    log,
  });
  const base = `http://127.0.0.1:${svc.info.port}`;
  try {
    let alice = "";
    let bob = "";
    if (opts.users !== false) {
      await addUser(home, "alice", "alice-pw");
      await addUser(home, "bob", "bob-pw");
      alice = (await loginViaForm(`${base}/auth`, "alice", "alice-pw")).access_token;
      bob = (await loginViaForm(`${base}/auth`, "bob", "bob-pw")).access_token;
    }
    await fn({
      home,
      svc,
      url: `${base}/v2`,
      authUrl: `${base}/auth`,
      alice,
      bob,
      log: () => Deno.readTextFileSync(logFile),
    });
  } finally {
    await closeAllEndpoints();
    await svc.stop();
    log.close();
    if (!opts.home) await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

/** fetch with a bearer token and JSON body; returns status and parsed body. */
export async function api(
  url: string,
  token: string | null,
  method = "GET",
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { _text: text };
  }
  return { status: res.status, body: parsed };
}

/** Wait until `pred()` is true (polling every 20 ms) or fail after `timeoutMs`. */
export async function eventually(
  pred: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Await `fn()`, expect it to throw an instance of `cls`, and return the error. */
export async function rejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}
