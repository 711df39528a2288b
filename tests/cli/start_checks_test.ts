/**
 * `start` refuses, in one line naming the config key, what cannot work on this host: a
 * missing or non-executable `executor.python` (local blocks) and an `executor.address`
 * naming an interface this machine does not have. Through the real CLI, before detaching.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempHome } from "../helpers/cli.ts";

async function startWith(executor: string): Promise<{ code: number; line: string }> {
  const home = tempHome();
  try {
    assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
    Deno.writeTextFileSync(
      join(home, "ep", "config.yaml"),
      `provider:\n  type: local\n  init_blocks: 0\nexecutor:\n${executor}`,
    );
    const r = await runCli(home, ["start", "ep"]);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assertEquals(Deno.readDirSync(join(home, "ep")).some((e) => e.name === "daemon.pid"), false);
    return { code: r.code, line: lines[0].replaceAll(home, "$HOME") };
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
}

Deno.test("start: a missing or unknown executor.python is one line", async () => {
  const a = await startWith("  python: /nonexistent/python3\n");
  assert(a.code !== 0);
  match(
    a.line,
    /cannot start endpoint "ep": .*config\.yaml: executor\.python: "\/nonexistent\/python3" does not exist$/,
  );
  const c = await startWith("  python: no-such-python3\n");
  match(c.line, /executor\.python: "no-such-python3" is not found on PATH$/);
});

Deno.test("start: a non-executable executor.python file", async () => {
  const home = tempHome();
  try {
    assertEquals((await runCli(home, ["configure", "ep"])).code, 0);
    const py = join(home, "python3");
    Deno.writeTextFileSync(py, "#!/bin/sh\n", { mode: 0o644 });
    Deno.writeTextFileSync(
      join(home, "ep", "config.yaml"),
      `provider:\n  init_blocks: 0\nexecutor:\n  python: ${py}\n`,
    );
    const r = await runCli(home, ["start", "ep"]);
    assert(r.code !== 0);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    match(r.stderr, new RegExp(`executor\\.python: "${py}" is not executable`));
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("start: an unknown interface in executor.address lists the interfaces present", async () => {
  const r = await startWith("  address: by-interface:nosuch0\n");
  assert(r.code !== 0);
  const present = [...new Set(Deno.networkInterfaces().map((i) => i.name))];
  match(r.line, /executor\.address: no network interface "nosuch0" on this host \(present: /);
  for (const name of present) assert(r.line.includes(name), r.line);
});

Deno.test("start: by-route, by-hostname and an address-less interface, resolved inside the sandbox", async () => {
  // past the address check, start stops at the next one (no credentials in this home)
  for (const spec of ["by-route", "by-hostname", "by-interface:lo"]) {
    const r = await startWith(`  address: ${spec}\n`);
    assert(r.code !== 0);
    assert(!r.line.includes("executor.address"), `${spec}: ${r.line}`);
  }
  const all = Deno.readTextFileSync("/proc/net/dev").split("\n").slice(2)
    .map((l) => /^\s*([^\s:]+):/.exec(l)?.[1]).filter((n): n is string => !!n);
  const withAddress = new Set(
    Deno.networkInterfaces().filter((i) => i.family === "IPv4").map((i) => i.name),
  );
  const bare = all.find((n) => !withAddress.has(n));
  if (bare) {
    const r = await startWith(`  address: by-interface:${bare}\n`);
    match(
      r.line,
      new RegExp(`executor\\.address: network interface "${bare}" has no IPv4 address$`),
    );
  }
  const u = await startWith("  address: by-interface:nosuch0\n");
  for (const name of all) assert(u.line.includes(name), `${name}: ${u.line}`);
});
