/**
 * Seeded, time-bounded mutations of the files the program reads back — the endpoint and
 * global `config.yaml`, `endpoint.json`, the token file and `unacked_results.json` — fed to
 * the real CLI and daemon (`deno run <COMPILE_FLAGS> main.ts ...`). Every run must end
 * with a clear one-line error or success (never a stack trace or a crash), must not delete
 * or rewrite the bad file behind the user's back (a corrupt store is moved aside, not lost),
 * and a daemon fed a corrupt store must keep running, connected, with the problem logged.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { endpointConfigTemplate, globalConfigTemplate } from "../../src/config/templates.ts";
import { runCli } from "../helpers/cli.ts";
import {
  addUser,
  loginViaForm,
  startService,
  writeGlobalConfig,
  writeTokens,
} from "../helpers/service.ts";
import { fuzzSeed, Rand } from "./_rand.ts";
import { waitFor } from "../helpers/wait.ts";

const SEED = fuzzSeed(31337);
const enc = new TextEncoder();

/** No stack trace, no panic, at most one line of error text from our program. */
function checkOutput(what: string, r: { code: number; stdout: string; stderr: string }): string[] {
  const problems: string[] = [];
  const err = r.stderr.replace(/^(Warning|Download|Blocking).*\n/gm, "").trim();
  if (/^\s+at |panicked|RUST_BACKTRACE|Uncaught|segmentation/im.test(err)) {
    problems.push(`${what}: crashed: ${err.slice(0, 300)}`);
  }
  if (r.code !== 0 && err === "") problems.push(`${what}: exit ${r.code} without a message`);
  if (r.code !== 0 && err.split("\n").length > 1) {
    problems.push(`${what}: error is not one line: ${err.slice(0, 300)}`);
  }
  if (![0, 1, 2].includes(r.code)) problems.push(`${what}: exit code ${r.code}`);
  return problems;
}

/** Run `jobs` two at a time (2 cores). */
async function pool<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }));
  return out;
}

Deno.test({
  name: "fuzz: mutated config.yaml, endpoint.json and token files fed to the real CLI",
  sanitizeResources: false,
  async fn() {
    const rand = new Rand(SEED);
    const tokens = JSON.stringify(
      {
        funcx_service: {
          scope: "s",
          access_token: "at",
          refresh_token: "rt",
          token_type: "Bearer",
          expires_at_seconds: 4102444800,
          resource_server: "funcx_service",
        },
      },
      null,
      2,
    );
    const endpointJson = JSON.stringify({
      endpoint_id: crypto.randomUUID(),
      forwarder_pubkey: "x",
      public_ip: "127.0.0.1",
      tasks_port: 1,
      results_port: 2,
      commands_port: 3,
    });
    // config cases run without a token file: whatever the config, `start` stops at the
    // preflight (config error, or "not logged in") and never leaves a daemon behind
    const kinds: { file: string; valid: string; args: string[]; tokens: boolean }[] = [
      {
        file: "ep/config.yaml",
        valid: endpointConfigTemplate("ep"),
        args: ["start", "ep"],
        tokens: false,
      },
      { file: "config.yaml", valid: globalConfigTemplate(), args: ["start", "ep"], tokens: false },
      {
        file: "credentials/funcx_sdk_tokens.json",
        valid: tokens,
        args: ["whoami"],
        tokens: true,
      },
      { file: "ep/endpoint.json", valid: endpointJson, args: ["list"], tokens: true },
      { file: "ep/endpoint.json", valid: endpointJson, args: ["status", "ep"], tokens: true },
    ];
    const jobs: (() => Promise<string[]>)[] = [];
    const homes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const kind = kinds[i % kinds.length];
      const mutated = rand.next() < 0.3
        ? rand.bytes(rand.int(200))
        : rand.mutateBytes(enc.encode(kind.valid));
      const home = Deno.makeTempDirSync({ prefix: "fx-fuzz-files-" });
      homes.push(home);
      Deno.mkdirSync(join(home, "ep"), { mode: 0o700 });
      Deno.mkdirSync(join(home, "credentials"), { mode: 0o700 });
      // a dead service address: nothing here may hang on the network
      Deno.writeTextFileSync(
        join(home, "config.yaml"),
        "service_address: http://127.0.0.1:1/v2\nauth_address: http://127.0.0.1:1/auth\n",
      );
      Deno.writeTextFileSync(join(home, "ep", "config.yaml"), endpointConfigTemplate("ep"));
      if (kind.tokens) {
        Deno.writeTextFileSync(join(home, "credentials/funcx_sdk_tokens.json"), tokens, {
          mode: 0o600,
        });
      }
      Deno.writeFileSync(join(home, kind.file), mutated, { mode: 0o600 });
      jobs.push(async () => {
        const r = await runCli(home, [
          ...kind.args,
          ...(kind.args[0] === "start" ? ["--timeout", "3"] : []),
        ], {
          timeoutMs: 20_000,
        });
        const what = `${kind.args.join(" ")} with mutated ${kind.file} (seed ${SEED}, case ${i})`;
        const problems = checkOutput(what, r);
        const after = Deno.readFileSync(join(home, kind.file));
        if (after.length !== mutated.length || after.some((b, j) => b !== mutated[j])) {
          problems.push(`${what}: the file was rewritten or removed`);
        }
        return problems;
      });
    }
    try {
      const problems = (await pool(jobs)).flat();
      assertEquals(problems, []);
    } finally {
      for (const h of homes) Deno.removeSync(h, { recursive: true });
    }
  },
});

Deno.test({
  name: "fuzz: a corrupt unacked_results.json is moved aside and logged; the daemon keeps running",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const rand = new Rand(SEED + 1);
    const home = Deno.makeTempDirSync({ prefix: "fx-fuzz-unacked-" });
    const svc = await startService({ home, heartbeatPeriod: 1 });
    try {
      await addUser(home, "alice", "alice-pw");
      await writeTokens(home, await loginViaForm(svc.authUrl, "alice", "alice-pw"));
      await writeGlobalConfig(home, svc);
      const dir = join(home, "ep");
      Deno.mkdirSync(dir, { mode: 0o700 });
      Deno.writeTextFileSync(
        join(dir, "config.yaml"),
        "heartbeat_period: 1\nprovider:\n  init_blocks: 0\n  min_blocks: 0\n  max_blocks: 1\n",
      );
      // 1) not JSON at all: moved aside, logged, daemon connects
      const garbage = rand.mutateBytes(enc.encode('{"a": "AAAA", "b": "gASVCAAAAAAAAAB9lC4="}'));
      const notJson = new Uint8Array([0x7b, ...garbage, 0xff]);
      Deno.writeFileSync(join(dir, "unacked_results.json"), notJson, { mode: 0o600 });
      const r1 = await runCli(home, ["start", "ep", "--timeout", "60"]);
      assertEquals(r1.code, 0, r1.stderr);
      const aside = [...Deno.readDirSync(dir)].filter((e) => e.name.includes(".corrupt-"));
      assertEquals(aside.length, 1, "the corrupt store was moved aside");
      assertEquals(Deno.readFileSync(join(dir, aside[0].name)), notJson, "and kept byte for byte");
      const log1 = Deno.readTextFileSync(join(dir, "endpoint.log"));
      assert(/unacked_results\.json: not a JSON object/.test(log1), log1.slice(-1500));
      const stop1 = await runCli(home, ["stop", "ep"]);
      assertEquals(stop1.code, 0, stop1.stderr);

      // 2) valid JSON with bad entries and undecodable "results": skipped / dropped by the
      //    forwarder with a log line; the daemon stays connected and keeps working
      const entries: Record<string, unknown> = {
        [crypto.randomUUID()]: 42,
        [crypto.randomUUID()]: "not base64 !!",
        [crypto.randomUUID()]: btoa(String.fromCharCode(...rand.bytes(40))),
        "../../etc/passwd": btoa("x"),
      };
      Deno.writeTextFileSync(join(dir, "unacked_results.json"), JSON.stringify(entries), {
        mode: 0o600,
      });
      const r2 = await runCli(home, ["start", "ep", "--timeout", "60"]);
      assertEquals(r2.code, 0, r2.stderr);
      await waitFor(() => Deno.readTextFileSync(join(dir, "endpoint.log")), {
        what: "the endpoint's log line about the skipped entries",
        until: (log) => /entries are not base64 strings and were skipped/.test(log),
        describe: (log) => log?.slice(-1500) ?? "",
      });
      await waitFor(() => Deno.readTextFileSync(join(home, "service", "service.log")), {
        what: "the forwarder's log line about the undecodable result",
        until: (log) => /dropped .*result/.test(log),
        describe: (log) => log?.slice(-1500) ?? "",
      });
      // after the forwarder dropped it, the daemon is still connected (a fresh status.json)
      const seen = Date.now();
      await waitFor(() => JSON.parse(Deno.readTextFileSync(join(dir, "status.json"))), {
        what: "a status.json written after the drop, connected",
        until: (st) => st.state === "connected" && Date.parse(st.updated_at) > seen,
      });
      const stop2 = await runCli(home, ["stop", "ep"]);
      assertEquals(stop2.code, 0, stop2.stderr);
    } finally {
      await runCli(home, ["stop", "ep"]).catch(() => {});
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
