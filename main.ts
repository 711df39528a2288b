/**
 * funcx-endpoint: the funcX endpoint as one executable.
 *
 * This entry only starts the CLI (`src/cli/entry.ts`) in a Web Worker whose
 * permissions are narrowed to the funcX home; see `src/config/permissions.ts`.
 * @module
 */
import { runSandboxed } from "./src/config/sandbox.ts";

if (import.meta.main) {
  await runSandboxed(new URL("./src/cli/entry.ts", import.meta.url));
}
