import { deepStrictEqual as assertEquals, match } from "node:assert/strict";

const SCRIPT = new URL("../../scripts/compile.ts", import.meta.url).pathname;

async function compile(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("compile: bad --target, bad option and missing DENORT_BIN are one-line errors", async () => {
  const [target, option, denort] = await Promise.all([
    compile(["--target", "sparc-sun-solaris"]),
    compile(["--bogus"]),
    compile([], { DENORT_BIN: "/nonexistent/denort" }),
  ]);
  assertEquals(target.code, 1);
  assertEquals(
    target.stderr.trim(),
    'compile: --target: "sparc-sun-solaris" is not supported; expected one of ' +
      "x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, x86_64-apple-darwin, aarch64-apple-darwin",
  );
  assertEquals(option.code, 1);
  match(option.stderr.trim(), /^compile: Unknown option '--bogus'.*; usage: deno task compile/);
  assertEquals(denort.code, 1);
  assertEquals(denort.stderr.trim(), "compile: DENORT_BIN=/nonexistent/denort does not exist");
});

Deno.test("compile --help lists the targets", async () => {
  const r = await compile(["--help"]);
  assertEquals(r.code, 0);
  match(r.stdout, /usage: deno task compile \[--target T\] \[--output PATH\]/);
  match(r.stdout, /aarch64-unknown-linux-gnu/);
});

Deno.test("compile --dry-run: the build identity is baked in after main.ts; bad --release/--commit are one-line errors", async () => {
  const sha = "0123456789abcdef0123456789abcdef01234567";
  const [ok, release, commit] = await Promise.all([
    compile([
      "--dry-run",
      "--release",
      "v1.2.0",
      "--commit",
      sha,
      "--target",
      "aarch64-apple-darwin",
    ]),
    compile(["--dry-run", "--release", "v1.2;rm", "--commit", sha]),
    compile(["--dry-run", "--release", "v1.2.0", "--commit", "HEAD"]),
  ]);
  assertEquals(ok.code, 0, ok.stderr);
  const { args, output, baked } = JSON.parse(ok.stdout);
  assertEquals(baked, `--funcx-build=1.2.0@${sha}`);
  assertEquals(output, "dist/funcx-endpoint-aarch64-apple-darwin");
  assertEquals(args.slice(-2), ["main.ts", baked]);
  assertEquals(args.slice(args.indexOf("--target"), args.indexOf("--target") + 2), [
    "--target",
    "aarch64-apple-darwin",
  ]);
  assertEquals(release.code, 1);
  assertEquals(
    release.stderr.trim(),
    'compile: --release: "v1.2;rm" is not a release; expected a tag like v1.2.0 (letters, digits and . + _ -)',
  );
  assertEquals(commit.code, 1);
  assertEquals(
    commit.stderr.trim(),
    'compile: --commit: "HEAD" is not a commit; expected 7-64 lowercase hex digits',
  );
});
