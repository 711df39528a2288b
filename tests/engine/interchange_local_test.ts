import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { PyValue } from "../../src/protocol/pickle/mod.ts";
import { Interchange } from "../../src/engine/interchange.ts";
import { Dealer } from "../../src/io/zmtp/mod.ts";
import { alive, Collector, config, pyTask, tempEndpoint, until } from "./_helpers.ts";

async function setup(over: Parameters<typeof config>[1] = {}, python?: Promise<string>) {
  const ep = await tempEndpoint();
  const col = new Collector();
  const ix = new Interchange({
    endpointDir: ep.dir,
    endpointId: "00000000-0000-0000-0000-000000000001",
    config: config(
      { init_blocks: 1, min_blocks: 0, max_blocks: 1 },
      {
        max_workers_per_node: 2,
        heartbeat_period: 1,
        heartbeat_threshold: 8,
        prefetch_capacity: 2,
        ...over,
      },
    ),
    log: ep.log,
    onResults: col.onResults,
    strategyPeriodMs: 200,
    pollPeriodMs: 200,
    python,
  });
  await ix.start();
  return { ep, col, ix };
}

async function teardown(s: Awaited<ReturnType<typeof setup>>) {
  await s.ix.stop();
  s.ep.log.close();
  if (!Deno.env.get("KEEP_TMP")) await Deno.remove(s.ep.home, { recursive: true });
}

Deno.test("interchange+local: tasks run on real manager and python workers", async () => {
  const s = await setup();
  try {
    const tasks = Array.from({ length: 40 }, (_, i) => pyTask(`t${i}`, "ident", [i]));
    s.ix.submit(tasks);
    s.ix.submit([tasks[0]]); // duplicate of a live task: ignored
    await s.col.waitFor(() => s.col.results.length >= 40, "40 results");
    const ids = s.col.results.map((r) => r.taskId).sort();
    assertEquals(ids, tasks.map((t) => t.taskId).sort());
    const pids = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const [value, pid] = s.col.byId(`t${i}`)!.result as [number, number];
      assertEquals(value, i);
      pids.add(pid);
    }
    assert(pids.size >= 1 && pids.size <= 2, `ran in ${pids.size} worker processes`);
    assert((await Deno.readTextFile(`${s.ep.dir}/worker/funcx_worker.py`)).includes("funcX"));
    const st = s.ix.status();
    assertEquals(st.tasks, { queued: 0, running: 0, completed: 40, failed: 0 });
    assertEquals(st.managers.length, 1);
    assertEquals(st.managers[0].workers, 2);
    assertEquals(st.blocks.filter((b) => b.state === "RUNNING").length, 1);
    assert(st.blocks[0].job_id!.startsWith("local-"));
    assertEquals(s.ix.taskStatuses().size, 0);
  } finally {
    await teardown(s);
  }
  await new Promise((r) => setTimeout(r, 50));
});

Deno.test("interchange+local: a killed worker fails its task with WorkerLost", async () => {
  const s = await setup();
  try {
    const pidFile = `${s.ep.dir}/victim.pid`;
    s.ix.submit([pyTask("victim", "sleeper", [pidFile, 60])]);
    const pid = Number(
      await until(async () => {
        try {
          return await Deno.readTextFile(pidFile);
        } catch {
          return "";
        }
      }, "worker pid file"),
    );
    assertEquals(s.ix.taskStatuses().get("victim"), 3);
    Deno.kill(pid, "SIGKILL");
    await s.col.waitFor(() => !!s.col.byId("victim"), "victim result");
    const r = s.col.byId("victim")!;
    assertEquals(r.exceptionType, "WorkerLost");
    assert(r.exceptionMessage!.includes(`pid ${pid}`), r.exceptionMessage);
    assert(r.exceptionMessage!.includes("SIGKILL"), r.exceptionMessage);
    // The manager restarted the worker and keeps serving.
    s.ix.submit([pyTask("after", "ident", ["ok"])]);
    await s.col.waitFor(() => !!s.col.byId("after"), "result after the kill");
    assertEquals((s.col.byId("after")!.result as PyValue[])[0], "ok");
    assertEquals(s.ix.status().tasks.failed, 1);
  } finally {
    await teardown(s);
  }
});

Deno.test("interchange+local: a killed manager fails its running tasks with ManagerLost, re-queues the rest", async () => {
  const s = await setup();
  try {
    // two sleepers occupy both workers; four more tasks wait at the manager (written ahead
    // to a worker or in its queue) and never start
    const pidFile = (i: number) => `${s.ep.dir}/m${i}.pid`;
    s.ix.submit([0, 1].map((i) => pyTask(`running${i}`, "sleeper", [pidFile(i), 60])));
    const readPid = (i: number) =>
      until(async () => {
        try {
          return await Deno.readTextFile(pidFile(i));
        } catch {
          return "";
        }
      }, "worker pid file");
    const workerPids = [Number(await readPid(0)), Number(await readPid(1))];
    const waiting = [0, 1, 2, 3].map((i) => `waiting${i}`);
    s.ix.submit(waiting.map((id, i) => pyTask(id, "ident", [i])));
    await until(
      () => Promise.resolve(s.ix.status().managers[0]?.running === 6),
      "6 at the manager",
    );
    const jobId = s.ix.status().blocks[0].job_id!;
    const managerPid = Number(jobId.replace("local-", ""));
    Deno.kill(managerPid, "SIGKILL");
    for (const i of [0, 1]) {
      await s.col.waitFor(() => !!s.col.byId(`running${i}`), "ManagerLost result");
      const r = s.col.byId(`running${i}`)!;
      assertEquals(r.exceptionType, "ManagerLost");
      assert(r.exceptionMessage!.includes("block 0"), r.exceptionMessage);
    }
    // The orphaned workers see their stdin close; kill them in case they sleep on.
    for (const pid of workerPids) if (alive(pid)) Deno.kill(pid, "SIGKILL");
    // The unstarted ones run on the replacement block, and new work too.
    s.ix.submit([pyTask("next", "ident", ["again"])]);
    for (const [i, id] of waiting.entries()) {
      await s.col.waitFor(() => !!s.col.byId(id), `result of ${id} from the replacement block`);
      assertEquals((s.col.byId(id)!.result as PyValue[])[0], i);
    }
    await s.col.waitFor(() => !!s.col.byId("next"), "result from the replacement block");
    assertEquals((s.col.byId("next")!.result as PyValue[])[0], "again");
    const blocks = s.ix.status().blocks;
    assert(blocks.some((b) => b.block_id === "0" && b.state === "FAILED"), JSON.stringify(blocks));
    assert(blocks.some((b) => b.block_id === "1" && b.state === "RUNNING"), JSON.stringify(blocks));
    assert(s.ix.status().errors.some((e) => e.message.includes("block 0")));
  } finally {
    await teardown(s);
  }
});

Deno.test({
  name: "interchange+local: garbage and impostors on the manager socket change nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const s = await setup();
    const rogue = new Dealer({ routingId: "rogue" });
    const replies: string[] = [];
    rogue.setHandler(([type]) => {
      replies.push(new TextDecoder().decode(type));
    });
    const pump = { send: (f: Uint8Array[]) => void rogue.send(f).catch(() => {}) };
    try {
      rogue.connect(s.ix.status().address);
      const enc = new TextEncoder();
      const pid = Number(
        await (async () => {
          const pidFile = `${s.ep.dir}/g.pid`;
          s.ix.submit([pyTask("slow", "sleeper", [pidFile, 2])]);
          return await until(async () => {
            try {
              return await Deno.readTextFile(pidFile);
            } catch {
              return "";
            }
          }, "slow task running");
        })(),
      );
      assert(pid > 0);
      // Seeded random frames, then well-formed messages that must be refused.
      let seed = 42;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      for (let i = 0; i < 200; i++) {
        const frames = Array.from(
          { length: 1 + Math.floor(rand() * 3) },
          () =>
            Uint8Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)),
        );
        pump.send(frames);
      }
      pump.send([enc.encode("REGISTER"), enc.encode("{bad")]);
      pump.send([
        enc.encode("REGISTER"),
        enc.encode(JSON.stringify({ uid: "rogue", block_id: "0", workers: 99, token: "guess" })),
      ]);
      // A forged result for the running task must not reach the endpoint.
      pump.send([
        enc.encode("RESULTS"),
        enc.encode(JSON.stringify([{ task_id: "slow", failed: false }])),
        new Uint8Array([0x80, 0x04, 0x4e, 0x2e]),
      ]);
      await s.col.waitFor(() => !!s.col.byId("slow"), "the real result");
      assertEquals(s.col.byId("slow")!.result, "survived");
      s.ix.submit([pyTask("more", "ident", [7])]);
      await s.col.waitFor(() => !!s.col.byId("more"), "a later task");
      assertEquals(s.col.results.length, 2); // nothing forged, nothing duplicated
      assertEquals(s.ix.status().managers.map((m) => m.id).includes("rogue"), false);
      await until(() => replies.includes("SHUTDOWN"), "impostor told to shut down");
      const log = await Deno.readTextFile(`${s.ep.dir}/endpoint.log`);
      const badLines = log.split("\n").filter((l) => l.includes("peer rogue"));
      assertEquals(badLines.length, 1, badLines.join("\n")); // logged once per peer
    } finally {
      await rogue.close();
      await teardown(s);
    }
  },
});

Deno.test({
  name:
    "interchange+local: a silent (stopped) manager is declared lost after the heartbeat threshold",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const s = await setup();
    let managerPid = 0;
    try {
      const pidFile = `${s.ep.dir}/hb.pid`;
      s.ix.submit([pyTask("frozen", "sleeper", [pidFile, 30])]);
      await until(async () => {
        try {
          return !!(await Deno.readTextFile(pidFile));
        } catch {
          return false;
        }
      }, "task running");
      managerPid = Number(s.ix.status().blocks[0].job_id!.replace("local-", ""));
      Deno.kill(managerPid, "SIGSTOP");
      // the threshold counts from the manager's last message, which came before the SIGSTOP
      const lastMessageAt = performance.now() - s.ix.status().managers[0].last_message_ms_ago;
      await s.col.waitFor(() => !!s.col.byId("frozen"), "ManagerLost from heartbeats");
      const r = s.col.byId("frozen")!;
      assertEquals(r.exceptionType, "ManagerLost");
      assert(/no heartbeat for 8s/.test(r.exceptionMessage!), r.exceptionMessage);
      const silent = performance.now() - lastMessageAt;
      assert(silent >= 8000, `declared lost after ${silent} ms of silence`);
      assertEquals(s.ix.status().managers.length, 0);
      assert(s.ix.status().errors.some((e) => e.message.includes("lost")));
    } finally {
      if (managerPid) Deno.kill(managerPid, "SIGCONT");
      await teardown(s);
    }
  },
});

Deno.test("interchange+local: a block launched before the interpreter is known gets it by PYTHON", async () => {
  const python = Promise.withResolvers<string>();
  const s = await setup({}, python.promise);
  try {
    // the manager is launched and registers, but starts no worker until PYTHON
    await until(() => s.ix.status().managers.length === 1, "manager registered", 20_000);
    s.ix.submit([pyTask("p0", "ident", [5])]);
    // the task reached the manager, and still nothing ran
    await until(() => s.ix.status().managers[0]?.running === 1, "task dispatched to the manager");
    assertEquals(s.col.results.length, 0, "no worker ran before the interpreter was known");
    const exe = new TextDecoder().decode(
      (await new Deno.Command("python3", { args: ["-c", "import sys; print(sys.executable)"] })
        .output()).stdout,
    ).trim();
    python.resolve(exe);
    await s.col.waitFor(() => s.col.results.length === 1, "result after PYTHON");
    assertEquals((s.col.byId("p0")!.result as [number, number])[0], 5);
    const log = await Deno.readTextFile(
      [...Deno.readDirSync(`${s.ep.dir}/worker_logs/0`)].map((e) =>
        `${s.ep.dir}/worker_logs/0/${e.name}`
      )
        .find((f) => /manager-.*\.log$/.test(f))!,
    );
    assert(log.includes(`workers run ${exe} (from the interchange)`), "the manager logged it");
  } finally {
    await teardown(s);
  }
});
