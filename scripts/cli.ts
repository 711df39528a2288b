/**
 * `deno task cli <args>`: run the CLI from source under exactly the permission
 * flags that `deno task compile` bakes into the binary.
 * @module
 */
import { COMPILE_FLAGS } from "../src/config/permissions.ts";

const main = new URL("../main.ts", import.meta.url).pathname;
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", ...COMPILE_FLAGS, main, ...Deno.args],
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => child.kill(sig));
}
const status = await child.status;
Deno.exit(status.code);
