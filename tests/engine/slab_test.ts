import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ByteSlab, SLAB_CHUNK_BYTES, SLAB_MAX_COPY_BYTES } from "../../src/engine/slab.ts";

Deno.test("slab: small byte strings are copied side by side into one shared chunk", () => {
  const slab = new ByteSlab();
  const src = new Uint8Array([1, 2, 3]);
  const a = slab.copy(src);
  const b = slab.copy(new Uint8Array([4, 5]));
  src[0] = 9; // a copy: the caller's buffer is not kept
  assertEquals([...a], [1, 2, 3]);
  assertEquals([...b], [4, 5]);
  assert(a.buffer === b.buffer);
  assertEquals(a.buffer.byteLength, SLAB_CHUNK_BYTES);
  assertEquals(b.byteOffset % 8, 0);
});

Deno.test("slab: a full chunk is followed by a new one; large bodies are kept as they are", () => {
  const slab = new ByteSlab();
  const first = slab.copy(new Uint8Array(SLAB_MAX_COPY_BYTES));
  let last = first;
  for (let i = 0; i < SLAB_CHUNK_BYTES / SLAB_MAX_COPY_BYTES; i++) {
    last = slab.copy(new Uint8Array(SLAB_MAX_COPY_BYTES));
  }
  assert(last.buffer !== first.buffer);
  const big = new Uint8Array(SLAB_MAX_COPY_BYTES + 1);
  assert(slab.copy(big) === big);
});

Deno.test("slab: detach gives slab views their own buffer and leaves other bytes alone", () => {
  const slab = new ByteSlab();
  const view = slab.copy(new Uint8Array([7, 8]));
  const own = slab.detach(view);
  assertEquals([...own], [7, 8]);
  assertEquals(own.buffer.byteLength, 2);
  const other = new Uint8Array([1]);
  assert(slab.detach(other) === other);
});
