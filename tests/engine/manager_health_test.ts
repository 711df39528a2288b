// The manager's side of "failures surfaced": workers that die before their first task are
// reported to the interchange (CAPACITY.problem, with their stderr tail), restarted with a
// growing back-off, and their stderr files are bounded. A real manager, a test-side ROUTER
// speaking the interchange protocol, and a real (broken) interpreter.
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { runManager } from "../../src/engine/manager.ts";
import { decodeManagerMessage, encodeBare, type ManagerMessage } from "../../src/engine/wire.ts";
import { Router } from "../../src/io/zmtp/mod.ts";
import { tempEndpoint, until } from "./_helpers.ts";

Deno.test({
  name: "manager: early worker deaths → CAPACITY problem with stderr tail, back-off, bounded log",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const ep = await tempEndpoint();
    const sock = new Router({ mandatory: false });
    const messages: { at: number; m: ManagerMessage }[] = [];
    let identity: Uint8Array | undefined;
    await sock.bind("tcp://127.0.0.1:*");
    sock.setHandler(([id, ...frames]) => {
      identity = id;
      const m = decodeManagerMessage(frames);
      messages.push({ at: performance.now(), m });
      if (m.type === "HEARTBEAT") sock.send([id, ...encodeBare("HEARTBEAT")]).catch(() => {});
    });
    // an "interpreter" that floods stderr (1.5 MiB), ends with the real complaint, and exits
    const py = join(ep.dir, "broken-python3");
    Deno.writeTextFileSync(
      py,
      "#!/bin/sh\nhead -c 1572864 /dev/zero | tr '\\0' x >&2\necho >&2\necho 'ImportError: libpython3.11.so.1.0: cannot open shared object file' >&2\nexit 1\n",
      { mode: 0o755 },
    );
    const logdir = join(ep.dir, "worker_logs", "0");
    await Deno.mkdir(logdir, { recursive: true });
    const done = runManager({
      taskUrl: sock.lastEndpoint!,
      blockId: "0",
      workers: 1,
      python: py,
      workerScript: join(ep.dir, "unused.py"),
      logdir,
      hbPeriod: 0.2,
      hbThreshold: 30,
      maxIdletime: 0,
      log: ep.log,
    });
    try {
      const problems = () =>
        messages.filter((x) => x.m.type === "CAPACITY" && x.m.problem).map((x) => ({
          at: x.at,
          problem: (x.m as { problem: string }).problem,
        }));
      await until(() => problems().length > 0, "a CAPACITY with a problem", 30_000);
      match(
        problems()[0].problem,
        /^workers exit before their first task \(1 in a row; exit code 1\): .*ImportError: libpython3\.11\.so\.1\.0: cannot open shared object file$/,
      );
      await until(
        () => problems().some((p) => /\(3 in a row/.test(p.problem)),
        "3 early deaths",
        30_000,
      );
      // the starts are spaced: 1 s, then 2 s
      const firstAt = (n: number) =>
        problems().find((p) => p.problem.includes(`(${n} in a row`))!.at;
      assert(firstAt(2) - firstAt(1) >= 900, `${firstAt(2) - firstAt(1)} ms`);
      assert(firstAt(3) - firstAt(2) >= 1900, `${firstAt(3) - firstAt(2)} ms`);
      // each worker's stderr file stops at 1 MiB, with a marker
      // (the workers that died: 0, 1, 2; a later one may be writing)
      const files = [...Deno.readDirSync(logdir)].filter((e) => /-[012]\.stderr$/.test(e.name));
      assertEquals(files.length, 3);
      for (const f of files) {
        const text = Deno.readTextFileSync(join(logdir, f.name));
        assert(text.length <= (1 << 20) + 64, `${f.name}: ${text.length} bytes`);
        assert(
          text.endsWith("[worker stderr truncated here]\n"),
          `${f.name}: ${text.length} bytes, ends ${JSON.stringify(text.slice(-40))}`,
        );
      }
      sock.send([identity!, ...encodeBare("SHUTDOWN")]).catch(() => {});
      assertEquals(await done, 0);
    } finally {
      if (identity) await sock.send([identity, ...encodeBare("SHUTDOWN")]).catch(() => {});
      await done.catch(() => 1);
      await sock.close();
      await done.catch(() => 1);
      ep.log.close();
      await Deno.remove(ep.home, { recursive: true }).catch(() => {});
    }
  },
});
