/**
 * The service's SQLite store: users and clients, tokens (hashed), results stored once,
 * final states never overwritten, status log pruning, persistence across reopen.
 */
import { deepStrictEqual as assertEquals, match, ok as assert, throws } from "node:assert/strict";
import { join } from "node:path";
import { FUNCX_SCOPE } from "../../src/config/types.ts";
import { sha256Hex } from "../../src/service/secrets.ts";
import { ServiceStore, StoreError } from "../../src/service/store.ts";

function tempStore(): { store: ServiceStore; path: string } {
  const dir = Deno.makeTempDirSync({ prefix: "fx-store-" });
  const path = join(dir, "funcx.sqlite");
  return { store: ServiceStore.open(path), path };
}

Deno.test("store: users, clients and tokens", () => {
  const { store, path } = tempStore();
  try {
    const alice = store.addUser("alice", "pw");
    throws(
      () => store.addUser("alice", "x"),
      (e: Error) => e instanceof StoreError && /already exists/.test(e.message),
    );
    throws(() => store.addUser("a b", "x"), /user name "a b" is invalid/);
    throws(() => store.addUser("bob", ""), /password must not be empty/);
    assertEquals(store.checkPassword("alice", "pw")?.id, alice.id);
    assertEquals(store.checkPassword("alice", "PW"), undefined);
    assertEquals(store.checkPassword("nobody", "pw"), undefined);

    const c = store.addClient("robot");
    assertEquals(store.getClient(c.clientId)?.secret_hash, sha256Hex(c.clientSecret));
    throws(() => store.addClient("robot"), /client "robot" already exists/);
    // a client identity cannot log in with a password
    assertEquals(store.checkPassword("client:robot", ""), undefined);

    const t = store.issueTokens({
      userId: alice.id,
      clientId: "c",
      scope: FUNCX_SCOPE,
      lifetime: 60,
      refresh: true,
    });
    const info = store.lookupToken(t.accessToken, "access");
    assertEquals(info?.username, "alice");
    assert(info!.expiresAt > Date.now() / 1000);
    assertEquals(store.lookupToken(t.accessToken, "refresh"), undefined);
    assertEquals(
      store.lookupToken(t.refreshToken!, "refresh")?.expiresAt,
      Number.POSITIVE_INFINITY,
    );
    assert(store.revokeToken(t.accessToken));
    assertEquals(store.lookupToken(t.accessToken, "access"), undefined);
    store.close();
    // only hashes on disk
    const raw = Deno.readFileSync(path);
    const text = new TextDecoder("latin1").decode(raw);
    assert(!text.includes(t.refreshToken!), "refresh token stored in clear");
    assert(!text.includes(c.clientSecret), "client secret stored in clear");
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
  } finally {
    store.close();
  }
});

Deno.test("store: results are stored once, finals never change, survive reopening", () => {
  const { store, path } = tempStore();
  const ep = crypto.randomUUID();
  const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  store.insertTasks(ids.map((uuid) => ({
    uuid,
    userId: 1,
    functionUuid: "f",
    endpointUuid: ep,
    taskGroupId: "g",
    container: "RAW",
    payload: `payload-${uuid}`,
  })));
  assertEquals(store.pendingTasks(ep, true).map((t) => t.uuid), ids);
  store.updateStatuses(new Map([[ids[0], "waiting-for-nodes"]]));
  assertEquals(store.pendingTasks(ep, true).map((t) => t.uuid), ids.slice(1));
  store.updateStatuses(new Map([[ids[1], "waiting-for-nodes"]]));
  const stored = store.storeResults([
    // never delivered (still waiting-for-ep): not stored
    { taskId: ids[2], endpointUuid: ep, result: "00\nNEVER-SENT" },
    { taskId: ids[0], endpointUuid: ep, result: "00\nA" },
    { taskId: ids[0], endpointUuid: ep, result: "00\nDUP" },
    { taskId: ids[1], endpointUuid: crypto.randomUUID(), result: "00\nOTHER-EP" },
    { taskId: ids[1], endpointUuid: ep, exception: "00\nE" },
    { taskId: crypto.randomUUID(), endpointUuid: ep, result: "00\nUNKNOWN" },
  ]);
  assertEquals([...stored].sort(), [ids[0], ids[1]].sort());
  store.updateStatuses(new Map([[ids[0], "running"], [ids[2], "running"]]));
  store.close();

  const again = ServiceStore.open(path);
  try {
    const rows = again.getTasks(ids);
    assertEquals(rows.get(ids[0])?.status, "success");
    assertEquals(rows.get(ids[0])?.result, "00\nA");
    assertEquals(rows.get(ids[1])?.status, "failed");
    assertEquals(rows.get(ids[1])?.exception, "00\nE");
    assertEquals(rows.get(ids[2])?.status, "running");
    assertEquals(again.pendingTasks(ep).map((t) => t.payload), [`payload-${ids[2]}`]);
    assertEquals(again.taskCounts(), { queued: 0, running: 1, done: 2 });
    again.deleteTasks([ids[0]]);
    assertEquals(again.getTask(ids[0]), undefined);
    // status log keeps the newest 10
    again.addStatusReports(
      Array.from({ length: 15 }, (_, i) => ({ uuid: ep, ts: i, info: { i } })),
    );
    const log = again.statusLog(ep, 50);
    assertEquals(log.length, 10);
    assertEquals(log[0].info, { i: 14 });
  } finally {
    again.close();
  }
});

Deno.test("store: auth codes are single use", () => {
  const { store } = tempStore();
  try {
    const code = store.createAuthCode({
      user_id: 1,
      client_id: "c",
      redirect_uri: "http://127.0.0.1/x",
      code_challenge: "x".repeat(43),
      scope: FUNCX_SCOPE,
      expires_at: Date.now() / 1000 + 60,
    });
    match(code, /^fxc_/);
    assertEquals(store.consumeAuthCode(code)?.client_id, "c");
    assertEquals(store.consumeAuthCode(code), undefined);
  } finally {
    store.close();
  }
});

Deno.test("store: tasks of connected endpoints are inserted as delivered in the same transaction", () => {
  const { store } = tempStore();
  try {
    const online = crypto.randomUUID();
    const offline = crypto.randomUUID();
    const row = (endpointUuid: string) => ({
      uuid: crypto.randomUUID(),
      userId: 1,
      functionUuid: "f",
      endpointUuid,
      taskGroupId: "g",
      container: "RAW",
      payload: "p",
    });
    const rows = [row(online), row(offline), row(online)];
    store.insertTasks(rows, new Set([online]));
    const got = store.getTasks(rows.map((r) => r.uuid));
    assertEquals(rows.map((r) => got.get(r.uuid)?.status), [
      "waiting-for-nodes",
      "waiting-for-ep",
      "waiting-for-nodes",
    ]);
    // never-delivered lists only the offline endpoint's task; a reconnect re-sends all three
    assertEquals(store.pendingTasks(online, true), []);
    assertEquals(store.pendingTasks(offline, true).map((t) => t.uuid), [rows[1].uuid]);
    assertEquals(store.pendingTasks(online).map((t) => t.uuid), [rows[0].uuid, rows[2].uuid]);
    // a delivered task can be answered by its endpoint
    const stored = store.storeResults([
      { taskId: rows[0].uuid, endpointUuid: online, result: "00\nX" },
      { taskId: rows[1].uuid, endpointUuid: offline, result: "00\nY" },
    ]);
    assertEquals([...stored], [rows[0].uuid]);
  } finally {
    store.close();
  }
});
