import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { decodePickle } from "../../src/protocol/pickle/mod.ts";
import { decodeRemoteException } from "../../src/protocol/serialize.ts";
import { parseManagerFlags } from "../../src/cli/manager.ts";
import { encodeFrame, FrameReader, FrameTooLargeError } from "../../src/engine/frames.ts";
import { lostTaskResult } from "../../src/engine/lost.ts";
import { workerEnv } from "../../src/engine/manager.ts";
import {
  decodeInterchangeMessage,
  decodeManagerMessage,
  encodeBare,
  encodeBye,
  encodeCapacity,
  encodeRegister,
  encodeResults,
  encodeStarted,
  encodeTasks,
  taskHeader,
  WireError,
} from "../../src/engine/wire.ts";

const enc = new TextEncoder();

Deno.test("wire: every message round-trips", () => {
  const reg = { uid: "m1", block_id: "0", hostname: "h", pid: 5, workers: 2, cores: 4, token: "t" };
  assertEquals(decodeManagerMessage(encodeRegister(reg)), { type: "REGISTER", ...reg });
  assertEquals(decodeManagerMessage(encodeCapacity({ free: 1, queued: 3 })), {
    type: "CAPACITY",
    free: 1,
    queued: 3,
    problem: null,
  });
  assertEquals(
    decodeManagerMessage(encodeCapacity({ free: 0, queued: 0, problem: "workers exit" })),
    { type: "CAPACITY", free: 0, queued: 0, problem: "workers exit" },
  );
  const results = [
    { taskId: "a", failed: false, message: new Uint8Array([1, 2]) },
    { taskId: "b", failed: true, message: new Uint8Array([3]) },
  ];
  assertEquals(decodeManagerMessage(encodeResults(results)), { type: "RESULTS", results });
  assertEquals(decodeManagerMessage(encodeBye("SHUTDOWN")), { type: "BYE", reason: "SHUTDOWN" });
  assertEquals(decodeManagerMessage(encodeStarted(["a", "b"])), {
    type: "STARTED",
    taskIds: ["a", "b"],
  });
  const started = enc.encode("STARTED");
  for (const bad of [[started, enc.encode("{}")], [started, enc.encode("[1]")], [started]]) {
    throws(() => decodeManagerMessage(bad), WireError);
  }
  assertEquals(decodeManagerMessage(encodeBare("HEARTBEAT")), { type: "HEARTBEAT" });
  const tasks = [{ taskId: "t", body: new Uint8Array([5, 6]) }];
  assertEquals(decodeInterchangeMessage(encodeTasks(tasks)), { type: "TASKS", tasks });
  assertEquals(decodeInterchangeMessage(encodeBare("SHUTDOWN")), { type: "SHUTDOWN" });
});

Deno.test("wire: malformed frames raise one-line WireErrors", () => {
  const bad: [Uint8Array[], RegExp][] = [
    [[], /without a valid type frame/],
    [[enc.encode("NOPE")], /unknown message type "NOPE"/],
    [[new Uint8Array([0xff, 0xfe])], /not UTF-8/],
    [[enc.encode("REGISTER")], /REGISTER: missing JSON frame/],
    [[enc.encode("REGISTER"), enc.encode("{oops")], /not valid UTF-8 JSON/],
    [[enc.encode("REGISTER"), enc.encode("[]")], /expected a JSON object/],
    [[enc.encode("REGISTER"), enc.encode('{"uid":"","block_id":"0","workers":1}')], /uid/],
    [[enc.encode("REGISTER"), enc.encode('{"uid":"a","block_id":"0","workers":-1}')], /workers/],
    [[enc.encode("CAPACITY"), enc.encode('{"free":1.5}')], /CAPACITY.free/],
    [[enc.encode("RESULTS"), enc.encode('[{"task_id":"a"}]')], /1 items but 0 data frames/],
    [[enc.encode("RESULTS"), enc.encode('{"task_id":"a"}'), enc.encode("x")], /JSON list/],
    [[enc.encode("RESULTS"), enc.encode("[7]"), enc.encode("x")], /RESULTS\[0\]/],
  ];
  for (const [frames, re] of bad) {
    throws(
      () => decodeManagerMessage(frames),
      (e: Error) => e instanceof WireError && re.test(e.message),
    );
  }
  throws(
    () => decodeInterchangeMessage([enc.encode("TASKS"), enc.encode("[]"), enc.encode("x")]),
    WireError,
  );
});

Deno.test("wire: taskHeader reads TID and CID of upstream Task messages", () => {
  assertEquals(taskHeader(enc.encode("\x05TID=abc;CID=RAW;12\n00\nxx")), {
    taskId: "abc",
    containerId: "RAW",
  });
  assertEquals(taskHeader(enc.encode("\x02TID=abc;CID=RAW;x")), undefined);
  assertEquals(taskHeader(enc.encode("\x05garbage-garbage")), undefined);
});

Deno.test("frames: split anywhere, several per chunk, size limit", () => {
  const payloads = [new Uint8Array([1]), new Uint8Array(0), new Uint8Array(300).fill(7)];
  const stream = new Uint8Array(payloads.reduce((n, p) => n + 4 + p.length, 0));
  let off = 0;
  for (const p of payloads) {
    stream.set(encodeFrame(p), off);
    off += 4 + p.length;
  }
  for (const step of [1, 3, 5, 64, stream.length]) {
    const r = new FrameReader(1000);
    const got: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += step) got.push(...r.push(stream.subarray(i, i + step)));
    assertEquals(got, payloads, `step ${step}`);
    assertEquals(r.buffered, 0);
  }
  const r = new FrameReader(10);
  throws(() => r.push(encodeFrame(new Uint8Array(11))), FrameTooLargeError);
});

Deno.test("lost: generated failures are RemoteExceptionWrapper-compatible result dicts", () => {
  const d = decodePickle(lostTaskResult("t1", "WorkerLost", "worker 3 died", "RAW")) as Record<
    string,
    unknown
  >;
  assertEquals(d.task_id, "t1");
  assertEquals(d.container_id, "RAW");
  const info = decodeRemoteException(String(d.exception));
  assertEquals(info.type, "WorkerLost");
  assert(info.message.includes("worker 3 died"));
  assert(info.traceback.includes("WorkerLost: worker 3 died"));
  const m = decodePickle(lostTaskResult("t2", "ManagerLost", "gone")) as Record<string, unknown>;
  assertEquals("container_id" in m, false);
});

Deno.test("manager: worker environment has no credentials", () => {
  assertEquals(
    workerEnv({
      PATH: "/bin",
      HOME: "/root",
      FUNCX_SDK_CLIENT_ID: "id",
      FUNCX_SDK_CLIENT_SECRET: "s",
      GITHUB_TOKEN: "t",
      AWS_SECRET_ACCESS_KEY: "k",
      DB_PASSWORD: "p",
      FUNCX_HOME: "/h",
    }),
    { PATH: "/bin", HOME: "/root", FUNCX_HOME: "/h" },
  );
});

Deno.test("manager: flags are validated with clear one-line errors", () => {
  const ok = { taskUrl: "tcp://127.0.0.1:5000", blockId: "0", workerScript: "/w.py", logdir: "/l" };
  const o = parseManagerFlags({ ...ok, workers: "3", hbPeriod: "0.5" });
  assertEquals([o.workers, o.hbPeriod, o.hbThreshold, o.python], [3, 0.5, 30, "python3"]);
  const bad: [Record<string, string>, RegExp][] = [
    [{ taskUrl: "http://x" }, /--task-url: "http:\/\/x" is invalid; expected tcp:\/\/HOST:PORT/],
    [{ blockId: "a b" }, /--block-id/],
    [{ workers: "two" }, /--workers: "two" is invalid; expected a number >= 0/],
    [{ hbThreshold: "0" }, /--hb-threshold/],
    [{ logLevel: "loud" }, /--log-level: "loud" is invalid; expected debug\|info\|warn\|error/],
  ];
  for (const [over, re] of bad) throws(() => parseManagerFlags({ ...ok, ...over }), re);
});
