/**
 * Seeded, time-bounded fuzzing of the endpoint's forwarder channels: random and mutated
 * frames on the tasks and commands channels (from a test-side CURVE forwarder). The daemon
 * must not crash or disconnect, must report what it dropped (bounded), and must keep
 * answering heartbeats and acks afterwards.
 */
import { join } from "node:path";
import { assert } from "../auth/_assert.ts";
import { TokenStore } from "../../src/auth/tokens.ts";
import { Endpoint } from "../../src/endpoint/endpoint.ts";
import { DEFAULT_ENDPOINT_CONFIG, DEFAULT_GLOBAL_CONFIG } from "../../src/config/types.ts";
import { createLogger } from "../../src/daemon/log.ts";
import {
  MessageType,
  packHeartbeat,
  packResultsAck,
  packTask,
  unpackMessage,
} from "../../src/protocol/messages.ts";
import { TestForwarder } from "./_forwarder.ts";
import { rng } from "../fuzz/_rand.ts";

const SEED = 20261125;
const BUDGET_MS = 4000;

Deno.test({
  name: "endpoint fuzz: random and mutated frames on the tasks and commands channels (seeded)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const rnd = rng(SEED);
    const int = (n: number) => Math.floor(rnd() * n);
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
    const fwd = await TestForwarder.start();
    const home = Deno.makeTempDirSync({ prefix: "fx-fuzz-" });
    new TokenStore(home).set({
      scope: "s",
      access_token: "fxa_fuzz_access_token",
      refresh_token: null,
      token_type: "Bearer",
      expires_at_seconds: Math.floor(Date.now() / 1000) + 3600,
      resource_server: "funcx_service",
    });
    const config = structuredClone(DEFAULT_ENDPOINT_CONFIG);
    config.heartbeat_period = 0.5;
    config.heartbeat_threshold = 30;
    config.provider.init_blocks = 0;
    config.provider.min_blocks = 0;
    config.provider.max_blocks = 0;
    const log = createLogger({ file: join(home, "fuzz.log"), level: "info" });
    const ep = await Endpoint.start({
      home,
      name: "ep",
      config,
      global: { ...DEFAULT_GLOBAL_CONFIG, service_address: fwd.url },
      log,
    });
    try {
      const id = ep.endpointId;
      await fwd.waitFor("connected", () => ep.state === "connected");
      const valid = [
        () => packTask(crypto.randomUUID(), "RAW", bytes(int(64))),
        () => packResultsAck(crypto.randomUUID()),
        () => packHeartbeat(id),
        () => new Uint8Array([1]),
      ];
      const t0 = Date.now();
      let sent = 0;
      while (Date.now() - t0 < BUDGET_MS && sent < 3000) {
        let frame: Uint8Array;
        const kind = int(4);
        if (kind === 0) frame = bytes(int(40)); // pure noise (incl. empty)
        else if (kind === 1) frame = new Uint8Array([1 + int(8), ...bytes(int(40))]); // typed noise
        else {
          frame = valid[int(valid.length)]().slice(); // a valid message with bit flips
          for (let k = 0; k < 1 + int(4); k++) {
            if (frame.length) frame[int(frame.length)] ^= 1 << int(8);
          }
        }
        fwd.send(int(3) === 0 ? "commands" : "tasks", id, frame);
        if (++sent % 100 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      // still alive, still connected, still answering: the heartbeat is answered after all the
      // noise before it on the same connection was handled
      const before = fwd.received.commands.length;
      fwd.sendHeartbeatReq(id);
      await fwd.waitFor("heartbeat reply", () =>
        fwd.received.commands.slice(before).some((r) => {
          try {
            const m = unpackMessage(r.payload);
            return m.type === MessageType.HEARTBEAT && m.endpointId === id;
          } catch {
            return false;
          }
        }));
      // status.json is rewritten every second: wait for the one that has the errors
      const readStatus = () => {
        try {
          return JSON.parse(Deno.readTextFileSync(join(home, "ep", "status.json")));
        } catch {
          return undefined; // being replaced
        }
      };
      const st = await fwd.waitFor("errors in status.json", () => {
        const v = readStatus();
        return v?.errors?.length ? v : undefined;
      });
      assert(st.errors.length > 0 && st.errors.length <= 50, "bad input reported, bounded");
      assert(
        st.errors.some((e: { message: string }) =>
          /dropped a (tasks|commands) message/.test(e.message)
        ),
      );
    } finally {
      await ep.stop("fuzz done");
      log.close();
      await fwd.close();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
