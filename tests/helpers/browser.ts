/**
 * The real Debian Chromium (`/usr/bin/chromium`, installed by `.ci/run`) driven through
 * `playwright-core` (no browser download): headless, no sandbox (we are root), no network
 * chatter, a fresh profile directory that is removed on close.
 *
 * @example
 * ```ts
 * import { haveChromium, openBrowser } from "../helpers/browser.ts";
 * const b = await openBrowser();
 * try {
 *   const page = await b.context.newPage();
 *   await page.goto("http://127.0.0.1:8400/dashboard/");
 * } finally {
 *   await b.close();
 * }
 * ```
 * @module
 */
import { type BrowserContext, chromium } from "playwright-core";

/** The system browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** The flags every run uses (the profile dir comes from playwright's persistent context). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Is the system Chromium installed?
 *
 * @example
 * ```ts
 * if (!haveChromium()) console.warn("skipped");
 * ```
 */
export function haveChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

/** A browser with a fresh profile. */
export interface OpenBrowser {
  context: BrowserContext;
  /** Close the browser and remove its profile. */
  close(): Promise<void>;
}

/**
 * Launch Chromium with a fresh `--user-data-dir` (a new temp dir).
 *
 * @example
 * ```ts
 * const { context, close } = await openBrowser({ width: 1280, javaScript: false });
 * ```
 */
export async function openBrowser(
  opts: { width?: number; height?: number; javaScript?: boolean } = {},
): Promise<OpenBrowser> {
  const profile = await Deno.makeTempDir({ prefix: "fx-chromium-" });
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 },
      javaScriptEnabled: opts.javaScript ?? true,
      timeout: 60_000,
    });
  } catch (e) {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
