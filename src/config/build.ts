/**
 * Which build of funcx-endpoint is running: the release version (from the git tag), the
 * commit, and the funcX protocol level it speaks ({@linkcode ENDPOINT_VERSION}).
 *
 * `scripts/compile.ts` bakes `--funcx-build=<release>@<commit>` into the binary as its
 * first script argument (`deno compile ... main.ts --funcx-build=...`); the bootstrap takes
 * it off the command line ({@linkcode splitBuildArg}) and hands it to the sandboxed program,
 * which calls {@linkcode setBuild} once. A run from source without that argument is
 * `dev` / `unknown`.
 *
 * @example
 * ```ts
 * import { buildInfo, formatVersion } from "./build.ts";
 * console.log(formatVersion(buildInfo()));
 * // FuncX endpoint version: 0.3.4
 * // release: dev
 * // commit: unknown
 * ```
 * @module
 */
import { ENDPOINT_VERSION } from "./types.ts";

/** Identity of a build. */
export interface BuildInfo {
  /** Release version from the tag, without a leading `v` (`1.2.0`), or `dev`. */
  release: string;
  /** Full git commit of the build, or `unknown`. */
  commit: string;
  /** funcX protocol version the endpoint reports to the service (`0.3.4`). */
  protocol: string;
}

/** The name of the baked-in argument. */
export const BUILD_FLAG = "--funcx-build";

/** A valid release: letters, digits and `. + _ -`, like `1.2.0` or `1.3.0-rc.1`. */
export const RELEASE_PATTERN: RegExp = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;
/** A valid commit: 7-64 lowercase hex digits. */
export const COMMIT_PATTERN: RegExp = /^[0-9a-f]{7,64}$/;

/** A build from source: no release, no commit. */
export const DEV_BUILD: BuildInfo = {
  release: "dev",
  commit: "unknown",
  protocol: ENDPOINT_VERSION,
};

let _current: BuildInfo = DEV_BUILD;

/**
 * Parse the value of `--funcx-build` (`<release>@<commit>`); throws a one-line error
 * naming what is valid.
 *
 * @example
 * ```ts
 * parseBuild("1.2.0@0123abcd"); // { release: "1.2.0", commit: "0123abcd", protocol: "0.3.4" }
 * ```
 */
export function parseBuild(value: string): BuildInfo {
  const at = value.lastIndexOf("@");
  const release = at < 0 ? value : value.slice(0, at);
  const commit = at < 0 ? "" : value.slice(at + 1);
  if (!RELEASE_PATTERN.test(release) || !COMMIT_PATTERN.test(commit)) {
    throw new Error(
      `${BUILD_FLAG}=${JSON.stringify(value)}: expected <release>@<commit>, the release made of ` +
        `letters, digits and . + _ - (like 1.2.0) and the commit 7-64 lowercase hex digits`,
    );
  }
  return { release, commit, protocol: ENDPOINT_VERSION };
}

/**
 * Take a leading `--funcx-build=<release>@<commit>` off `argv` (only the first argument
 * counts: that is where `deno compile` puts baked-in arguments).
 *
 * @example
 * ```ts
 * splitBuildArg(["--funcx-build=1.2.0@0123abcd", "list"]);
 * // { build: { release: "1.2.0", commit: "0123abcd", protocol: "0.3.4" }, argv: ["list"] }
 * splitBuildArg(["list"]); // { build: undefined, argv: ["list"] }
 * ```
 */
export function splitBuildArg(
  argv: readonly string[],
): { build: BuildInfo | undefined; argv: string[] } {
  const first = argv[0];
  if (first === undefined || !first.startsWith(`${BUILD_FLAG}=`)) {
    return { build: undefined, argv: [...argv] };
  }
  return { build: parseBuild(first.slice(BUILD_FLAG.length + 1)), argv: argv.slice(1) };
}

/**
 * The argument that carries `build` to a re-executed copy of this program from source
 * (none for a source build without identity).
 *
 * @example
 * ```ts
 * buildArgs({ release: "1.2.0", commit: "0123abcd", protocol: "0.3.4" });
 * // ["--funcx-build=1.2.0@0123abcd"]
 * ```
 */
export function buildArgs(build: BuildInfo): string[] {
  return build === DEV_BUILD ? [] : [`${BUILD_FLAG}=${build.release}@${build.commit}`];
}

/**
 * Record the identity of this process (called once by the sandboxed program at start).
 *
 * @example
 * ```ts
 * setBuild(parseBuild("1.2.0@0123abcd"));
 * ```
 */
export function setBuild(build: BuildInfo | undefined): void {
  _current = build ?? DEV_BUILD;
}

/**
 * The identity of this process.
 *
 * @example
 * ```ts
 * buildInfo().protocol; // "0.3.4"
 * ```
 */
export function buildInfo(): BuildInfo {
  return _current;
}

/**
 * What `--version` prints: the upstream first line (protocol level), then release and commit.
 *
 * @example
 * ```ts
 * formatVersion(DEV_BUILD);
 * // "FuncX endpoint version: 0.3.4\nrelease: dev\ncommit: unknown"
 * ```
 */
export function formatVersion(build: BuildInfo): string {
  return [
    `FuncX endpoint version: ${build.protocol}`,
    `release: ${build.release}`,
    `commit: ${build.commit}`,
  ].join("\n");
}
