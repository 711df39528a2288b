/**
 * `deno task screenshots`: writes PNG screenshots of the dashboard's main pages to
 * docs/screenshots/ (shown in the README). It runs the real thing: a local service, one
 * endpoint with python3 workers, a few tasks (one failing), the system Chromium.
 *
 * @module
 */
import { join } from "node:path";
import { createWorld, PY } from "../tests/e2e/_world.ts";
import { haveChromium, openBrowser } from "../tests/helpers/browser.ts";

const OUT = join(import.meta.dirname!, "..", "docs", "screenshots");

if (!haveChromium()) {
  console.error("screenshots: /usr/bin/chromium is not installed (apt-get install chromium)");
  Deno.exit(1);
}
await Deno.mkdir(OUT, { recursive: true });
const w = await createWorld();
const browser = await openBrowser({ width: 1200, height: 820 });
try {
  w.configure("main");
  const ep = await w.startEndpoint("main");
  const eid = ep.endpointId;
  const base = w.svc.url.replace(/\/v2$/, "");
  const c = w.client;
  const square = await c.registerFunction(PY.square, "square");
  const sleepy = await c.registerFunction(PY.sleepy, "sleepy");
  const fail = await c.registerFunction(PY.fail, "fail");
  const ids: string[] = [];
  // a few rounds so that the charts have more than one point
  for (let round = 0; round < 4; round++) {
    ids.push(
      ...await c.submit([
        ...Array.from({ length: 10 + 5 * round }, (_, i) => ({
          functionId: square,
          endpointId: eid,
          args: [i],
        })),
        { functionId: sleepy, endpointId: eid, args: [0.5 + round * 0.3, round] },
      ]),
    );
    await c.waitForResults(ids, { timeoutMs: 120_000 });
  }
  const [failId] = await c.submit([{ functionId: fail, endpointId: eid, args: ["x42"] }]);
  await c.waitForResults([failId], { timeoutMs: 120_000 });

  const page = await browser.context.newPage();
  const shot = async (name: string, url: string, ready?: string) => {
    await page.goto(url);
    if (ready) await page.waitForSelector(ready, { timeout: 30_000 });
    await page.screenshot({ path: join(OUT, name), fullPage: true });
    console.log(`wrote docs/screenshots/${name}`);
  };
  await shot("anonymous.png", `${base}/dashboard/`);
  await page.click("#sign-in");
  await page.waitForURL(/\/auth\/v2\/oauth2\/authorize\?/);
  await page.screenshot({ path: join(OUT, "sign-in.png") });
  console.log("wrote docs/screenshots/sign-in.png");
  await page.fill("#username", "alice");
  await page.fill("#password", "alice-pw");
  await Promise.all([page.waitForURL(`${base}/dashboard/`), page.click("#login")]);
  await shot("overview.png", `${base}/dashboard/`, "#charts[data-loaded='1']");
  await shot("endpoint.png", `${base}/dashboard/endpoints/${eid}`, "#charts[data-loaded='1']");
  await shot("tasks.png", `${base}/dashboard/tasks`);
  await shot("task-result.png", `${base}/dashboard/tasks/${ids.at(-1)}`);
  await shot("task-traceback.png", `${base}/dashboard/tasks/${failId}`);
} finally {
  await browser.close();
  await w.close();
}
