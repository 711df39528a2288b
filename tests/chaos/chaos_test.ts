/**
 * The short chaos run of the test suite: the real service and endpoint (started with the
 * real CLI), a stream of fast/slow/raising/large-result tasks, and six faults, each followed
 * by recovery — a worker SIGKILLed, the service SIGKILLed while a `batch_status` answer is
 * on its way (the lost=10 case), the endpoint ↔ forwarder link reset mid-message, the
 * manager ↔ interchange link stalled past the heartbeat threshold, the service's disk full
 * (when root: a tmpfs of its own) and the endpoint daemon SIGKILLed. Every acknowledged task
 * must end in exactly one right final state: nothing lost, duplicated, wrong or stuck. The
 * long version is `deno task chaos --rounds 100`.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { formatPerKind, formatReport, runChaos } from "../../scripts/chaos/run.ts";
import { parseChaosArgs } from "../../scripts/chaos.ts";

Deno.test({
  name: "chaos: kills, a lost answer, link faults and a full disk; no task lost or duplicated",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const lines: string[] = [];
    const started = Date.now();
    const r = await runChaos({
      rounds: 6,
      seed: 11,
      victims: ["worker", "service-in-poll", "fwd-reset", "mgr-stall", "disk-full", "daemon"],
      maxKillDelayMs: 1200,
      drainTimeoutMs: 60_000,
      log: (l) => lines.push(l),
    });
    const summary = `${formatReport(r)}\n${formatPerKind(r).join("\n")}\n${lines.join("\n")}\n${
      r.examples.join("\n")
    }${r.homeKept ? `\nhome kept: ${r.home}` : ""}`;
    assertEquals(r.problems, [], summary);
    assert(r.tasks >= 10, `only ${r.tasks} tasks submitted\n${summary}`);
    assertEquals(r.lost, 0, summary);
    assertEquals(r.duplicated, 0, summary);
    assertEquals(r.wrong, 0, summary);
    assertEquals(r.stuck, 0, summary);
    assertEquals(r.succeeded + r.failedWithReason, r.tasks, summary);
    assert(r.reasons.ValueError > 0, `the raising tasks failed with ValueError\n${summary}`);
    assert(Date.now() - started < 240_000, `took ${(Date.now() - started) / 1000} s`);
  },
});

Deno.test("chaos: the command line is checked with one-line errors", () => {
  assertEquals(parseChaosArgs(["--rounds", "20", "--seed=3"]), {
    rounds: 20,
    seed: 3,
    keepHome: false,
  });
  assertEquals(parseChaosArgs([]).rounds, 5);
  for (
    const [args, msg] of [
      [["--rounds", "0"], '--rounds: "0" is not a positive integer'],
      [["--rounds"], '--rounds: "" is not a positive integer'],
      [["--seed", "x"], '--seed: "x" is not a non-negative integer'],
      [
        ["--bogus"],
        'unknown option "--bogus"; valid: --rounds N, --seed S, --faults LIST, --keep-home',
      ],
      [["--faults", "fwd-stal"], '--faults: unknown fault "fwd-stal"; valid: all, service, '],
    ] as const
  ) {
    let err = "";
    try {
      parseChaosArgs([...args]);
    } catch (e) {
      err = (e as Error).message;
    }
    assert(err.startsWith(msg), `${err} does not start with ${msg}`);
  }
  assertEquals(parseChaosArgs(["--faults", "fwd-stall,disk-full"]).faults, [
    "fwd-stall",
    "disk-full",
  ]);
});
