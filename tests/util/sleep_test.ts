import assert from "node:assert/strict";
import { sleep } from "../../src/util/sleep.ts";

Deno.test("sleep waits its time without a signal", async () => {
  const t0 = performance.now();
  await sleep(30);
  assert.ok(performance.now() - t0 >= 25);
});

Deno.test("sleep ends early when its signal aborts, and at once when it already has", async () => {
  const ac = new AbortController();
  const t0 = performance.now();
  setTimeout(() => ac.abort(new Error("stop")), 20);
  await sleep(60_000, ac.signal); // the test's sanitizer fails on a leaked 60 s timer
  assert.ok(performance.now() - t0 < 10_000);
  await sleep(60_000, ac.signal);
});
