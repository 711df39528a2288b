/**
 * The block lifecycle on its own: the real strategy and degraded bookkeeping, driven through
 * a scripted in-memory provider (job states are set by the test), so every transition is
 * checked without a batch system. The interchange tests run the same code with the real local
 * and Slurm providers.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type BlockHost, Blocks } from "../../src/engine/blocks.ts";
import { Degradation } from "../../src/engine/degraded.ts";
import type { BlockSpec, JobStatus, Provider } from "../../src/providers/provider.ts";
import { DEFAULT_ENDPOINT_CONFIG, type EndpointConfig } from "../../src/config/types.ts";
import { createLogger } from "../../src/daemon/log.ts";

class _ScriptedProvider implements Provider {
  readonly label = "scripted";
  submitted: BlockSpec[] = [];
  cancelled: string[] = [];
  states = new Map<string, JobStatus>();
  failNext = false;
  submit(block: BlockSpec): Promise<string> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("queue closed"));
    }
    this.submitted.push(block);
    const id = `job-${block.blockId}`;
    this.states.set(id, { state: "PENDING", message: "" });
    return Promise.resolve(id);
  }
  outputTail(jobId: string): string {
    return `${jobId}: worker_init: command not found`;
  }
  status(jobIds: string[]): Promise<Map<string, JobStatus>> {
    return Promise.resolve(new Map(jobIds.map((id) => [id, this.states.get(id)!])));
  }
  cancel(jobIds: string[]): Promise<void> {
    for (const id of jobIds) {
      this.cancelled.push(id);
      this.states.set(id, { state: "CANCELLED", message: "" });
    }
    return Promise.resolve();
  }
}

function _setup(provider: Partial<EndpointConfig["provider"]> = {}) {
  const config: EndpointConfig = structuredClone(DEFAULT_ENDPOINT_CONFIG);
  Object.assign(config.provider, provider);
  config.executor.max_workers_per_node = 2;
  const p = new _ScriptedProvider();
  const lost: { blockId: string; why: string; shutdown: boolean }[] = [];
  const errors: string[] = [];
  const host: BlockHost = {
    managerCommand: (blockId) => ({
      command: ["manager", "--block-id", blockId],
      deferredPython: false,
    }),
    managerEnv: () => ({ FUNCX_MANAGER_TOKEN: "t" }),
    address: () => "tcp://127.0.0.1:5000",
    loseManagers: (blockId, why, shutdown) => lost.push({ blockId, why, shutdown }),
    error: (message) => errors.push(message),
  };
  const blocks = new Blocks({
    config,
    provider: p,
    degraded: new Degradation(),
    host,
    log: createLogger({ level: "error" }),
  });
  return { blocks, p, lost, errors };
}

const idle = { queued: 0, running: 0, runningOn: () => 0 };

Deno.test("init_blocks on the first run, then more blocks for queued tasks up to max_blocks", async () => {
  const { blocks, p } = _setup({ init_blocks: 1, max_blocks: 3 });
  blocks.strategize(0, idle);
  await blocks.halt(); // settles the submission (and stops launching)
  assertEquals(p.submitted.map((b) => b.blockId), ["0"]);
  assertEquals(p.submitted[0].command, ["manager", "--block-id", "0"]);
  assertEquals(p.submitted[0].env, { FUNCX_MANAGER_TOKEN: "t" });
  assertEquals(blocks.status().map((b) => [b.block_id, b.job_id, b.state]), [[
    "0",
    "job-0",
    "PENDING",
  ]]);

  const { blocks: b2, p: p2 } = _setup({ init_blocks: 0, max_blocks: 3 });
  b2.strategize(0, { queued: 10, running: 0, runningOn: () => 0 }); // 2 slots a block: 3 wanted
  await b2.halt();
  assertEquals(p2.submitted.map((b) => b.blockId), ["0", "1", "2"]);
});

Deno.test("a job that ends before its manager connected: Degraded reason with its output, managers lost", async () => {
  const { blocks, p, lost, errors } = _setup({ init_blocks: 1, max_blocks: 1 });
  blocks.strategize(0, idle);
  await new Promise((r) => setTimeout(r, 0));
  p.states.set("job-0", { state: "FAILED", message: "exit 3" });
  await blocks.poll();
  const b = blocks.get("0")!;
  assert(b.ended);
  assert(b.message.includes("worker_init: command not found"), b.message);
  assert(
    errors.some((e) => e.startsWith("Degraded: block 0: job job-0 ended (FAILED)")),
    errors.join("\n"),
  );
  assertEquals(lost.map((l) => [l.blockId, l.shutdown]), [["0", false]]);
  // the back-off holds the next submission
  blocks.strategize(performance.now(), { queued: 5, running: 0, runningOn: () => 0 });
  await blocks.halt();
  assertEquals(p.submitted.length, 1);
});

Deno.test("a connected block idle past max_idletime is scaled in: managers shut down, job cancelled", async () => {
  const { blocks, p, lost } = _setup({ init_blocks: 1, min_blocks: 0, max_blocks: 1 });
  blocks.strategize(0, idle);
  await new Promise((r) => setTimeout(r, 0));
  blocks.managerConnected(blocks.get("0")!);
  assertEquals(blocks.get("0")!.state, "RUNNING");
  blocks.busy("0");
  blocks.idle("0", 1000);
  blocks.strategize(1000 + 60_000, idle); // max_idletime 60 s
  assertEquals(lost, [{ blockId: "0", why: "block scaled in", shutdown: true }]);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(p.cancelled, ["job-0"]);
  assert(!blocks.isLive("0"));
});

Deno.test("a failed submission is an error with a retry delay; cancelAll ends every job", async () => {
  const { blocks, p, errors } = _setup({ init_blocks: 2, max_blocks: 2 });
  p.failNext = true;
  blocks.strategize(0, idle);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(errors.length, 1);
  assert(/submitting block 0 failed: queue closed \(retry in 5s\)/.test(errors[0]), errors[0]);
  assertEquals(blocks.status().map((b) => b.block_id), ["1"]);
  await blocks.halt();
  await blocks.cancelAll();
  assertEquals(p.cancelled, ["job-1"]);
  assertEquals(blocks.status().map((b) => b.state), ["CANCELLED"]);
});
