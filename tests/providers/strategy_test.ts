import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { decide, type StrategyInput, submitBackoffMs } from "../../src/providers/strategy.ts";

const P = { init_blocks: 1, min_blocks: 0, max_blocks: 2, nodes_per_block: 1, parallelism: 1 };

function input(over: Partial<StrategyInput>): StrategyInput {
  return {
    now: 1_000_000,
    firstRun: false,
    queued: 0,
    running: 0,
    blocks: [],
    slotsPerNode: 2,
    maxIdletime: 60,
    backoffUntil: 0,
    provider: P,
    ...over,
  };
}

const busy = (id: string, running = 1) => ({
  blockId: id,
  state: "RUNNING" as const,
  running,
  idleSince: null,
});
const idle = (id: string, since: number, state: "RUNNING" | "PENDING" = "RUNNING") => ({
  blockId: id,
  state,
  running: 0,
  idleSince: since,
});

const cases: [string, Partial<StrategyInput>, { scaleOut: number; scaleIn: string[] }][] = [
  ["first run launches init_blocks", { firstRun: true }, { scaleOut: 1, scaleIn: [] }],
  [
    "init_blocks capped at max_blocks",
    { firstRun: true, provider: { ...P, init_blocks: 5 } },
    { scaleOut: 2, scaleIn: [] },
  ],
  [
    "init_blocks 0 and no work: nothing",
    { firstRun: true, provider: { ...P, init_blocks: 0 } },
    { scaleOut: 0, scaleIn: [] },
  ],
  ["no work, no blocks: nothing", {}, { scaleOut: 0, scaleIn: [] }],
  [
    "min_blocks is kept",
    { provider: { ...P, min_blocks: 1 } },
    { scaleOut: 1, scaleIn: [] },
  ],
  ["waiting task with no block: one block", { queued: 1 }, { scaleOut: 1, scaleIn: [] }],
  [
    "many waiting tasks scale toward max_blocks",
    { queued: 100, blocks: [busy("0", 2)], running: 2 },
    { scaleOut: 1, scaleIn: [] },
  ],
  [
    "never above max_blocks",
    { queued: 100, blocks: [busy("0", 2), busy("1", 2)], running: 4 },
    { scaleOut: 0, scaleIn: [] },
  ],
  [
    "parallelism 0.5 halves the wanted blocks",
    {
      queued: 6,
      running: 2,
      blocks: [busy("0", 2)],
      provider: { ...P, max_blocks: 10, parallelism: 0.5 },
    },
    { scaleOut: 1, scaleIn: [] },
  ],
  [
    "parallelism 0 still gets one block for waiting work",
    { queued: 50, provider: { ...P, parallelism: 0 } },
    { scaleOut: 1, scaleIn: [] },
  ],
  [
    "tasks fit in current slots: no scale-out",
    { queued: 1, running: 1, blocks: [busy("0", 1)] },
    { scaleOut: 0, scaleIn: [] },
  ],
  [
    "pending blocks count as active",
    { queued: 4, blocks: [idle("0", 999_000, "PENDING"), idle("1", 999_000, "PENDING")] },
    { scaleOut: 0, scaleIn: [] },
  ],
  [
    "finished blocks do not count",
    {
      queued: 4,
      blocks: [{ blockId: "0", state: "FAILED", running: 0, idleSince: 0 }],
    },
    { scaleOut: 2, scaleIn: [] },
  ],
  [
    "backoff blocks scale-out",
    { queued: 10, backoffUntil: 2_000_000 },
    { scaleOut: 0, scaleIn: [] },
  ],
  [
    "idle block not yet past max_idletime is kept",
    { blocks: [idle("0", 1_000_000 - 59_000)] },
    { scaleOut: 0, scaleIn: [] },
  ],
  [
    "idle block past max_idletime is cancelled",
    { blocks: [idle("0", 1_000_000 - 60_000)] },
    { scaleOut: 0, scaleIn: ["0"] },
  ],
  [
    "scale-in stops at min_blocks, oldest idle first",
    {
      blocks: [idle("0", 900_000), idle("1", 800_000)],
      provider: { ...P, min_blocks: 1 },
    },
    { scaleOut: 0, scaleIn: ["1"] },
  ],
  [
    "pending idle blocks are cancelled before running ones",
    {
      blocks: [idle("0", 800_000), idle("1", 900_000, "PENDING")],
      provider: { ...P, min_blocks: 1 },
    },
    { scaleOut: 0, scaleIn: ["1"] },
  ],
  [
    "never cancel a block with running tasks",
    { running: 1, blocks: [{ blockId: "0", state: "RUNNING", running: 1, idleSince: 0 }] },
    { scaleOut: 0, scaleIn: [] },
  ],
  [
    "idle block cancelled while another block still runs tasks",
    { running: 2, blocks: [busy("0", 2), idle("1", 0)] },
    { scaleOut: 0, scaleIn: ["1"] },
  ],
  [
    "no scale-in while tasks wait",
    { queued: 3, running: 2, blocks: [busy("0", 2), idle("1", 0)] },
    { scaleOut: 0, scaleIn: [] },
  ],
  [
    "nodes_per_block multiplies slots",
    {
      queued: 6,
      running: 0,
      blocks: [],
      provider: { ...P, max_blocks: 10, nodes_per_block: 3 },
    },
    { scaleOut: 1, scaleIn: [] },
  ],
];

for (const [name, over, want] of cases) {
  Deno.test(`strategy: ${name}`, () => {
    assertEquals(decide(input(over)), want);
  });
}

Deno.test("strategy: submit backoff doubles and is capped", () => {
  assertEquals(
    [0, 1, 2, 3, 20].map((n) => submitBackoffMs(n)),
    [0, 5000, 10000, 20000, 300000],
  );
});
