import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  readStopRequest,
  type StopRequest,
  watchStopRequest,
  writeStopRequest,
} from "../../src/daemon/stop_request.ts";

async function until(ms: number, cond: () => boolean) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("a stop request reaches only the daemon it names; old ones are dropped", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-stopreq-" });
  const path = join(dir, "stop.request");
  // a leftover request for an earlier daemon is removed at the start, not acted on
  writeStopRequest(path, { host: "a", pid: 1 }, "b");
  const seen: StopRequest[] = [];
  const w = watchStopRequest(path, { host: "a", pid: 2 }, (r) => seen.push(r), 20);
  assertEquals(readStopRequest(path), undefined);
  writeStopRequest(path, { host: "c", pid: 2 }, "b");
  await until(2000, () => readStopRequest(path) === undefined);
  assertEquals(seen, []);
  writeStopRequest(path, { host: "a", pid: 2 }, "b", new Date(0));
  await until(2000, () => seen.length > 0);
  assertEquals(seen, [{ host: "a", pid: 2, from: "b", time: "1970-01-01T00:00:00.000Z" }]);
  writeStopRequest(path, { host: "a", pid: 2 }, "b");
  await new Promise((r) => setTimeout(r, 100));
  assertEquals(seen.length, 1, "called once");
  assert(readStopRequest(path), "after the first, requests are left alone");
  w.close();
  Deno.removeSync(dir, { recursive: true });
});
