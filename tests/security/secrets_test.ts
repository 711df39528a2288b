/**
 * Secrets at rest and in flight, with the real service, the real CLI (`start` as a daemon,
 * using a service account through `FUNCX_SDK_CLIENT_ID`/`_SECRET`) and real python3
 * workers:
 * - every token, key, secret and state file below the funcX home is 0600 in 0700 dirs;
 * - no token, client secret, endpoint secret or CURVE secret key appears in any log;
 * - a submitted function sees none of them in its environment (`os.environ`).
 */
import { clientCredentialsKey } from "../../src/auth/access.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join, relative } from "node:path";
import { parseCertificate } from "../../src/protocol/zpl.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { runCli } from "../helpers/cli.ts";
import {
  addClient,
  addUser,
  loginViaForm,
  startService,
  writeGlobalConfig,
} from "../helpers/service.ts";
import { waitFor } from "../helpers/wait.ts";

function walk(dir: string, out: string[] = []): string[] {
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) walk(p, out);
    out.push(p);
  }
  return out;
}

/** Log files with a group/other-readable mode, found by the first test. */
const _logModeProblems: string[] = [];
let _logModesChecked = false;

Deno.test({
  name: "security: secrets are 0600, never logged, and not in a worker's environment",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-sec-secrets-" });
    const svc = await startService({ home, heartbeatPeriod: 1 });
    const canary = `canary-${crypto.randomUUID()}`;
    const secrets: Record<string, string> = {};
    try {
      await addUser(home, "alice", "alice-pw");
      const robot = await addClient(home, "robot");
      await writeGlobalConfig(home, svc);
      Deno.mkdirSync(join(home, "ep"), { mode: 0o700 });
      Deno.writeTextFileSync(
        join(home, "ep", "config.yaml"),
        [
          "heartbeat_period: 1",
          "log_level: debug",
          "provider:",
          "  init_blocks: 1",
          "  min_blocks: 1",
          "  max_blocks: 1",
          "executor:",
          "  max_workers_per_node: 1",
          "",
        ].join("\n"),
      );
      const env = {
        FUNCX_SDK_CLIENT_ID: robot.clientId,
        FUNCX_SDK_CLIENT_SECRET: robot.clientSecret,
        MY_SERVICE_TOKEN: canary,
        DB_PASSWORD: canary,
      };
      const start = await runCli(home, ["start", "ep", "--timeout", "60"], { env });
      assertEquals(start.code, 0, start.stderr);
      try {
        const endpointId = JSON.parse(
          Deno.readTextFileSync(join(home, "ep", "endpoint.json")),
        ).endpoint_id as string;
        // the service account owns the endpoint; it submits a function that dumps its env
        const tok = await fetch(`${svc.authUrl}/v2/oauth2/token`, {
          method: "POST",
          body: new URLSearchParams({
            grant_type: "client_credentials",
            client_id: robot.clientId,
            client_secret: robot.clientSecret,
            scope: "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all",
          }),
        });
        const token = (await tok.json()).access_token as string;
        assert(token, "client credentials token");
        const fx = new FuncXClient({ serviceAddress: svc.url, token });
        const fn = await fx.registerFunction(
          "def dump_env():\n    import os\n    return dict(os.environ)\n",
          "dump_env",
        );
        const [id] = await fx.submit([{ functionId: fn, endpointId }]);
        const res = (await fx.waitForResults([id], { timeoutMs: 60_000 })).get(id)!;
        assert(!res.pending && !res.error, `dump_env: ${res.error?.message ?? res.status}`);
        const workerEnv = res.value instanceof Map
          ? Object.fromEntries([...res.value].map(([k, v]) => [String(k), String(v)]))
          : res.value as Record<string, string>;
        assert(Object.keys(workerEnv).length > 0, "the worker returned its environment");

        // every secret we can name
        const tokenFile = JSON.parse(
          Deno.readTextFileSync(join(home, "credentials", "funcx_sdk_tokens.json")),
        );
        const cached = tokenFile[clientCredentialsKey(robot.clientId)];
        const epJson = JSON.parse(Deno.readTextFileSync(join(home, "ep", "endpoint.json")));
        const epKey = parseCertificate(
          Deno.readTextFileSync(join(home, "ep", "certificates", "endpoint.key_secret")),
          "endpoint.key_secret",
        );
        const svcKey = parseCertificate(
          Deno.readTextFileSync(join(home, "service", "curve", "server.key_secret")),
          "server.key_secret",
        );
        Object.assign(secrets, {
          "client secret": robot.clientSecret,
          // credentials from the environment are cached under their own key
          "access token": cached.access_token,
          "endpoint secret": epJson.endpoint_secret,
          "endpoint CURVE secret key": epKey.secretKey!,
          "service CURVE secret key": svcKey.secretKey!,
          "user access token": (await loginViaForm(svc.authUrl, "alice", "alice-pw")).access_token,
          canary,
        });
        if (cached.refresh_token) {
          secrets["refresh token"] = cached.refresh_token;
        }
        for (const [what, v] of Object.entries(secrets)) assert(v && v.length >= 16, what);

        // 1) the worker's environment
        const envText = Object.entries(workerEnv).map(([k, v]) => `${k}=${v}`).join("\n");
        const inEnv = Object.entries(secrets).filter(([, v]) => envText.includes(v));
        assertEquals(inEnv.map(([k]) => k), [], "secrets visible in the worker's os.environ");
        assertEquals(
          Object.keys(workerEnv).filter((k) => /FUNCX_SDK_CLIENT|TOKEN|SECRET|PASSWORD/i.test(k)),
          [],
        );

        // let a few heartbeats and debug lines reach the logs (status.json is rewritten on
        // each heartbeat: wait for two more), then stop cleanly
        const seen = Date.now();
        await waitFor(() => JSON.parse(Deno.readTextFileSync(join(home, "ep", "status.json"))), {
          what: "two more heartbeats",
          until: (st) => Date.parse(st.updated_at) > seen + 1000,
        });
        const stop = await runCli(home, ["stop", "ep"]);
        assertEquals(stop.code, 0, stop.stderr);
      } finally {
        await runCli(home, ["stop", "ep"]).catch(() => {});
      }
      await svc.stop();

      // 2) modes of everything secret or stateful, and of the directories holding them
      const files = walk(home);
      const badModes: string[] = [];
      for (const f of files) {
        const st = Deno.lstatSync(f);
        const rel = relative(home, f);
        const mode = st.mode! & 0o777;
        const isSecret =
          /(^credentials\/|certificates\/|curve\/server\.key_secret|endpoint\.json$|unacked_results|funcx\.sqlite|\.log(\.\d+)?$|status\.json$|daemon\.pid$|service\.json$)/
            .test(rel);
        if (
          st.isDirectory && /^(credentials|ep|service|ep\/certificates|service\/curve)$/.test(rel)
        ) {
          if (mode !== 0o700) badModes.push(`${rel}/ is ${mode.toString(8)}, expected 700`);
        } else if (st.isFile && isSecret && (mode & 0o077) !== 0) {
          const msg = `${rel} is ${mode.toString(8)}, expected 600`;
          // logs are checked by the next test (known bug, see there)
          if (/\.log(\.\d+)?$/.test(rel)) _logModeProblems.push(msg);
          else badModes.push(msg);
        }
      }
      _logModesChecked = true;
      assertEquals(badModes, []);

      // 3) no secret in any log (endpoint, service, managers, workers, submit scripts)
      const logs = files.filter((f) =>
        /\.(log|stderr|stdio)(\.\d+)?$/.test(f) || f.includes("worker_logs")
      ).filter((f) => Deno.statSync(f).isFile);
      assert(logs.length >= 3, `logs found: ${logs.map((f) => relative(home, f))}`);
      const leaks: string[] = [];
      for (const f of logs) {
        const text = Deno.readTextFileSync(f);
        for (const [what, v] of Object.entries(secrets)) {
          if (what === "canary") continue; // the worker's env dump is a result, not a log
          if (text.includes(v)) leaks.push(`${relative(home, f)} contains the ${what}`);
        }
      }
      assertEquals(leaks, []);
    } finally {
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "security: daemon logs (endpoint.log, service.log) are 0600 like the files they describe",
  fn() {
    assert(_logModesChecked, "runs after the test above");
    assertEquals(_logModeProblems, []);
  },
});
