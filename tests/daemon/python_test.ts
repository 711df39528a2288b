/**
 * Start-up: the interpreter behind an exec shim (pyenv style) is used directly for local
 * workers; anything that is not clearly such a shim keeps the configured command. Real
 * python3 and bash, a shim written like pyenv's (prepend PATH, exec the interpreter).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_ENDPOINT_CONFIG, type EndpointConfig } from "../../src/config/types.ts";
import { resolveShimmedPython, shimTarget } from "../../src/daemon/python.ts";

function _config(python: string, over: Partial<EndpointConfig["provider"]> = {}): EndpointConfig {
  const c = structuredClone(DEFAULT_ENDPOINT_CONFIG);
  c.executor.python = python;
  Object.assign(c.provider, over);
  return c;
}

/** A home with versions/bin/python3 (a link to the real python3) and shims/python3. */
function _fakePyenv(): { dir: string; shim: string; real: string; path: string } {
  const out = new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
  }).outputSync();
  const python = new TextDecoder().decode(out.stdout).trim();
  const dir = Deno.makeTempDirSync({ prefix: "fx-pyshim-" });
  const bin = join(dir, "versions", "3", "bin");
  Deno.mkdirSync(bin, { recursive: true });
  Deno.mkdirSync(join(dir, "shims"));
  const real = join(bin, "python3");
  Deno.symlinkSync(python, real);
  const shim = join(dir, "shims", "python3");
  Deno.writeTextFileSync(
    shim,
    `#!/usr/bin/env bash\nexport PATH="${bin}:${dir}/libexec:$PATH"\nexec "${real}" "$@"\n`,
    { mode: 0o755 },
  );
  return { dir, shim, real, path: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
}

Deno.test("python: shimTarget accepts only an exec shim that prepended the interpreter's dir", () => {
  assertEquals(
    shimTarget("/p/v/bin/python3", "/p/v/bin:/p/libexec:/usr/bin", "/usr/bin"),
    "/p/v/bin/python3",
  );
  assertEquals(shimTarget("/usr/bin/python3", "/usr/bin", "/usr/bin"), null);
  assertEquals(shimTarget("/p/v/bin/python3", "/other:/usr/bin", "/usr/bin"), null);
  assertEquals(shimTarget("/p/v/bin/python3", "/p/v/bin:/x", "/usr/bin"), null);
  assertEquals(shimTarget("python3", "/p/v/bin:/usr/bin", "/usr/bin"), null);
  assertEquals(shimTarget("", "", "/usr/bin"), null);
});

Deno.test("python: the interpreter behind a shim is used; other cases keep the command", async () => {
  const f = _fakePyenv();
  try {
    const env = { PATH: f.path, HOME: f.dir };
    const shimmed = await resolveShimmedPython(_config(f.shim), f.dir, { env });
    assertEquals(shimmed.python, f.real);
    assertMatch(shimmed.reason, /exec shim/);
    // the real interpreter is not a shim
    const direct = await resolveShimmedPython(_config(f.real), f.dir, { env });
    assertEquals(direct, { python: f.real, reason: "not a shim" });
    // worker_init, batch providers, parked loader variables: never replaced
    const init = await resolveShimmedPython(
      _config(f.shim, { worker_init: "module load x" }),
      f.dir,
      { env },
    );
    assertEquals(init.python, f.shim);
    const slurm = await resolveShimmedPython(_config(f.shim, { type: "slurm" }), f.dir, { env });
    assertEquals(slurm.python, f.shim);
    const ld = await resolveShimmedPython(_config(f.shim), f.dir, {
      env: { ...env, FUNCX_ENV_LD_LIBRARY_PATH: "/opt/lib" },
    });
    assertEquals(ld.python, f.shim);
    // a missing interpreter: kept (the manager reports the failure as before)
    const missing = join(f.dir, "nope", "python3");
    assertEquals(
      await resolveShimmedPython(_config(missing), f.dir, { env }),
      { python: missing, reason: "probe failed" },
    );
  } finally {
    Deno.removeSync(f.dir, { recursive: true });
  }
});
