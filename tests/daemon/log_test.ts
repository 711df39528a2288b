import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { createLogger, redact } from "../../src/daemon/log.ts";

Deno.test("redact hides bearer tokens, token fields and secret keys", () => {
  assertEquals(redact("Authorization: Bearer abcdefghijkl"), "Authorization: Bearer [redacted]");
  const j = redact('{"access_token": "AT123456789", "refresh_token":"RT123456789", "x": 1}');
  assert(!j.includes("AT123456789") && !j.includes("RT123456789"), j);
  assert(!redact('secret-key = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"').includes("abcdefgh"));
});

Deno.test("logger: timestamped leveled lines, level filter, rotation keeps backups", () => {
  const dir = Deno.makeTempDirSync({ prefix: "fx-log-" });
  const file = join(dir, "endpoint.log");
  const log = createLogger({ file, level: "info", maxBytes: 400, backups: 2 });
  log.debug("t", "hidden %d", 1);
  log.info("t", "hello %s", "world");
  log.warn("auth", "token Bearer abcdefghijklmnop");
  const first = Deno.readTextFileSync(file).split("\n").filter(Boolean);
  assertEquals(first.length, 2);
  match(first[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}\[t\] hello world$/);
  match(first[1], /WARN {2}\[auth\] token Bearer \[redacted\]$/);
  for (let i = 0; i < 40; i++) log.info("t", "line %d %s", i, "x".repeat(30));
  log.close();
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(names, ["endpoint.log", "endpoint.log.1", "endpoint.log.2"]);
  for (const n of names) assert(Deno.statSync(join(dir, n)).size <= 400, n);
  match(Deno.readTextFileSync(file), /line 39 /);
  assertEquals(Deno.statSync(file).mode! & 0o777, 0o600);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("logger: a full disk under both the log file and stderr drops lines, never throws", async () => {
  // /dev/full fails every write with ENOSPC: the log file and the stderr of a detached
  // daemon (a file on the same full disk) at once. The service once died of this.
  const mod = new URL("../../src/daemon/log.ts", import.meta.url).href;
  const code = `import { createLogger } from ${JSON.stringify(mod)};
const log = createLogger({ file: "/dev/full", level: "debug" });
for (let i = 0; i < 3; i++) log.error("t", "storing results failed %d", i);
console.log("survived");`;
  const out = await new Deno.Command("bash", {
    args: ["-c", `"$0" eval "$1" 2>/dev/full`, Deno.execPath(), code],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(
    [out.code, new TextDecoder().decode(out.stdout).trim()],
    [0, "survived"],
    new TextDecoder().decode(out.stderr),
  );
});
