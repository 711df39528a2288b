/**
 * Seeded, bounded fuzzing of the config parser and of the files `list`/`status` read:
 * whatever the bytes, the result is a valid config or one ConfigError line, never a
 * crash, and `list`/`status` keep working.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, parseEndpointConfig, parseGlobalConfig } from "../../src/config/schema.ts";
import { endpointConfigTemplate, globalConfigTemplate } from "../../src/config/templates.ts";
import type { EndpointConfig } from "../../src/config/types.ts";
import { runCli, tempHome } from "../helpers/cli.ts";
import { rng } from "../fuzz/_rand.ts";

const SEED = 0x5eed2026;
const ROUNDS = 3000;
const TIME_BOUND_MS = 20_000;

const TOKENS = [
  ":",
  "-",
  "[",
  "]",
  "{",
  "}",
  "#",
  "&a",
  "*a",
  "!!str ",
  "|",
  ">",
  "'",
  '"',
  "\t",
  "\n",
  "  ",
  "null",
  "~",
  "true",
  "1e309",
  "-1",
  "0x1F",
  ".inf",
  "<<: *a",
  "%YAML 1.1\n",
  "---\n",
  "\u0000",
  "\uFEFF",
  "é",
  "provider:",
  "type: slurm",
  "executor:",
  "max_blocks: 9",
];

function mutate(text: string, rnd: () => number): string {
  let s = text;
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(rnd() * (s.length + 1));
    switch (Math.floor(rnd() * 5)) {
      case 0: // delete a span
        s = s.slice(0, pos) + s.slice(pos + 1 + Math.floor(rnd() * 20));
        break;
      case 1: // insert a YAML-significant token
        s = s.slice(0, pos) + TOKENS[Math.floor(rnd() * TOKENS.length)] + s.slice(pos);
        break;
      case 2: // replace a char by a random one
        s = s.slice(0, pos) + String.fromCharCode(Math.floor(rnd() * 128)) + s.slice(pos + 1);
        break;
      case 3: { // duplicate a line
        const lines = s.split("\n");
        const l = Math.floor(rnd() * lines.length);
        lines.splice(l, 0, lines[l]);
        s = lines.join("\n");
        break;
      }
      default: // truncate
        s = s.slice(0, pos);
    }
  }
  return s;
}

function checkValid(c: EndpointConfig) {
  assert(["local", "slurm", "pbs"].includes(c.provider.type));
  assert(Number.isInteger(c.provider.max_blocks) && c.provider.max_blocks >= 0);
  assert(c.provider.min_blocks <= c.provider.max_blocks);
  assert(c.heartbeat_threshold > c.heartbeat_period);
  assert(typeof c.executor.python === "string" && !/\s/.test(c.executor.python));
  assert(c.executor.cores_per_worker > 0);
}

Deno.test(`fuzz: mutated config.yaml -> valid config or one-line ConfigError (seed ${SEED})`, () => {
  const rnd = rng(SEED);
  const bases = [
    endpointConfigTemplate("fuzz"),
    "provider:\n  type: slurm\n  partition: debug\n  max_blocks: 4\nexecutor:\n  address: 10.0.0.1\n",
    "heartbeat_period: 5\nheartbeat_threshold: 10\n",
  ];
  const t0 = Date.now();
  let ok = 0;
  let rejected = 0;
  for (let i = 0; i < ROUNDS && Date.now() - t0 < TIME_BOUND_MS; i++) {
    const text = mutate(bases[i % bases.length], rnd);
    try {
      checkValid(parseEndpointConfig(text, "/h/fuzz/config.yaml"));
      ok++;
    } catch (e) {
      if (!(e instanceof ConfigError)) {
        throw new Error(`round ${i}: ${e} for input ${JSON.stringify(text)}`);
      }
      assert(!e.message.includes("\n"), e.message);
      assert(e.message.startsWith("/h/fuzz/config.yaml: "), e.message);
      rejected++;
    }
    const g = mutate(globalConfigTemplate(), rnd);
    try {
      parseGlobalConfig(g, "/h/config.yaml");
    } catch (e) {
      if (!(e instanceof ConfigError)) throw new Error(`round ${i}: ${e} for ${JSON.stringify(g)}`);
    }
  }
  assert(ok > 0 && rejected > 0, `ok=${ok} rejected=${rejected}`);
});

Deno.test({
  name: `fuzz: mutated endpoint.json/status.json/daemon.pid/config.yaml never break the CLI`,
  sanitizeResources: false,
  fn: async () => {
    const rnd = rng(SEED + 1);
    const home = tempHome();
    assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
    const dir = join(home, "ep");
    const status = JSON.stringify({
      pid: Deno.pid,
      name: "ep",
      endpoint_id: "0b4b0c9e-6d66-4f5a-9e3a-3d1c3c2f5a11",
      state: "connected",
      started_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
      last_heartbeat: null,
      heartbeat_threshold: 120,
      tasks: { queued: 1, running: 0, completed: 0, failed: 0 },
      unacked_results: 0,
      blocks: [{ block_id: "0", job_id: "1", state: "RUNNING", nodes: 1 }],
      managers: [],
      errors: [{ time: "t", source: "provider", message: "m" }],
    });
    const epJson = JSON.stringify({ endpoint_id: "0b4b0c9e-6d66-4f5a-9e3a-3d1c3c2f5a11" });
    const template = endpointConfigTemplate("ep");
    for (let round = 0; round < 4; round++) {
      Deno.writeTextFileSync(join(dir, "endpoint.json"), mutate(epJson, rnd));
      Deno.writeTextFileSync(join(dir, "status.json"), mutate(status, rnd));
      Deno.writeTextFileSync(join(dir, "daemon.pid"), mutate(`${Deno.pid}\n1\n`, rnd));
      Deno.writeTextFileSync(join(dir, "config.yaml"), mutate(template, rnd));
      const [l, s, st] = await Promise.all([
        runCli(home, ["list", "--json"]),
        runCli(home, ["status", "ep"]),
        runCli(home, ["start", "ep"]),
      ]);
      assertEquals(l.code, 0, l.stderr);
      assertEquals(JSON.parse(l.stdout)[0].name, "ep");
      assertEquals(s.code, 0, s.stderr);
      // start refuses (bad config or not logged in) with one line, never a trace
      assertEquals(st.code, 1, st.stdout);
      const lines = st.stderr.trim().split("\n");
      assertEquals(lines.length, 1, st.stderr);
      assert(lines[0].startsWith("funcx-endpoint: "), st.stderr);
    }
    Deno.removeSync(home, { recursive: true });
  },
});
