/**
 * PLUMBING test of the binary mode of the CLI tests, not a test of a compiled binary:
 * `deno compile` cannot get its runtime (denort) on this machine, so the release workflow is
 * where the real binaries are tested (`FUNCX_TEST_BINARY=dist/funcx-endpoint-<target>`).
 *
 * What this checks here: `FUNCX_TEST_BINARY` makes the CLI/e2e helpers run the executable it
 * names (a wrapper script that logs each call, then runs `deno run <flags> main.ts <baked
 * argument>` with exactly the runtime flags and the `--funcx-build` script argument that
 * `scripts/compile.ts` passes to `deno compile`), and the build identity baked that way
 * reaches `--version`, the daemon re-executed by `start` and its `status`.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("../../", import.meta.url).pathname;
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

function _q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

Deno.test("plumbing (a wrapper around main.ts, not a compiled binary): FUNCX_TEST_BINARY runs the CLI tests through it with compile.ts's baked flags and build", async () => {
  const dry = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}scripts/compile.ts`,
      "--dry-run",
      "--release",
      "v9.8.7",
      "--commit",
      COMMIT,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(dry.code, 0, new TextDecoder().decode(dry.stderr));
  const { args, baked } = JSON.parse(new TextDecoder().decode(dry.stdout)) as {
    args: string[];
    baked: string;
  };
  assertEquals(baked, `--funcx-build=9.8.7@${COMMIT}`);
  const main = args.indexOf("main.ts");
  assertEquals(args.slice(main + 1), [baked], "script arguments baked after main.ts");
  const runtimeFlags = args.slice(1, args.indexOf("--include"));
  assert(runtimeFlags.includes("--unstable-worker-options"), args.join(" "));

  const dir = Deno.makeTempDirSync({ prefix: "fx-plumbing-" });
  try {
    const calls = join(dir, "calls.log");
    const wrapper = join(dir, "funcx-endpoint");
    Deno.writeTextFileSync(
      wrapper,
      [
        "#!/bin/sh",
        `printf '%s\\n' "$*" >> ${_q(calls)}`,
        `exec ${
          [Deno.execPath(), "run", ...runtimeFlags, `${ROOT}main.ts`, baked].map(_q).join(" ")
        } "$@"`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    const direct = await new Deno.Command(wrapper, {
      args: ["--version"],
      env: { FUNCX_HOME: join(dir, "home") },
      stdout: "piped",
    }).output();
    assertEquals(
      new TextDecoder().decode(direct.stdout),
      `FuncX endpoint version: 0.3.4\nrelease: 9.8.7\ncommit: ${COMMIT}\n`,
    );

    const tests = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "tests/cli/basic_test.ts", "tests/cli/lifecycle_test.ts"],
      cwd: ROOT,
      env: {
        FUNCX_TEST_BINARY: wrapper,
        FUNCX_TEST_BUILD: `v9.8.7@${COMMIT}`,
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(tests.stdout) + new TextDecoder().decode(tests.stderr);
    assertEquals(tests.code, 0, out.slice(-6000));
    match(out, /ok \| \d+ passed \| 0 failed/);
    const logged = Deno.readTextFileSync(calls).split("\n");
    // the helpers went through the wrapper: --version, start (which re-executes the daemon
    // from source with the build argument), status
    for (const want of [/^--version$/, /^start ep$/, /^status ep$/]) {
      assert(logged.some((l) => want.test(l)), `wrapper never called with ${want}: ${logged}`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
