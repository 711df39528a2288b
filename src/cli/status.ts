/**
 * `funcx-endpoint status [NAME] [--json]`: state, blocks, managers, tasks and recent
 * errors of an endpoint, from its `status.json`.
 *
 * @example
 * ```ts
 * import { renderStatus } from "./status.ts";
 * import { endpointState } from "../daemon/state.ts";
 * console.log(renderStatus(endpointState("/home/u/.funcx", "default")));
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { type EndpointState, endpointState, formatUptime } from "../daemon/state.ts";
import { endpointName, requireConfigured } from "./common.ts";
import { endpointPaths } from "../config/paths.ts";
import { loadEndpointConfig } from "../config/schema.ts";
import { describeSharing } from "../service/sharing.ts";
import type { CliContext } from "./context.ts";

function _ago(iso: string | null | undefined, now: number): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  return `${iso} (${formatUptime(Math.max(0, Math.round((now - t) / 1000)))} ago)`;
}

function _table(head: string[], rows: string[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r);
  return t.toString();
}

/**
 * Human-readable status of one endpoint.
 *
 * @example
 * ```ts ignore
 * renderStatus(state).split("\n")[0]; // "Endpoint:       default"
 * ```
 */
export function renderStatus(s: EndpointState, now = Date.now(), sharedWith?: string): string {
  const out: string[] = [];
  const f = s.status_file;
  out.push(`Endpoint:       ${s.name}`);
  out.push(
    `Status:         ${s.status}${
      s.pid !== null
        ? ` (${s.remote ? `on host ${s.host}, ` : ""}pid ${s.pid}, up ${
          formatUptime(s.uptime_seconds)
        })`
        : ""
    }`,
  );
  if (s.remote && s.status === "Disconnected") {
    out.push(
      `Note:           host ${s.host} holds the lock but its status.json is not being updated; if ${s.host} is gone for good: \`funcx-endpoint stop ${s.name} --clear-dead-host\``,
    );
  }
  out.push(`Endpoint ID:    ${s.endpoint_id ?? "None (never registered)"}`);
  if (sharedWith) out.push(`Who may use it: ${sharedWith}`);
  if (s.cleaned) out.push(`Note:           cleaned up a stale pid file (${s.cleaned})`);
  if (s.status_file?.degraded) out.push(`Degraded:       ${s.status_file.degraded}`);
  if (!f) return out.join("\n");
  out.push(`Daemon state:   ${f.state}`);
  if (f.build) {
    out.push(
      `Version:        ${f.build.release} (commit ${f.build.commit}, funcX protocol ${f.build.protocol})`,
    );
  }
  out.push(`Last heartbeat: ${_ago(f.last_heartbeat, now)}`);
  out.push(`Updated:        ${_ago(f.updated_at, now)}`);
  if (f.address) {
    out.push(
      `Managers at:    ${f.address}${
        f.executor_address ? ` (executor.address ${f.executor_address})` : ""
      }`,
    );
  }
  const t = f.tasks;
  out.push(
    `Tasks:          ${t.queued} queued, ${t.running} running, ${t.completed} completed, ${t.failed} failed; ${f.unacked_results} results awaiting ack`,
  );
  out.push("");
  out.push(`Blocks (${f.blocks.length}):`);
  if (f.blocks.length) {
    out.push(_table(
      ["Block", "Job ID", "State", "Nodes", "Message"],
      f.blocks.map((b) => [
        String(b.block_id),
        b.job_id ?? "-",
        String(b.state),
        String(b.nodes),
        b.message ?? "",
      ]),
    ));
  }
  const workers = f.managers.reduce((n, m) => n + (m.workers || 0), 0);
  const idle = f.managers.reduce((n, m) => n + (m.idle_workers || 0), 0);
  out.push(`Managers (${f.managers.length}), workers ${workers} (${idle} idle):`);
  if (f.managers.length) {
    out.push(_table(
      ["Manager", "Block", "Host", "Workers", "Idle", "Running"],
      f.managers.map((m) => [
        m.id,
        String(m.block_id),
        m.hostname,
        String(m.workers),
        String(m.idle_workers),
        String(m.running),
      ]),
    ));
  }
  const errors = f.errors.slice(-10);
  out.push(`Recent errors (${f.errors.length}):`);
  for (const e of errors) out.push(`  ${e.time} [${e.source}] ${e.message}`);
  return out.join("\n");
}

/**
 * Who may use an endpoint: as the service confirmed at the last registration
 * (`endpoint.json`: owner, public, allowed groups), else as `config.yaml` asks.
 *
 * @example
 * ```ts
 * sharingOf("/home/u/.funcx", "default").line; // "alice and members of lab"
 * ```
 */
export function sharingOf(home: string, name: string): { line?: string; record: unknown } {
  const p = endpointPaths(home, name);
  try {
    const reg = JSON.parse(Deno.readTextFileSync(p.endpointJson));
    if (reg?.sharing && typeof reg.sharing === "object") {
      const groups = Array.isArray(reg.sharing.allowed_groups)
        ? reg.sharing.allowed_groups.map((g: { id?: string; name?: string }) =>
          String(g?.name ?? g?.id)
        )
        : [];
      const owner = String(reg.owner?.username ?? "the owner");
      return {
        line: describeSharing(owner, { public: reg.sharing.public === true, groups }),
        record: { owner: reg.owner ?? null, ...reg.sharing, source: "registration" },
      };
    }
  } catch { /* not registered yet */ }
  try {
    const c = loadEndpointConfig(p.config);
    return {
      line: `${
        describeSharing("the owner", { public: c.public, groups: c.allowed_groups })
      } (config.yaml; applied at the next start)`,
      record: { public: c.public, allowed_groups: c.allowed_groups, source: "config.yaml" },
    };
  } catch {
    return { record: null };
  }
}

/**
 * Add the `status` command.
 *
 * @example
 * ```ts ignore
 * register(program, ctx); // funcx-endpoint status [NAME] [--json]
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("status")
    .description("show an endpoint's state, blocks, managers, workers, tasks and recent errors")
    .argument("[name]", "endpoint name", "default")
    .option("--json", "print JSON (the computed status plus the daemon's status.json)")
    .action((nameArg, opts) => {
      const name = endpointName(nameArg);
      requireConfigured(ctx.home, name);
      const s = endpointState(ctx.home, name);
      const shared = sharingOf(ctx.home, name);
      if (opts.json) {
        console.log(JSON.stringify(
          {
            name: s.name,
            status: s.status,
            endpoint_id: s.endpoint_id,
            pid: s.pid,
            host: s.host,
            remote: s.remote,
            uptime_seconds: s.uptime_seconds,
            daemon: s.status_file,
            sharing: shared.record,
          },
          null,
          2,
        ));
        return;
      }
      console.log(renderStatus(s, Date.now(), shared.line));
    });
}
