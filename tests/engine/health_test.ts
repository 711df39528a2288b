import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { blockBackoffMs, Degradation } from "../../src/engine/degraded.ts";
import {
  HEALTHY_AFTER_MS,
  reasonLine,
  respawnDelayMs,
  WorkerHealth,
  WorkerLogBudget,
} from "../../src/engine/health.ts";
import { outputTail, readTail } from "../../src/providers/tail.ts";

Deno.test("respawn back-off: capped exponential over consecutive early deaths", () => {
  assertEquals([0, 1, 2, 3, 4, 6, 7, 50].map((n) => respawnDelayMs(n)), [
    0,
    1000,
    2000,
    4000,
    8000,
    32000,
    60000,
    60000,
  ]);
});

Deno.test("WorkerHealth: early deaths make a problem with the stderr tail; a result clears it", () => {
  const h = new WorkerHealth();
  h.started(0);
  assertEquals(h.exited({ ranTask: true, how: "exit code 1", stderrTail: "x" }, 5).delayMs, 0);
  assertEquals(h.problem, null);
  const tail = 'Traceback (most recent call last):\n  File "w.py"\nImportError: no module x\n';
  assertEquals(
    h.exited({ ranTask: false, how: "exit code 1", stderrTail: tail }, 10).delayMs,
    1000,
  );
  assertEquals(
    h.problem,
    'workers exit before their first task (1 in a row; exit code 1): Traceback (most recent call last): | File "w.py" | ImportError: no module x',
  );
  assertEquals(
    h.exited({ ranTask: false, how: "exit code 127", stderrTail: "" }, 20).delayMs,
    2000,
  );
  assertEquals(h.problem, "workers exit before their first task (2 in a row; exit code 127)");
  assertEquals(h.ranTask(), true);
  assertEquals([h.problem, h.earlyDeaths], [null, 0]);
  // staying up clears it too
  h.exited({ ranTask: false, how: "exit code 1", stderrTail: "" }, 30);
  h.started(1000);
  assertEquals(h.tick(1000 + HEALTHY_AFTER_MS - 1, true), false);
  assertEquals(h.tick(1000 + HEALTHY_AFTER_MS, false), false);
  assertEquals(h.tick(1000 + HEALTHY_AFTER_MS, true), true);
  assertEquals(h.problem, null);
});

Deno.test("reasonLine keeps the last non-empty lines, bounded", () => {
  assertEquals(reasonLine("a\n\n b \nc\nd\n"), "b | c | d");
  assertEquals(reasonLine("x".repeat(1000), 3, 10), "…xxxxxxxxx");
});

Deno.test("WorkerLogBudget: oldest files beyond the count go; bytes capped per file", () => {
  const b = new WorkerLogBudget(2, 10);
  assertEquals(b.add("a"), []);
  assertEquals(b.add("b"), []);
  assertEquals(b.add("c"), ["a"]);
  assertEquals(b.add("d"), ["b"]);
  assertEquals([b.allow(0, 4), b.allow(8, 4), b.allow(10, 4)], [4, 2, 0]);
});

Deno.test("Degradation: block failures back off; reasons announced once per kind; connect clears", () => {
  assertEquals([0, 1, 2, 3, 4, 9].map((n) => blockBackoffMs(n)), [
    0,
    15000,
    30000,
    60000,
    120000,
    600000,
  ]);
  // at most 4 submissions in 2 minutes however fast jobs fail
  let t = 0;
  const subs = [0];
  const d = new Degradation();
  for (let i = 0; i < 10; i++) {
    t += d.blockFailed(String(i), `job ${i} FAILED (exit code 3)`, t).backoffMs;
    subs.push(t);
  }
  assertEquals(subs.filter((s) => s < 120_000).length, 4);
  const e = new Degradation();
  assertEquals(e.blockFailed("0", "job 10 FAILED: boom", 0).announce, "job 10 FAILED: boom");
  assertEquals(e.blockFailed("1", "job 11 FAILED: boom", 0).announce, undefined);
  assertEquals(e.reason, "block 0: job 10 FAILED: boom");
  assertEquals(e.manager("m", "workers exit"), "workers exit");
  assertEquals(e.manager("m", "workers exit"), undefined);
  assertEquals(e.reason, "manager m: workers exit");
  e.manager("m", null);
  e.blockConnected("2");
  assertEquals([e.reason, e.blockFailures], [null, 0]);
  // a running block whose manager does not connect
  assertEquals(e.blockWaiting("3", 0, 100), false);
  assertEquals(e.blockWaiting("3", 99, 100), false);
  assertEquals(e.blockWaiting("3", 100, 100), true);
  assertEquals(e.blockWaiting("2", 1000, 100), false);
});

Deno.test("readTail / outputTail read the end of real files", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const a = join(dir, "a.out");
    Deno.writeTextFileSync(a, "x\n".repeat(10000) + "last out\n");
    const b = join(dir, "a.err");
    Deno.writeTextFileSync(b, "/var/spool/slurmd/job1/slurm_script: line 9: boom\n");
    assert(readTail(a, 100).endsWith("last out\n"));
    assertEquals(readTail(a, 100).length, 100);
    assertEquals(readTail(join(dir, "none")), "");
    assertEquals(
      outputTail([a, b, join(dir, "none")], 2),
      "last out | /var/spool/slurmd/job1/slurm_script: line 9: boom",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
