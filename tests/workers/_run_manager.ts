// Runs `manager ...` through src/cli/manager.ts's commander command, for tests that must
// not depend on the CLI room's app.ts. Usage: deno run -A _run_manager.ts manager --task-url ...
import { Command } from "@commander-js/extra-typings";
import { register } from "../../src/cli/manager.ts";

let code = 0;
const program = new Command().exitOverride();
register(program, {
  home: Deno.env.get("FUNCX_HOME") ?? "/tmp",
  debug: () => false,
  setExitCode: (c) => (code = c),
});
try {
  await program.parseAsync(Deno.args, { from: "user" });
} catch (e) {
  console.error(`manager: ${(e as Error).message}`);
  code = 1;
}
Deno.exit(code);
