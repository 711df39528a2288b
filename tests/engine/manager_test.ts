// The manager against a test-side ZeroMQ ROUTER speaking the interchange protocol, with
// the real embedded Python worker.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import type { PyValue } from "../../src/protocol/pickle/mod.ts";
import { PYTHON_WORKER_SOURCE } from "../../src/engine/python_worker.ts";
import { runManager } from "../../src/engine/manager.ts";
import {
  decodeManagerMessage,
  encodeBare,
  encodeTasks,
  type ManagerMessage,
} from "../../src/engine/wire.ts";
import { Router } from "../../src/io/zmtp/mod.ts";
import { alive, decodeResult, pyTask, tempEndpoint, until } from "./_helpers.ts";

/** The interchange side of the wire, driven by the test. */
class Peer {
  sock = new Router({ mandatory: false });
  messages: ManagerMessage[] = [];
  identity: Uint8Array | undefined;
  url = "";
  /** Answer the manager's heartbeats (like the interchange does). */
  answer = true;

  async start() {
    await this.sock.bind("tcp://127.0.0.1:*");
    this.url = this.sock.lastEndpoint!;
    this.sock.setHandler(([id, ...frames]) => {
      this.identity = id;
      const m = decodeManagerMessage(frames);
      this.messages.push(m);
      if (m.type === "HEARTBEAT" && this.answer) this.send(encodeBare("HEARTBEAT"));
    });
  }

  send(frames: Uint8Array[]) {
    this.sock.send([this.identity!, ...frames]).catch(() => {});
  }

  results() {
    return this.messages.flatMap((m) => m.type === "RESULTS" ? m.results : []).map((r) =>
      decodeResult({ taskId: r.taskId, message: r.message })
    );
  }

  async close() {
    await this.sock.close();
  }
}

async function setup(opts: { hbThreshold?: number; maxIdletime?: number; workers?: number }) {
  const ep = await tempEndpoint();
  const script = join(ep.dir, "funcx_worker.py");
  await Deno.writeTextFile(script, PYTHON_WORKER_SOURCE);
  const peer = new Peer();
  await peer.start();
  const logdir = join(ep.dir, "worker_logs", "0");
  await Deno.mkdir(logdir, { recursive: true });
  const done = runManager({
    taskUrl: peer.url,
    blockId: "0",
    workers: opts.workers ?? 1,
    workerScript: script,
    logdir,
    hbPeriod: 0.2,
    hbThreshold: opts.hbThreshold ?? 30,
    maxIdletime: opts.maxIdletime ?? 0,
    log: ep.log,
  });
  await until(() => peer.messages.some((m) => m.type === "REGISTER"), "REGISTER");
  const reg = peer.messages.find((m) => m.type === "REGISTER")!;
  assert(reg.type === "REGISTER" && reg.block_id === "0");
  return { ep, peer, done };
}

async function runTask(peer: Peer, id: string, name: "ident" | "envkeys", args: PyValue[]) {
  const t = pyTask(id, name, args);
  peer.send(encodeTasks([{ taskId: t.taskId, body: t.body }]));
  await until(() => peer.results().some((r) => r.taskId === id), `result of ${id}`);
  return peer.results().find((r) => r.taskId === id)!;
}

async function teardown(s: Awaited<ReturnType<typeof setup>>) {
  await s.peer.close();
  s.ep.log.close();
  await Deno.remove(s.ep.home, { recursive: true });
}

Deno.test({
  name: "manager: exits when the interchange goes silent, killing its workers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const s = await setup({ hbThreshold: 1.5 });
    try {
      const r = await runTask(s.peer, "a", "ident", [1]);
      assert(r.result, JSON.stringify(r));
      const [, pid] = r.result as [number, number];
      assert(alive(pid));
      s.peer.answer = false;
      const t0 = Date.now();
      assertEquals(await s.done, 0);
      assert(Date.now() - t0 < 60_000);
      await until(() => !alive(pid), "worker killed", 5000);
      assert(s.peer.messages.some((m) => m.type === "HEARTBEAT"));
      await until(() => s.peer.messages.at(-1)?.type === "BYE", "BYE");
      const bye = s.peer.messages.at(-1)!;
      assert(bye.type === "BYE" && bye.reason.includes("no message from the interchange"));
    } finally {
      await teardown(s);
    }
  },
});

Deno.test({
  name: "manager: SHUTDOWN stops it; garbage frames are ignored; workers have no secrets",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    Deno.env.set("FUNCX_SDK_CLIENT_SECRET", "very-secret-value");
    let s: Awaited<ReturnType<typeof setup>> | undefined;
    try {
      s = await setup({});
      const enc = new TextEncoder();
      s.peer.send([enc.encode("TASKS"), enc.encode("{not json")]);
      s.peer.send([new Uint8Array([0xff, 0x00, 0x13])]);
      s.peer.send([enc.encode("TASKS"), enc.encode('[{"task_id":"x"}]')]);
      s.peer.send([]);
      const r = await runTask(s.peer, "env", "envkeys", []);
      assert(r.result, JSON.stringify(r));
      const keys = r.result as string[];
      assert(keys.includes("PATH"), keys.join(","));
      assert(!keys.includes("FUNCX_SDK_CLIENT_SECRET"), keys.join(","));
      s.peer.send(encodeBare("SHUTDOWN"));
      assertEquals(await s.done, 0);
      await until(() => s!.peer.messages.at(-1)?.type === "BYE", "BYE");
      const bye = s.peer.messages.at(-1)!;
      assert(bye.type === "BYE" && bye.reason.includes("SHUTDOWN"), JSON.stringify(bye));
      const log = await Deno.readTextFile(join(s.ep.dir, "endpoint.log"));
      assert(log.includes("bad message from the interchange ignored"), log);
      assert(!log.includes("very-secret-value"));
    } finally {
      Deno.env.delete("FUNCX_SDK_CLIENT_SECRET");
      if (s) await teardown(s);
    }
  },
});

Deno.test({
  name: "manager: idle workers are reaped and started again on demand",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const s = await setup({ maxIdletime: 1 });
    try {
      const first = await runTask(s.peer, "a", "ident", ["a"]);
      const [, pid1] = first.result as [string, number];
      await until(() => !alive(pid1), "idle worker reaped", 10_000);
      const second = await runTask(s.peer, "b", "ident", ["b"]);
      const [v, pid2] = second.result as [string, number];
      assertEquals(v, "b");
      assert(pid2 !== pid1);
      s.peer.send(encodeBare("SHUTDOWN"));
      assertEquals(await s.done, 0);
    } finally {
      await teardown(s);
    }
  },
});
