/**
 * Worker entry of the sandboxed program: builds and runs the CLI (a block's manager takes a
 * fast path that skips the command-line library, and so does the daemon; see `fast.ts`).
 * @module
 */
import { workerMain } from "../config/sandbox.ts";
import { runFastPath } from "./fast.ts";

workerMain(async (msg) =>
  await runFastPath(msg.argv, msg.home) ?? (await import("./app.ts")).runCli(msg.argv, msg.home)
);
