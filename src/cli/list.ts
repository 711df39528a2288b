/**
 * `funcx-endpoint list [--json]`: a table of the endpoints of the funcX home.
 *
 * @example
 * ```ts
 * import { renderList } from "./list.ts";
 * console.log(renderList([]));
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import Table from "cli-table3";
import {
  type EndpointState,
  endpointState,
  formatUptime,
  listEndpointNames,
} from "../daemon/state.ts";
import type { CliContext } from "./context.ts";

/**
 * Render endpoint states as the `list` table.
 *
 * @example
 * ```ts
 * renderList([{ name: "default", status: "Initialized", endpoint_id: null, pid: null, host: null, remote: false, uptime_seconds: null, status_file: null }]);
 * ```
 */
export function renderList(states: EndpointState[]): string {
  const table = new Table({
    head: ["Endpoint Name", "Status", "Endpoint ID", "PID", "Uptime", "Host"],
    style: { head: [], border: [] },
  });
  for (const s of states) {
    table.push([
      s.name,
      s.status,
      s.endpoint_id ?? "None",
      s.pid === null ? "-" : String(s.pid),
      formatUptime(s.uptime_seconds),
      s.host ?? "-",
    ]);
  }
  const notes = states.filter((s) => s.status === "Degraded" && s.status_file?.degraded)
    .map((s) => `${s.name}: Degraded: ${s.status_file!.degraded}`);
  return [table.toString(), ...notes].join("\n");
}

/**
 * The JSON form of `list --json`: one object per endpoint.
 *
 * @example
 * ```ts
 * listJson([]); // "[]"
 * ```
 */
export function listJson(states: EndpointState[]): string {
  return JSON.stringify(
    states.map((s) => ({
      name: s.name,
      status: s.status,
      endpoint_id: s.endpoint_id,
      pid: s.pid,
      host: s.host,
      remote: s.remote,
      uptime_seconds: s.uptime_seconds,
      degraded: s.status_file?.degraded ?? null,
    })),
    null,
    2,
  );
}

/**
 * Add the `list` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint list [--json]
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("list")
    .description(
      "list the endpoints: Initialized, Starting, Running, Degraded, Disconnected or Stopped",
    )
    .option("--json", "print JSON instead of a table")
    .action((opts) => {
      const states = listEndpointNames(ctx.home).map((n) => endpointState(ctx.home, n));
      if (opts.json) {
        console.log(listJson(states));
        return;
      }
      if (states.length === 0) {
        console.log(`No endpoints configured in ${ctx.home}: run \`funcx-endpoint configure\``);
        return;
      }
      console.log(renderList(states));
    });
}
