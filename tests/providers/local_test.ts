import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { LocalProvider } from "../../src/providers/local.ts";
import { until } from "../engine/_helpers.ts";

Deno.test("local provider: worker_init, exit states, cancel, output kept", async () => {
  const home = await Deno.makeTempDir({ prefix: "fx-local-" });
  const logDir = join(home, "ep", "worker_logs");
  const p = new LocalProvider({
    home,
    logDir,
    workerInit: "export FX_INIT=from-init\necho init-ran",
    exitGraceSeconds: 0.2,
    killGraceSeconds: 1,
  });
  try {
    const out = join(home, "out.txt");
    const py = (code: string, ...args: string[]) => ["python3", "-c", code, ...args];
    const ok = await p.submit({
      blockId: "0",
      command: py(
        "import os,sys; open(sys.argv[1],'w').write(os.environ['FX_INIT']+' '+os.environ['FUNCX_HOME'])",
        out,
      ),
      nodes: 1,
      walltime: "00:01:00",
    });
    assert(ok.startsWith("local-"));
    const bad = await p.submit({
      blockId: "1",
      command: py("import sys; sys.exit(3)"),
      nodes: 1,
      walltime: "00:01:00",
    });
    const long = await p.submit({
      blockId: "2",
      command: py("import time; time.sleep(60)"),
      nodes: 1,
      walltime: "00:01:00",
    });
    await until(async () => {
      const st = await p.status([ok, bad]);
      return st.get(ok)!.state !== "RUNNING" && st.get(bad)!.state !== "RUNNING";
    }, "short jobs ended");
    const st = await p.status([ok, bad, long, "local-1"]);
    assertEquals(st.get(ok), { state: "COMPLETED", message: "" });
    assertEquals(st.get(bad), { state: "FAILED", message: "exit code 3" });
    assertEquals(st.get(long)!.state, "RUNNING");
    assertEquals(st.get("local-1")!.state, "UNKNOWN");
    assertEquals(await Deno.readTextFile(out), `from-init ${home}`);
    assert((await Deno.readTextFile(join(logDir, "0", "manager.stdio"))).includes("init-ran"));
    const t0 = Date.now();
    await p.cancel([long]);
    assert(Date.now() - t0 < 5000);
    assertEquals((await p.status([long])).get(long)!.state, "CANCELLED");
    await p.cancel([long, ok]); // already ended: no error
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
