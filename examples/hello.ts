/**
 * Run a Python function on your endpoint with the TypeScript client (`src/sdk/`), using
 * the login of `funcx-endpoint login` and the service address of the funcX home.
 *
 *     deno run -A examples/hello.ts [ENDPOINT_NAME]      (default: "default")
 *
 * `FUNCX_HOME` (default `~/.funcx`) selects the funcX home, as for `funcx-endpoint`.
 *
 * @example
 * ```sh
 * deno run -A examples/hello.ts
 * # hello from my-host: 2 + 3 = 5 (Python 3.11.7)
 * ```
 * @module
 */
import { join } from "node:path";
import { getAccessToken } from "../src/auth/access.ts";
import { loadEndpointConfig, loadGlobalConfig } from "../src/config/schema.ts";
import { FuncXClient } from "../src/sdk/client.ts";

const HELLO = `def hello(a, b):
    import platform, sys
    return "hello from %s: %d + %d = %d (Python %s)" % (
        platform.node(), a, b, a + b, sys.version.split()[0])
`;

const home = Deno.env.get("FUNCX_HOME") ?? join(Deno.env.get("HOME") ?? ".", ".funcx");
const name = Deno.args[0] ?? "default";
const global = loadGlobalConfig(join(home, "config.yaml"));
const endpoint = loadEndpointConfig(join(home, name, "config.yaml"));
let endpointId: string;
try {
  endpointId = JSON.parse(Deno.readTextFileSync(join(home, name, "endpoint.json"))).endpoint_id;
} catch {
  console.error(`endpoint "${name}" was never started: run \`funcx-endpoint start ${name}\``);
  Deno.exit(1);
}

const fx = new FuncXClient({
  serviceAddress: endpoint.service_address ?? global.service_address,
  token: () => getAccessToken(home, global),
});
const functionId = await fx.registerFunction(HELLO, "hello");
const taskId = await fx.run({ functionId, endpointId, args: [2, 3] });
const outcome = (await fx.waitForResults([taskId], { timeoutMs: 60_000 })).get(taskId)!;
if (outcome.error) {
  console.error(`the function raised: ${outcome.error.message}`);
  Deno.exit(1);
}
console.log(outcome.value);
