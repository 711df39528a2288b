/**
 * The workflow lint (`scripts/lint_workflows.ts`, part of `deno task check`): this
 * repository's workflows pass; the release workflow as it was before (retired `macos-13`,
 * actions on tags, one write permission for every job) and an actionlint-level error fail
 * with one line per finding.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { join } from "node:path";
import { actionlint, checkWorkflow } from "../../scripts/lint_workflows.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function lint(files: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}scripts/lint_workflows.ts`, ...files],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const OLD_RELEASE = `name: release
on:
  release:
    types: [published]
permissions:
  contents: write
jobs:
  build:
    strategy:
      matrix:
        include:
          - os: ubuntu-24.04
          - os: macos-13
          - os: macos-14
    runs-on: \${{ matrix.os }}
    steps:
      - uses: actions/checkout@v4
      - run: echo hi
`;

Deno.test("lint:workflows: the repository's workflows pass", async () => {
  const r = await lint([]);
  assertEquals(r.code, 0, r.stderr);
  match(r.stdout, /^lint:workflows: \d+ workflow file\(s\) ok$/m);
});

Deno.test("lint:workflows: retired runner, unpinned action, missing job permissions are findings", () => {
  assertEquals(checkWorkflow(OLD_RELEASE), [
    {
      line: 8,
      column: 3,
      kind: "permissions",
      message: 'job "build" does not declare its `permissions` (least privilege per job)',
    },
    {
      line: 13,
      column: 17,
      kind: "runner-label",
      message:
        'runner label "macos-13" is retired: use macos-15-intel (x86_64) or macos-15 (arm64); macos-13 was retired on 2025-12-04',
    },
    {
      line: 17,
      column: 15,
      kind: "pinning",
      message:
        'action "actions/checkout@v4" is not pinned to a full commit SHA (uses: owner/repo@<40 hex> # vX.Y.Z)',
    },
  ]);
  const noComment = OLD_RELEASE.replace(
    "actions/checkout@v4",
    "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
  ).replace("macos-13", "macos-15-intel").replace(
    "    runs-on:",
    "    permissions: {}\n    runs-on:",
  );
  assertEquals(checkWorkflow(noComment).map((f) => f.message), [
    'action "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1" has no "# vX.Y.Z" comment naming the version of its commit',
  ]);
  assertEquals(
    checkWorkflow(
      "on: push\njobs:\n  a:\n    runs-on: [self-hosted, gpu-box]\n    permissions: {}\n    steps: [{run: 'true'}]\n",
    )
      .map((f) => [f.line, f.kind]),
    [[1, "permissions"], [4, "runner-label"]],
  );
});

Deno.test("lint:workflows: actionlint errors fail the lint, one line each, with file:line:col", async () => {
  const found = await actionlint(
    "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    permissions: {}\n    needs: nope\n    steps:\n      - run: echo ${{ matrix.foo }}\n",
    "x.yml",
  );
  assertEquals(found.map((f) => [f.line, f.kind]), [[4, "job-needs"], [9, "expression"]]);

  const dir = Deno.makeTempDirSync({ prefix: "fx-wflint-" });
  try {
    const file = join(dir, "old.yml");
    Deno.writeTextFileSync(file, OLD_RELEASE);
    const r = await lint([file]);
    assertEquals(r.code, 1);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 4, r.stderr);
    match(lines[1], /old\.yml:13:17: runner label "macos-13" is retired: .* \[runner-label\]$/);
    assertEquals(lines.at(-1), "lint:workflows: 3 problem(s) in 1 file(s)");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
