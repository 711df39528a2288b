import { strictEqual as assertEquals } from "node:assert/strict";
import { encodePickle } from "../../src/protocol/pickle/mod.ts";
import { peekResultOutcome } from "../../src/protocol/worker_result.ts";
import { runPythonBytes } from "./_python.ts";

const id = (s: string) => new TextEncoder().encode(s);

/** The dict `run_task` (src/engine/python_worker.ts) pickles, with `key` "result" or "exception". */
function workerFrame(taskId: string, key: string): Promise<Uint8Array> {
  return runPythonBytes(
    `import pickle, sys, time
t = time.time()
msg = {"task_id": ${JSON.stringify(taskId)}, "container_id": "RAW", ${
      JSON.stringify(key)
    }: "00\\nAAA=",
       "times": {"execution_start": t, "execution_end": t, "execution_time": 0.0}}
sys.stdout.buffer.write(pickle.dumps(msg, protocol=4))`,
  );
}

Deno.test("peekResultOutcome reads ok/failed from the worker's pickle layout", async () => {
  const tid = "5f8e7c1a-1111-2222-3333-444455556666";
  assertEquals(peekResultOutcome(await workerFrame(tid, "result"), id(tid)), "ok");
  assertEquals(peekResultOutcome(await workerFrame(tid, "exception"), id(tid)), "failed");
});

Deno.test("peekResultOutcome leaves anything else to the decoder (undefined)", async () => {
  const tid = "t-1";
  const frame = await workerFrame(tid, "result");
  assertEquals(peekResultOutcome(frame, id("t-2")), undefined, "another task's result");
  assertEquals(peekResultOutcome(await workerFrame(tid, "other"), id(tid)), undefined);
  assertEquals(peekResultOutcome(frame.subarray(0, 15), id(tid)), undefined, "truncated");
  // our own encoder writes no FRAME opcode: not the worker's layout
  const ours = encodePickle({ task_id: tid, container_id: "RAW", result: "x" });
  assertEquals(peekResultOutcome(ours, id(tid)), undefined);
});
