/**
 * The compiled permission set keeps the program inside the funcX home, tested with real
 * attempts through `deno run <COMPILE_FLAGS> main.ts`: `--config-dir` chooses the home but
 * cannot reach out of it, endpoint names cannot traverse, config keys that would name paths
 * outside are refused, and a symlink planted inside the home does not let the daemon or the
 * service write (logs) outside it.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { runCli, spawnMain } from "../helpers/cli.ts";
import { writeTokens } from "../helpers/service.ts";

function tmp(prefix: string): string {
  return Deno.makeTempDirSync({ prefix });
}

Deno.test("security: --config-dir selects the home, it does not open the rest of the disk", async () => {
  const home = tmp("fx-sec-sb-");
  const other = tmp("fx-sec-other-");
  try {
    Deno.writeTextFileSync(join(other, "secret.txt"), "do not read\n");
    // home chosen with -c: the old FUNCX_HOME and any other directory stay out of reach
    const r = await runCli(other, [
      "-c",
      home,
      "debug-sandbox",
      "--read",
      join(other, "secret.txt"),
      "--write",
      join(other, "planted.txt"),
    ]);
    assertEquals(r.code, 3, r.stdout + r.stderr);
    assert(/read .*: denied/.test(r.stdout), r.stdout);
    assert(/write .*: denied/.test(r.stdout), r.stdout);
    assertEquals([...Deno.readDirSync(other)].map((e) => e.name), ["secret.txt"]);
    // relative and dotted homes resolve to one directory, the sandbox is that directory
    const r2 = await runCli(other, [
      "--config-dir",
      `${home}/sub/..`,
      "debug-sandbox",
      "--write",
      `${home}/../${other.split("/").pop()}/x`,
    ]);
    assertEquals(r2.code, 3, r2.stdout + r2.stderr);
  } finally {
    Deno.removeSync(home, { recursive: true });
    Deno.removeSync(other, { recursive: true });
  }
});

Deno.test("security: endpoint names and config keys cannot point outside the home", async () => {
  const parent = tmp("fx-sec-sb-");
  const home = join(parent, "home");
  try {
    for (const name of ["../escape", "/tmp/abs", "..", "a/../../b", "credentials"]) {
      const r = await runCli(home, ["configure", name]);
      assert(r.code !== 0, `configure ${name} succeeded`);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    assertEquals([...Deno.readDirSync(parent)].map((e) => e.name), ["home"]);
    // a made-up path key is refused with a one-line error naming file and key
    Deno.mkdirSync(join(home, "ep"), { recursive: true });
    Deno.writeTextFileSync(join(home, "ep", "config.yaml"), "worker_logdir: /etc\n");
    const r = await runCli(home, ["start", "ep", "--foreground"]);
    assert(r.code !== 0);
    assert(/config\.yaml.*worker_logdir/.test(r.stderr), r.stderr);
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
});

/** Run `main.ts args` in the background; stop it with SIGTERM after `ms`; its stderr. */
async function runFor(home: string, args: string[], ms: number): Promise<string> {
  const p = spawnMain(home, args, 4_000_000);
  await new Promise((r) => setTimeout(r, ms));
  try {
    p.child.kill("SIGTERM");
  } catch { /* exited */ }
  const t = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* exited */ }
  }, 20_000);
  await p.child.status;
  await p.drained;
  clearTimeout(t);
  return p.stderr();
}

Deno.test({
  name: "security: a symlink planted in the endpoint dir does not let the daemon write outside",
  sanitizeResources: false,
  async fn() {
    const home = tmp("fx-sec-sb-");
    const outside = tmp("fx-sec-outside-");
    try {
      const victim = join(outside, "victim.txt");
      Deno.writeTextFileSync(victim, "original\n");
      Deno.writeTextFileSync(
        join(home, "config.yaml"),
        "service_address: http://127.0.0.1:1/v2\nauth_address: http://127.0.0.1:1/auth\n",
      );
      await writeTokens(home, {
        access_token: "at-not-real",
        refresh_token: "rt-not-real",
        token_type: "Bearer",
        expires_in: 3600,
        expires_at_seconds: Math.floor(Date.now() / 1000) + 3600,
        scope: "x",
        resource_server: "funcx_service",
      });
      Deno.mkdirSync(join(home, "ep"), { mode: 0o700 });
      Deno.writeTextFileSync(
        join(home, "ep", "config.yaml"),
        "provider:\n  init_blocks: 0\n  min_blocks: 0\n",
      );
      Deno.symlinkSync(victim, join(home, "ep", "endpoint.log"));
      const stderr = await runFor(home, ["start", "ep", "--foreground"], 4000);
      assertEquals(
        Deno.readTextFileSync(victim),
        "original\n",
        `the daemon wrote through the symlink to ${victim}; its stderr: ${stderr.slice(0, 500)}`,
      );
    } finally {
      Deno.removeSync(home, { recursive: true });
      Deno.removeSync(outside, { recursive: true });
    }
  },
});

Deno.test({
  name: "security: a symlink planted in the service dir does not let the service write outside",
  sanitizeResources: false,
  async fn() {
    const home = tmp("fx-sec-sb-");
    const outside = tmp("fx-sec-outside-");
    try {
      const victim = join(outside, "victim.txt");
      Deno.writeTextFileSync(victim, "original\n");
      Deno.mkdirSync(join(home, "service"), { mode: 0o700 });
      Deno.symlinkSync(victim, join(home, "service", "service.log"));
      const stderr = await runFor(home, ["service", "start", "--foreground", "--port", "0"], 4000);
      assertEquals(
        Deno.readTextFileSync(victim),
        "original\n",
        `the service wrote through the symlink to ${victim}; its stderr: ${stderr.slice(0, 500)}`,
      );
    } finally {
      Deno.removeSync(home, { recursive: true });
      Deno.removeSync(outside, { recursive: true });
    }
  },
});

Deno.test({
  name: "security: a symlink planted as the service's public key file does not lead outside",
  sanitizeResources: false,
  async fn() {
    const home = tmp("fx-sec-sb-");
    const outside = tmp("fx-sec-outside-");
    try {
      // Deno checks write permission on the path as written, so a write that follows a
      // symlink inside the home lands outside it; files must be replaced (temp + rename).
      const victim = join(outside, "victim.txt");
      Deno.writeTextFileSync(victim, "original\n");
      Deno.mkdirSync(join(home, "service", "curve"), { recursive: true, mode: 0o700 });
      Deno.symlinkSync(victim, join(home, "service", "curve", "server.key"));
      const stderr = await runFor(home, ["service", "start", "--foreground", "--port", "0"], 4000);
      assertEquals(
        Deno.readTextFileSync(victim),
        "original\n",
        `the service wrote through service/curve/server.key to ${victim}; stderr: ${
          stderr.slice(0, 300)
        }`,
      );
    } finally {
      Deno.removeSync(home, { recursive: true });
      Deno.removeSync(outside, { recursive: true });
    }
  },
});
