/**
 * Smoke test of the scale benchmark (`deno task bench --scale --quick`) at tiny sizes: 1 and
 * 4 simulated managers × 4 workers on the real interchange, 1 and 3 simulated endpoints on
 * the real local service. Every figure must be present and sane; no timing is asserted.
 * @module
 */
import { assert, assertEquals } from "../auth/_assert.ts";

const _BENCH = new URL("../../scripts/bench.ts", import.meta.url).pathname;

Deno.test("bench --scale --quick at tiny N writes every figure, the table and the chart", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-bench-scale-test-" });
  try {
    const out = `${dir}/scale.json`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        _BENCH,
        "--scale",
        "--quick",
        "--managers",
        "1,4",
        "--endpoints",
        "1,3",
        "--workers",
        "4",
        "--out",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert(r.success, `bench --scale failed: ${stderr.slice(-3000)}`);
    const table = new TextDecoder().decode(r.stdout);
    for (const h of ["managers", "endpoints", "target (issue 18)"]) {
      assert(table.includes(h), table);
    }
    const j = JSON.parse(Deno.readTextFileSync(out));
    assertEquals(j.mode, "quick");
    assertEquals(j.interchange.map((x: { managers: number }) => x.managers), [1, 4]);
    assertEquals(j.service.map((x: { endpoints: number }) => x.endpoints), [1, 3]);
    assertEquals(j.interchange_failed, []);
    assertEquals(j.service_failed, []);
    const positive = (v: unknown, what: string) =>
      assert(typeof v === "number" && v > 0 && Number.isFinite(v), `${what} = ${v}`);
    for (const x of j.interchange) {
      for (
        const k of [
          "registerSeconds",
          "tasksPerSecond",
          "p50Ms",
          "p99Ms",
          "loadedP99Ms",
          "cpuUsPerTask",
          "rssRegisteredKb",
          "idleCpuMsPerSecond",
        ]
      ) positive(x[k], `interchange[${x.managers}].${k}`);
      assert(x.p50Ms <= x.p99Ms, "p50 above p99");
      assertEquals(x.workers, 4);
    }
    for (const x of j.service) {
      for (const k of ["connectSeconds", "tasksPerSecond", "p50Ms", "p99Ms", "rssPeakKb"]) {
        positive(x[k], `service[${x.endpoints}].${k}`);
      }
      assertEquals(typeof x.sqliteBytesPerTask, "number");
      assertEquals(typeof x.kbPerEndpoint, "number");
    }
    for (const k of Object.keys(j.targets.pass)) {
      assertEquals(typeof j.targets.pass[k], "boolean", `targets.pass.${k}`);
    }
    const svg = Deno.readTextFileSync(`${dir}/scale.svg`);
    assert(svg.startsWith("<svg") && svg.includes("<polyline"), "chart without lines");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
