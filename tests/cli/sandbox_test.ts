import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempHome } from "../helpers/cli.ts";

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("the CLI cannot write, read or run anything outside the funcX home", async () => {
  const home = tempHome();
  const outside = Deno.makeTempDirSync({ prefix: "fx-outside-" });
  const target = join(outside, "escaped.txt");
  Deno.writeTextFileSync(join(outside, "secret.txt"), "secret");
  const r = await runCli(home, [
    "debug-sandbox",
    "--write",
    target,
    "--read",
    join(outside, "secret.txt"),
    "--run",
    "cat",
  ]);
  assertEquals(r.code, 3, r.stdout + r.stderr);
  match(r.stdout, new RegExp(`write ${target}: denied \\(NotCapable: Requires write access`));
  match(r.stdout, /secret\.txt: denied \(NotCapable: Requires read access/);
  match(r.stdout, /run cat: denied \(NotCapable: Requires run access/);
  assertEquals(exists(target), false);
  Deno.removeSync(home, { recursive: true });
  Deno.removeSync(outside, { recursive: true });
});

Deno.test("the CLI cannot create symlinks (which could lead out of the home)", async () => {
  // Path-scoped permissions follow symlinks, so the program must not be able to create
  // any: Deno.symlink needs unrestricted read+write access, which the sandbox lacks.
  const home = tempHome();
  const outside = Deno.makeTempDirSync({ prefix: "fx-outside-" });
  const s = await runCli(home, ["debug-sandbox", "--symlink", outside]);
  assertEquals(s.code, 3, s.stdout + s.stderr);
  match(s.stdout, /symlink .*: denied \(NotCapable: Deno.symlink\(\) requires unscoped/);
  assertEquals(exists(join(home, ".probe-link")), false);
  assertEquals([...Deno.readDirSync(outside)].length, 0);
  Deno.removeSync(home, { recursive: true });
  Deno.removeSync(outside, { recursive: true });
});

Deno.test("inside the home, writes, reads and python3 are allowed", async () => {
  const home = tempHome();
  const f = join(home, "probe.txt");
  const r = await runCli(home, ["debug-sandbox", "--write", f, "--read", f, "--run", "python3"]);
  assertEquals(r.code, 0, r.stdout + r.stderr);
  match(r.stdout, /write .*: allowed/);
  match(r.stdout, /read .*: allowed/);
  match(r.stdout, /run python3: allowed/);
  Deno.removeSync(home, { recursive: true });
});
