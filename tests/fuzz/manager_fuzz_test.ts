/**
 * Seeded, time-bounded fuzzing of a real manager's socket (`main.ts manager ...` with a
 * python3 worker), the test playing the interchange: random frames, mutated TASKS headers,
 * task bodies that are not tasks, unknown message types. The manager must stay up, keep
 * its worker, log the problems, and still run a real task correctly afterwards.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import { packTask } from "../../src/protocol/messages.ts";
import { decodePickle, isPlainDict } from "../../src/protocol/pickle/mod.ts";
import {
  buildTaskPayload,
  deserialize,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";
import { PYTHON_WORKER_SOURCE } from "../../src/engine/python_worker.ts";
import { decodeManagerMessage, encodeBare, encodeTasks } from "../../src/engine/wire.ts";
import { MAIN_TS } from "../helpers/cli.ts";
import { Router } from "../../src/io/zmtp/mod.ts";
import { fuzzSeed, Rand } from "./_rand.ts";

const SEED = fuzzSeed(99_001);
const BUDGET_MS = 4_000;
const enc = new TextEncoder();

function alive(pid: number): boolean {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX]/.test(s);
  } catch {
    return false;
  }
}

/** Log lines repeated more than 20 times during the fuzzing above. */
const _flooding: string[] = [];
let _floodChecked = false;

Deno.test({
  name: "fuzz: a real manager survives random and mutated interchange frames",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-fuzz-mgr-" });
    const script = join(home, "funcx_worker.py");
    Deno.writeTextFileSync(script, PYTHON_WORKER_SOURCE);
    const router = new Router({ mandatory: false });
    await router.bind("tcp://127.0.0.1:*");
    const url = router.lastEndpoint!;
    const inbox: Uint8Array[][] = [];
    router.setHandler((frames) => {
      inbox.push(frames);
    });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...COMPILE_FLAGS,
        MAIN_TS,
        "manager",
        "--task-url",
        url,
        "--block-id",
        "0",
        "--worker-script",
        script,
        "--logdir",
        join(home, "logs"),
        "--workers",
        "1",
        "--hb-period",
        "1",
        "--hb-threshold",
        "60",
        "--uid",
        "fuzzmgr",
      ],
      env: { FUNCX_HOME: home, NO_COLOR: "1", FUNCX_MANAGER_TOKEN: "t0k3n" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let stderr = "";
    const drained = (async () => {
      for await (const c of child.stderr) stderr += new TextDecoder().decode(c);
    })();
    const id = enc.encode("fuzzmgr");
    const send = async (frames: Uint8Array[]) => {
      try {
        await router.send([id, ...frames]);
        return true;
      } catch {
        return false;
      }
    };
    const waitFor = async (what: string, ms: number, pred: (f: Uint8Array[]) => boolean) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const i = inbox.findIndex(pred);
        if (i >= 0) return inbox.splice(i, 1)[0];
        if (!alive(child.pid)) throw new Error(`the manager exited: ${stderr.slice(-800)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      let logs = "";
      try {
        for (const e of Deno.readDirSync(join(home, "logs"))) {
          logs += Deno.readTextFileSync(join(home, "logs", e.name)).slice(-600);
        }
      } catch { /* no logs */ }
      throw new Error(`timed out waiting for ${what}: ${stderr.slice(-800)} ${logs}`);
    };
    const typeOf = (f: Uint8Array[]) => new TextDecoder().decode(f[1]);
    try {
      const reg = await waitFor("REGISTER", 30_000, (f) => typeOf(f) === "REGISTER");
      const info = decodeManagerMessage(reg.slice(1));
      assert(info.type === "REGISTER" && info.token === "t0k3n", "REGISTER carries the token");

      const rand = new Rand(SEED);
      const realTask = (x: number) =>
        packTask(
          crypto.randomUUID(),
          "RAW",
          buildTaskPayload(
            serializeSource("sq", "def sq(x):\n    return x * x\n"),
            serializeData(tuple(x)),
            serializeData({}),
          ),
        );
      const deadline = Date.now() + BUDGET_MS;
      let sent = 0;
      // frames carrying tasks are capped: a TASKS header whose task id differs from the body's
      // TID makes the manager restart the worker (several seconds each, see the report)
      let garbageTasks = 0;
      let mismatched = 0;
      while (Date.now() < deadline && sent < 5000) {
        let k = rand.int(7);
        if (k === 2 && ++garbageTasks > 2) k = 0;
        if (k === 3 && ++mismatched > 2) k = 0;
        let frames: Uint8Array[];
        if (k === 0) frames = [rand.bytes(rand.int(30))];
        else if (k === 1) frames = encodeBare("HEARTBEAT");
        else if (k === 2) {
          // a well-formed TASKS whose body is garbage: the worker must fail it, not die
          frames = encodeTasks([{
            taskId: crypto.randomUUID(),
            body: rand.mutateBytes(realTask(1)),
          }]);
        } else if (k === 3) {
          frames = encodeTasks([{ taskId: crypto.randomUUID(), body: realTask(2) }]).map((f) =>
            rand.mutateBytes(f)
          );
        } else if (k === 4) frames = [enc.encode("TASKS"), enc.encode(JSON.stringify(rand.json()))];
        else if (k === 5) frames = [enc.encode(rand.pick(["NOPE", "", "TASKS", "REGISTER"]))];
        else frames = [enc.encode("TASKS"), enc.encode("[]"), rand.bytes(10)];
        if (await send(frames)) sent++;
        if (sent % 50 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      assert(sent >= 200, `only ${sent} frames sent`);
      assert(alive(child.pid), `the manager died: ${stderr.slice(-800)}`);

      // a real task still runs correctly
      const taskId = crypto.randomUUID();
      const body = packTask(
        taskId,
        "RAW",
        buildTaskPayload(
          serializeSource("sq", "def sq(x):\n    return x * x\n"),
          serializeData(tuple(12)),
          serializeData({}),
        ),
      );
      let got: unknown;
      const until = Date.now() + 60_000;
      let nextSend = 0;
      while (got === undefined && Date.now() < until) {
        if (Date.now() >= nextSend) {
          await send(encodeTasks([{ taskId, body }]));
          nextSend = Date.now() + 15_000;
        }
        await send(encodeBare("HEARTBEAT"));
        // look at every RESULTS message: the garbage tasks above get (failure) results too
        const res = await waitFor("RESULTS", 1000, (f) => typeOf(f) === "RESULTS").catch(
          (e) => {
            if (!alive(child.pid)) throw e;
            return undefined;
          },
        );
        if (!res) continue;
        const msg = decodeManagerMessage(res.slice(1));
        if (msg.type !== "RESULTS") continue;
        for (const r of msg.results) {
          if (r.taskId !== taskId) continue;
          const d = decodePickle(r.message);
          assert(isPlainDict(d), "a result dict");
          assert(typeof d.result === "string", `the task failed: ${String(d.exception)}`);
          got = deserialize(d.result as string);
        }
      }
      const logText = () =>
        [...Deno.readDirSync(join(home, "logs"))].map((e) =>
          `${e.name}: ${Deno.readTextFileSync(join(home, "logs", e.name)).slice(-1500)}`
        ).join("\n");
      assertEquals(got, 144, `no result for the real task; logs:\n${logText()}`);
      assert(alive(child.pid), "the manager is still up");
      const logs = [...Deno.readDirSync(join(home, "logs"))].filter((e) => e.name.endsWith(".log"));
      const text = logs.map((e) => Deno.readTextFileSync(join(home, "logs", e.name))).join("\n");
      assert(/WARN|ERROR/.test(text), "the bad frames were logged");
      const warns = text.split("\n").filter((l) => / (WARN|ERROR) /.test(l));
      const kinds = new Map<string, number>();
      for (const wl of warns) {
        const k = wl.replace(/^\S+ /, "").replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<uuid>").slice(
          0,
          80,
        );
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
      // checked by the next test (known bug, see there)
      _flooding.push(...[...kinds].filter(([, n]) => n > 20).map(([k, n]) => `${n}x ${k}`));
      _floodChecked = true;
      await send(encodeBare("SHUTDOWN"));
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 20_000);
      const st = await child.status;
      clearTimeout(t);
      assertEquals(st.code, 0, `manager exit after SHUTDOWN: ${stderr.slice(-500)}`);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await drained;
      await router.close();
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "fuzz: a manager logs each kind of bad interchange frame once, not once per frame",
  fn() {
    assert(_floodChecked, "runs after the test above");
    assertEquals(_flooding, []);
  },
});
