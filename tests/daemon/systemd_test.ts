/**
 * The enable-on-boot unit: checked by the real `systemd-analyze verify` (system and user
 * units, a funcX home with a space and a `%` in its path), a broken unit as the control that
 * verify does check, and the CLI where systemd is not PID 1 (this test machine).
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { SYSTEM_UNIT_DIR, systemUnitDir, workerPermissions } from "../../src/config/permissions.ts";
import { selfCommand } from "../../src/config/sandbox.ts";
import { systemdQuote, systemdStateProblem, unitText } from "../../src/daemon/systemd.ts";
import { runCli, tempHome } from "../helpers/cli.ts";

async function verify(file: string, user: boolean): Promise<{ code: number; stderr: string }> {
  const runtime = Deno.makeTempDirSync({ prefix: "fx-xdg-" });
  try {
    const out = await new Deno.Command("systemd-analyze", {
      args: [...(user ? ["--user"] : []), "verify", "--man=no", file],
      env: { XDG_RUNTIME_DIR: runtime },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr).trim() };
  } finally {
    Deno.removeSync(runtime, { recursive: true });
  }
}

Deno.test("systemdQuote: bare when safe, quoted otherwise, % doubled", () => {
  assertEquals(systemdQuote("/usr/bin/x"), "/usr/bin/x");
  assertEquals(systemdQuote("/a b/c"), '"/a b/c"');
  assertEquals(systemdQuote('a"b\\c'), '"a\\"b\\\\c"');
  assertEquals(systemdQuote("50%"), "50%%");
  assertEquals(systemdStateProblem("running"), undefined);
  assertEquals(systemdStateProblem("degraded"), undefined);
  assertEquals(systemdStateProblem("offline"), "systemctl is-system-running: offline");
});

Deno.test("the generated units pass systemd-analyze verify (system with User=, user)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-unit-" });
  try {
    const home = join(dir, "my home 100%");
    Deno.mkdirSync(join(home, "ep"), { recursive: true });
    const self = selfCommand();
    for (const mode of ["system", "user"] as const) {
      const text = unitText({
        name: "ep",
        home,
        command: [self.cmd, ...self.args],
        path: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        mode,
        user: mode === "system" ? "root" : undefined,
      });
      match(text, /^ExecStart=\S+.* start ep --foreground$/m);
      match(text, /^Restart=on-failure$/m);
      match(text, /^Environment="FUNCX_HOME=.*my home 100%%"$/m);
      assertEquals(/^User=root$/m.test(text), mode === "system");
      match(
        text,
        mode === "system" ? /^WantedBy=multi-user\.target$/m : /^WantedBy=default\.target$/m,
      );
      const file = join(dir, `funcx-endpoint-ep-${mode}.service`);
      Deno.writeTextFileSync(file, text);
      const v = await verify(file, mode === "user");
      assertEquals(v, { code: 0, stderr: "" }, text);
    }
    // the control: verify does fail a unit whose program does not exist
    const bad = join(dir, "funcx-endpoint-bad.service");
    Deno.writeTextFileSync(
      bad,
      unitText({
        name: "ep",
        home,
        command: ["/nonexistent/funcx-endpoint"],
        path: "/bin",
        mode: "system",
      }),
    );
    const v = await verify(bad, false);
    assert(v.code !== 0);
    match(v.stderr, /\/nonexistent\/funcx-endpoint is not executable/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

async function systemdRuns(): Promise<boolean> {
  const out = await new Deno.Command("systemctl", { args: ["is-system-running"], stdout: "piped" })
    .output().catch(() => undefined);
  return out !== undefined &&
    systemdStateProblem(new TextDecoder().decode(out.stdout).trim()) === undefined;
}

Deno.test({
  name: "enable-on-boot / disable-on-boot where systemd is not PID 1: clear message, unit text",
  ignore: await systemdRuns(),
  fn: async () => {
    const home = tempHome();
    try {
      assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
      const r = await runCli(home, ["enable-on-boot", "ep"]);
      assertEquals(r.code, 1, r.stderr);
      const file = join(home, "ep", "funcx-endpoint-ep.service");
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      match(
        r.stderr,
        Deno.uid() === 0
          // root: a system unit is copied into /etc/systemd/system, never linked from a home
          ? /^funcx-endpoint: enable-on-boot: systemd is not running on this host \(systemctl is-system-running: offline\); nothing was enabled\. The unit above is in .*funcx-endpoint-ep\.service: on a systemd host run `cp \S+ \/etc\/systemd\/system\/funcx-endpoint-ep\.service && systemctl daemon-reload && systemctl enable funcx-endpoint-ep\.service`/
          : /^funcx-endpoint: enable-on-boot: systemd is not running on this host \(systemctl is-system-running: offline\); nothing was enabled\. The unit above is in .*funcx-endpoint-ep\.service: on a systemd host run `systemctl --user link \S+ && systemctl --user enable funcx-endpoint-ep\.service`/,
      );
      const text = Deno.readTextFileSync(file);
      assertEquals(r.stdout, text + "\n");
      // we run as root here: a system unit for the owner of the endpoint
      if (Deno.uid() === 0) match(text, /^User=root$/m);
      match(text, new RegExp(`^Environment=FUNCX_HOME=${home}$`, "m"));
      assertEquals(await verify(file, Deno.uid() !== 0), { code: 0, stderr: "" });

      const d = await runCli(home, ["disable-on-boot", "ep"]);
      assertEquals(d.code, 0, d.stderr);
      match(d.stdout, /systemd is not running on this host .*: nothing to disable here; removed /);
      assertEquals(
        Deno.readDirSync(join(home, "ep")).some((e) => e.name.endsWith(".service")),
        false,
      );
    } finally {
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test("only root's enable-on-boot/disable-on-boot may write the system unit directory", () => {
  assertEquals(systemUnitDir(["enable-on-boot", "ep"], 0), SYSTEM_UNIT_DIR);
  assertEquals(systemUnitDir(["-c", "/h", "disable-on-boot"], 0), SYSTEM_UNIT_DIR);
  assertEquals(systemUnitDir(["enable-on-boot", "ep"], 1000), undefined);
  assertEquals(systemUnitDir(["start", "ep"], 0), undefined);
  const base = { home: "/h", execPath: "/bin/x", compiled: true };
  assertEquals(workerPermissions(base).write, ["/h"]);
  assertEquals(
    workerPermissions({ ...base, systemUnitDir: SYSTEM_UNIT_DIR }).write,
    ["/h", SYSTEM_UNIT_DIR],
  );
  assert((workerPermissions(base).run as string[]).includes("systemctl"));
});
