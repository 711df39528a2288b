import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../auth/_assert.ts";
import { UnackedStore } from "../../src/endpoint/unacked.ts";
import {
  atomicWriteChunks,
  EndpointJsonError,
  readEndpointJson,
} from "../../src/endpoint/files.ts";
import { waitFor } from "../helpers/wait.ts";

function tmp(): string {
  return Deno.makeTempDirSync({ prefix: "fx-unacked-" });
}

Deno.test("unacked store: batched writes (not per result), 0600, load round trip", async () => {
  const dir = tmp();
  try {
    const path = join(dir, "unacked_results.json");
    const s = new UnackedStore(path, { debounceMs: 50 });
    for (let i = 0; i < 1000; i++) s.put(`t${i}`, new Uint8Array([128, 4, i & 0xff]));
    assert(!s.ack("nope"));
    assert(s.ack("t0"));
    // nothing on disk yet: the change batch is written after the debounce
    assertEquals(
      (() => {
        try {
          Deno.statSync(path);
          return true;
        } catch {
          return false;
        }
      })(),
      false,
    );
    // the batch is written after the debounce, in one atomic replace
    const data = await waitFor(() => JSON.parse(Deno.readTextFileSync(path)), {
      what: "the batched write of unacked_results.json",
      timeoutMs: 5000,
      everyMs: 10,
    });
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
    assertEquals(Object.keys(data).length, 999);
    assertEquals(data.t1, btoa(String.fromCharCode(128, 4, 1)));
    const again = new UnackedStore(path);
    assertEquals(again.load(), 999);
    assertEquals([...again.get("t5")!], [128, 4, 5]);
    assertEquals([...again.entries()][0][0], "t1");
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("unacked store: a corrupt file is moved aside (not lost) and reported once", () => {
  const dir = tmp();
  try {
    const path = join(dir, "unacked_results.json");
    Deno.writeTextFileSync(path, "{ truncated");
    const errors: string[] = [];
    const s = new UnackedStore(path, { onError: (m) => errors.push(m) });
    assertEquals(s.load(), 0);
    assertEquals(errors.length, 1);
    assertMatch(errors[0], /unacked_results\.json: not a JSON object.*moved aside/);
    const aside = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.includes(".corrupt-")
    );
    assertEquals(aside.length, 1);
    assertEquals(Deno.readTextFileSync(join(dir, aside[0])), "{ truncated");
    // bad entries are skipped, good ones kept
    Deno.writeTextFileSync(path, JSON.stringify({ a: "gAQ=", b: 7, c: "!!" }));
    const s2 = new UnackedStore(path, { onError: (m) => errors.push(m) });
    assertEquals(s2.load(), 1);
    assert(s2.has("a"));
    assertMatch(errors[1], /2 entries are not base64/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("unacked store: an unwritable location keeps results in memory and says so once", () => {
  const dir = tmp();
  try {
    Deno.writeTextFileSync(join(dir, "file"), "");
    const errors: string[] = [];
    const s = new UnackedStore(join(dir, "file", "unacked_results.json"), {
      onError: (m) => errors.push(m),
    });
    s.put("t1", new Uint8Array([1]));
    s.flush();
    s.flush();
    s.put("t2", new Uint8Array([2]));
    s.flush();
    assertEquals(s.size, 2);
    assertEquals(errors.length, 1);
    assertMatch(errors[0], /cannot write .*unacked_results\.json.*kept in memory/);
    s.ack("t1");
    s.ack("t2");
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("endpoint.json: corrupt content is an error that says how to recover", () => {
  const dir = tmp();
  try {
    const p = join(dir, "endpoint.json");
    assertEquals(readEndpointJson(p), null);
    for (
      const [text, why] of [["{", "not valid JSON"], ["[]", "not a JSON object"], [
        '{"endpoint_id": "x"}',
        "endpoint_id is missing or not a UUID",
      ]]
    ) {
      Deno.writeTextFileSync(p, text);
      try {
        readEndpointJson(p);
        throw new Error("expected an error");
      } catch (e) {
        assert(e instanceof EndpointJsonError);
        assertMatch(e.message, new RegExp(`endpoint\\.json: ${why}.*delete it`));
      }
    }
    Deno.writeTextFileSync(p, '{"endpoint_id": "4b116d3c-1703-4f8f-9f6f-39921e5864df"}');
    assertEquals(readEndpointJson(p)?.endpoint_id, "4b116d3c-1703-4f8f-9f6f-39921e5864df");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("unacked store: keeps a copy, not the caller's buffer; a straggler gets its own bytes", () => {
  const dir = tmp();
  try {
    const s = new UnackedStore(join(dir, "unacked_results.json"));
    const frame = new Uint8Array([128, 4, 1]);
    s.put("a", frame);
    s.put("b", new Uint8Array([128, 4, 2]));
    frame[2] = 9;
    assertEquals([...s.get("a")!], [128, 4, 1]);
    // packed together while fresh
    assert(s.get("a")!.buffer === s.get("b")!.buffer);
    s.flush();
    s.put("c", new Uint8Array([128, 4, 3]));
    s.flush(); // a and b were already written once: they stop sharing the chunk
    assertEquals([...s.get("a")!], [128, 4, 1]);
    assertEquals(s.get("a")!.buffer.byteLength, 3);
    assert(s.get("a")!.buffer !== s.get("c")!.buffer);
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("atomicWriteChunks: the chunks end up in the file, 0600, no temporary left", () => {
  const dir = tmp();
  try {
    const path = join(dir, "x.json");
    Deno.writeTextFileSync(path, "old");
    const big = "é".repeat(100_000);
    atomicWriteChunks(path, ["{", `"a":"${big}"`, "}\n"], 0o600);
    assertEquals(Deno.readTextFileSync(path), `{"a":"${big}"}\n`);
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["x.json"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
