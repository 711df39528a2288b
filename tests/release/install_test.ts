/**
 * `install.sh` against a local HTTP server that serves fake release files in the layout of
 * GitHub releases (`download/<tag>/<asset>`, `latest/download/<asset>`): the right asset for
 * the OS/architecture, checksum verified, installed without root into `~/.local/bin` or a
 * prefix, the next command printed; a checksum mismatch, a missing release and an unsupported
 * platform install nothing. The "binaries" are shell scripts: the subject here is the
 * installer, not the program.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";

const INSTALL_SH = new URL("../../install.sh", import.meta.url).pathname;
const LINUX_X64 = "funcx-endpoint-x86_64-unknown-linux-gnu";
/** The asset for the machine running the tests (what the real `uname` must lead to). */
const NATIVE = `funcx-endpoint-${Deno.build.arch}-${
  Deno.build.os === "darwin" ? "apple-darwin" : "unknown-linux-gnu"
}`;
const SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin";

function _fakeBinary(release: string): string {
  return `#!/bin/sh\nprintf 'FuncX endpoint version: 0.3.4\\nrelease: ${release}\\ncommit: 0123abc\\n'\n`;
}

function _sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

interface Release {
  files: Map<string, string>;
  requests: string[];
  baseUrl: string;
  server: Deno.HttpServer;
}

/** Serve releases `v1.2.0` (= latest) and `v6.6.6` (its checksum file does not match). */
function _serve(): Release {
  const files = new Map<string, string>();
  for (const asset of new Set([LINUX_X64, "funcx-endpoint-aarch64-apple-darwin", NATIVE])) {
    const good = _fakeBinary("1.2.0");
    for (const dir of ["download/v1.2.0", "latest/download"]) {
      files.set(`/${dir}/${asset}`, good);
      files.set(`/${dir}/${asset}.sha256`, `${_sha256(good)}  ${asset}\n`);
    }
    const evil = _fakeBinary("6.6.6");
    files.set(`/download/v6.6.6/${asset}`, evil);
    files.set(`/download/v6.6.6/${asset}.sha256`, `${_sha256(good)}  ${asset}\n`);
  }
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const body = files.get(path);
    return body === undefined
      ? new Response("Not Found", { status: 404 })
      : new Response(body, { headers: { "content-type": "application/octet-stream" } });
  });
  return { files, requests, server, baseUrl: `http://127.0.0.1:${server.addr.port}` };
}

async function _install(
  args: string[],
  o: { home: string; path?: string; env?: Record<string, string> },
) {
  const out = await new Deno.Command("/bin/sh", {
    args: [INSTALL_SH, ...args],
    clearEnv: true,
    env: {
      HOME: o.home,
      // by default a uname that says Linux x86_64, so the expectations hold on any host
      PATH: o.path ?? _fakeUname(dirname(o.home), "Linux", "x86_64"),
      ...o.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A `uname` that reports another platform (the detection is the unit under test). */
function _fakeUname(dir: string, os: string, arch: string): string {
  const bin = join(dir, "fake-uname");
  Deno.mkdirSync(bin, { recursive: true });
  Deno.writeTextFileSync(
    join(bin, "uname"),
    `#!/bin/sh\ncase "$1" in -s) echo ${os} ;; -m) echo ${arch} ;; esac\n`,
    { mode: 0o755 },
  );
  return `${bin}:${SYSTEM_PATH}`;
}

function _withServer(name: string, fn: (r: Release, tmp: string) => Promise<void>) {
  Deno.test(name, async () => {
    const r = _serve();
    const tmp = Deno.makeTempDirSync({ prefix: "fx-install-" });
    try {
      await fn(r, tmp);
    } finally {
      await r.server.shutdown();
      Deno.removeSync(tmp, { recursive: true });
    }
  });
}

_withServer(
  "install.sh: latest release for this machine into ~/.local/bin without root, checksum verified, next command printed",
  async (r, tmp) => {
    const home = join(tmp, "home");
    Deno.mkdirSync(home);
    // the real uname of this machine
    const res = await _install(["--base-url", r.baseUrl], { home, path: SYSTEM_PATH });
    assertEquals(res.code, 0, res.stderr);
    const bin = join(home, ".local", "bin", "funcx-endpoint");
    assertEquals(Deno.readTextFileSync(bin), _fakeBinary("1.2.0"));
    assertEquals(Deno.statSync(bin).mode! & 0o777, 0o755);
    assertEquals(r.requests, [
      `/latest/download/${NATIVE}`,
      `/latest/download/${NATIVE}.sha256`,
    ]);
    match(
      res.stdout,
      new RegExp(`^Installed ${bin} \\(release 1\\.2\\.0, checksum verified\\)$`, "m"),
    );
    // ~/.local/bin is not on this PATH: say how to add it, and the next command in full
    match(res.stdout, new RegExp(`export PATH="${home}/\\.local/bin:\\$PATH"`));
    match(res.stdout, new RegExp(`^Next: ${bin} login$`, "m"));
    // nothing but the binary is left behind
    assertEquals([...Deno.readDirSync(join(home, ".local", "bin"))].map((e) => e.name), [
      "funcx-endpoint",
    ]);
  },
);

_withServer(
  "install.sh: a given version (1.2.0 or v1.2.0) into a prefix; on PATH the next command is short",
  async (r, tmp) => {
    const home = join(tmp, "home");
    const prefix = join(tmp, "opt", "fx");
    Deno.mkdirSync(home);
    const res = await _install(["--version", "1.2.0", "--prefix", prefix], {
      home,
      path: `${prefix}/bin:${_fakeUname(tmp, "Linux", "x86_64")}`,
      env: { FUNCX_ENDPOINT_BASE_URL: r.baseUrl },
    });
    assertEquals(res.code, 0, res.stderr);
    assertEquals(r.requests[0], `/download/v1.2.0/${LINUX_X64}`);
    assertEquals(
      Deno.readTextFileSync(join(prefix, "bin", "funcx-endpoint")),
      _fakeBinary("1.2.0"),
    );
    match(res.stdout, /^Next: funcx-endpoint login$/m);
    assert(!res.stdout.includes("export PATH"), res.stdout);
    const again = await _install([
      "--version=v1.2.0",
      `--prefix=${prefix}`,
      `--base-url=${r.baseUrl}`,
    ], {
      home,
    });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(r.requests[2], `/download/v1.2.0/${LINUX_X64}`);
  },
);

_withServer(
  "install.sh: a checksum mismatch is refused and installs nothing (an installed binary stays)",
  async (r, tmp) => {
    const home = join(tmp, "home");
    const bindir = join(home, ".local", "bin");
    Deno.mkdirSync(bindir, { recursive: true });
    const old = "#!/bin/sh\necho old\n";
    Deno.writeTextFileSync(join(bindir, "funcx-endpoint"), old, { mode: 0o755 });
    const res = await _install(["--version", "6.6.6", "--base-url", r.baseUrl], { home });
    assertEquals(res.code, 1);
    const good = _sha256(_fakeBinary("1.2.0"));
    const bad = _sha256(_fakeBinary("6.6.6"));
    assertEquals(
      res.stderr.split("\n").filter((l) => l.startsWith("install.sh:")),
      [
        `install.sh: checksum mismatch for ${LINUX_X64}: expected ${good}, got ${bad}; nothing was installed`,
      ],
    );
    assertEquals(Deno.readTextFileSync(join(bindir, "funcx-endpoint")), old);
    assertEquals([...Deno.readDirSync(bindir)].map((e) => e.name), ["funcx-endpoint"]);
    assert(!res.stdout.includes("Installed"), res.stdout);
  },
);

_withServer(
  "install.sh: a missing release, a checksum file of another asset, bad options and an unsupported platform install nothing",
  async (r, tmp) => {
    const home = join(tmp, "home");
    Deno.mkdirSync(home);
    const missing = await _install(["--version", "9.9.9", "--base-url", r.baseUrl], { home });
    assertEquals(missing.code, 1);
    match(
      missing.stderr,
      new RegExp(
        `install.sh: cannot download ${r.baseUrl}/download/v9.9.9/${LINUX_X64} \\(is v9.9.9 released for x86_64-unknown-linux-gnu\\?\\)`,
      ),
    );

    r.files.set(
      `/download/v1.2.0/${LINUX_X64}.sha256`,
      `${"0".repeat(64)}  funcx-endpoint-other\n`,
    );
    const other = await _install(["--version", "1.2.0", "--base-url", r.baseUrl], { home });
    assertEquals(other.code, 1);
    match(
      other.stderr,
      /is the checksum of 'funcx-endpoint-other', not of funcx-endpoint-x86_64-unknown-linux-gnu/,
    );

    const noRepo = await _install([], { home });
    assertEquals(noRepo.code, 1);
    match(noRepo.stderr, /^install\.sh: no repository: pass --repo OWNER\/NAME/);
    const badVersion = await _install(["--version", "1.2;rm", "--base-url", r.baseUrl], { home });
    assertEquals(badVersion.code, 1);
    match(badVersion.stderr, /^install\.sh: --version: '1\.2;rm' is not a release version/);
    const badOpt = await _install(["--bogus"], { home });
    assertEquals(badOpt.code, 1);
    match(badOpt.stderr, /^install\.sh: unknown option '--bogus'; usage: install\.sh/);

    const windows = await _install(["--base-url", r.baseUrl], {
      home,
      path: _fakeUname(tmp, "MINGW64_NT-10.0", "x86_64"),
    });
    assertEquals(windows.code, 1);
    match(
      windows.stderr,
      /^install\.sh: unsupported OS 'MINGW64_NT-10\.0': releases exist for Linux and macOS/,
    );
    const riscv = await _install(["--base-url", r.baseUrl], {
      home,
      path: _fakeUname(tmp, "Linux", "riscv64"),
    });
    assertEquals(riscv.code, 1);
    match(riscv.stderr, /^install\.sh: unsupported architecture 'riscv64' on Linux/);
    assertEquals([...Deno.readDirSync(home)], []);
    assertEquals(r.requests.filter((p) => !p.includes("9.9.9") && !p.includes("v1.2.0")), []);
  },
);

_withServer(
  "install.sh: macOS on Apple silicon (uname arm64) fetches the aarch64-apple-darwin asset",
  async (r, tmp) => {
    const home = join(tmp, "home");
    Deno.mkdirSync(home);
    const res = await _install(["--base-url", r.baseUrl], {
      home,
      path: _fakeUname(tmp, "Darwin", "arm64"),
    });
    assertEquals(res.code, 0, res.stderr);
    assertEquals(r.requests[0], "/latest/download/funcx-endpoint-aarch64-apple-darwin");
    assertEquals(
      Deno.readTextFileSync(join(home, ".local", "bin", "funcx-endpoint")),
      _fakeBinary("1.2.0"),
    );
  },
);

const WGET = ["/usr/bin/wget", "/bin/wget"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name: "install.sh: works with wget when curl is missing",
  ignore: !WGET,
  fn: async () => {
    const r = _serve();
    const tmp = Deno.makeTempDirSync({ prefix: "fx-install-" });
    try {
      // a PATH with the tools install.sh needs, wget but no curl
      const tools = join(tmp, "tools");
      Deno.mkdirSync(tools);
      for (
        const t of [
          "sha256sum",
          "mktemp",
          "cut",
          "head",
          "tr",
          "sed",
          "chmod",
          "mkdir",
          "cp",
          "mv",
          "rm",
        ]
      ) {
        const found = ["/usr/bin", "/bin"].map((d) => `${d}/${t}`).find((p) => {
          try {
            return Deno.statSync(p).isFile;
          } catch {
            return false;
          }
        });
        if (found) Deno.symlinkSync(found, join(tools, t));
      }
      Deno.symlinkSync(WGET!, join(tools, "wget"));
      const home = join(tmp, "home");
      Deno.mkdirSync(home);
      const fake = _fakeUname(tmp, "Linux", "x86_64").split(":")[0];
      const res = await _install(["--base-url", r.baseUrl], { home, path: `${fake}:${tools}` });
      assertEquals(res.code, 0, res.stderr);
      assertEquals(r.requests, [
        `/latest/download/${LINUX_X64}`,
        `/latest/download/${LINUX_X64}.sha256`,
      ]);
      assertEquals(
        Deno.readTextFileSync(join(home, ".local", "bin", "funcx-endpoint")),
        _fakeBinary("1.2.0"),
      );
    } finally {
      await r.server.shutdown();
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});
