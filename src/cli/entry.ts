/**
 * Worker entry of the sandboxed program: builds and runs the CLI.
 * @module
 */
import { workerMain } from "../config/sandbox.ts";
import { runCli } from "./app.ts";

workerMain((msg) => runCli(msg.argv, msg.home));
