/**
 * Worker entry of the sandboxed program: builds and runs the CLI (a block's manager takes a
 * fast path that skips the command-line library, and so does the daemon; see `fast.ts`).
 * @module
 */
import { workerMain } from "../config/sandbox.ts";
import { setTrustHome } from "../config/trust.ts";
import { runFastPath } from "./fast.ts";

workerMain(async (msg) => {
  setTrustHome(msg.home); // HTTPS trusts config.yaml's ca_file (read on first request)
  return await runFastPath(msg.argv, msg.home) ??
    (await import("./app.ts")).runCli(msg.argv, msg.home);
});
