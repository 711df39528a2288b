/**
 * `funcx-endpoint enable-on-boot [NAME]` / `disable-on-boot [NAME]`: a systemd unit that runs
 * `start NAME --foreground` (daemon/systemd.ts).
 *
 * - As a normal user: a user unit written in the endpoint directory and linked with
 *   `systemctl --user link`, then enabled (it starts at boot with `loginctl enable-linger`).
 * - As root: a system unit with `User=` the owner of the endpoint directory, written to
 *   `/etc/systemd/system` (not linked from the home: whoever owns the home could otherwise
 *   change what root's systemd runs), then enabled.
 * - Where systemd does not run: a clear message, and the unit text to install by hand.
 *
 * @example
 * ```ts
 * import { bootUnit } from "./boot.ts";
 * const u = bootUnit("/home/u/.funcx", "default");
 * console.log(u.text);
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { join } from "node:path";
import { SYSTEM_UNIT_DIR } from "../config/permissions.ts";
import { selfCommand } from "../config/sandbox.ts";
import { atomicWrite } from "../endpoint/files.ts";
import { systemctl, systemdMissing, unitName, unitText } from "../daemon/systemd.ts";
import { endpointName, requireConfigured } from "./common.ts";
import { type CliContext, CliError } from "./context.ts";

/** The unit of an endpoint: where it goes, its name, text and systemctl scope. */
export interface BootUnit {
  /** Where the unit is installed: the endpoint directory (user) or /etc/systemd/system (root). */
  file: string;
  /** Copy kept in the endpoint directory when systemd does not run here. */
  localFile: string;
  unit: string;
  text: string;
  mode: "user" | "system";
  /** `["--user"]` for a user unit, `[]` for a system unit. */
  scope: string[];
}

function _owner(dir: string): string {
  const uid = Deno.statSync(dir).uid;
  return uid === null || uid === 0 ? "root" : String(uid);
}

/**
 * The unit for endpoint `name` of funcX home `home`, as this user would install it.
 *
 * @example
 * ```ts
 * bootUnit("/home/u/.funcx", "default").unit; // "funcx-endpoint-default.service"
 * ```
 */
export function bootUnit(home: string, name: string): BootUnit {
  const p = requireConfigured(home, name);
  const self = selfCommand();
  const mode = Deno.uid() === 0 ? "system" : "user";
  const unit = unitName(name);
  const text = unitText({
    name,
    home,
    command: [self.cmd, ...self.args],
    path: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    mode,
    user: mode === "system" ? _owner(p.dir) : undefined,
  });
  return {
    file: mode === "user" ? p.userUnit : join(SYSTEM_UNIT_DIR, unit),
    localFile: p.userUnit,
    unit,
    text,
    mode,
    scope: mode === "user" ? ["--user"] : [],
  };
}

function _manual(u: BootUnit): string {
  return u.mode === "user"
    ? `systemctl --user link ${u.localFile} && systemctl --user enable ${u.unit}`
    : `cp ${u.localFile} ${u.file} && systemctl daemon-reload && systemctl enable ${u.unit}`;
}

async function _systemctl(u: BootUnit, args: string[], what: string): Promise<void> {
  const err = await systemctl([...u.scope, ...args]);
  if (err) throw new CliError(`${what}: ${err}`);
}

/**
 * Write and enable the unit; returns the lines to print.
 *
 * @example
 * ```ts
 * console.log(await enableOnBoot("/home/u/.funcx", "default"));
 * ```
 */
export async function enableOnBoot(home: string, name: string): Promise<string> {
  const u = bootUnit(home, name);
  const missing = await systemdMissing();
  if (missing) {
    atomicWrite(u.localFile, u.text, 0o644);
    console.log(u.text);
    throw new CliError(
      `enable-on-boot: systemd is not running on this host (${missing}); nothing was enabled. The unit above is in ${u.localFile}: on a systemd host run \`${
        _manual(u)
      }\`, or start \`funcx-endpoint start ${name}\` from your own boot script`,
    );
  }
  atomicWrite(u.file, u.text, 0o644);
  if (u.mode === "user") await _systemctl(u, ["link", u.file], "enable-on-boot");
  else await _systemctl(u, ["daemon-reload"], "enable-on-boot");
  await _systemctl(u, ["enable", u.unit], "enable-on-boot");
  const out = [`Endpoint "${name}" will start on boot: ${u.mode} unit ${u.unit} (${u.file})`];
  if (u.mode === "user") {
    out.push(
      `User units start at boot only for users with lingering enabled: run \`loginctl enable-linger ${
        Deno.env.get("USER") ?? "$USER"
      }\` once (your site may need an administrator for it)`,
    );
  }
  out.push(
    `To run it under systemd now: \`funcx-endpoint stop ${name}\` then \`systemctl ${
      u.scope.length ? "--user " : ""
    }start ${u.unit}\``,
  );
  return out.join("\n");
}

function _remove(path: string): boolean {
  try {
    Deno.removeSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Disable and remove the unit; returns the line to print.
 *
 * @example
 * ```ts
 * console.log(await disableOnBoot("/home/u/.funcx", "default"));
 * ```
 */
export async function disableOnBoot(home: string, name: string): Promise<string> {
  const u = bootUnit(home, name);
  const missing = await systemdMissing();
  if (missing) {
    const removed = _remove(u.localFile);
    return `systemd is not running on this host (${missing}): nothing to disable here${
      removed ? `; removed ${u.localFile}` : ""
    }. If you installed the unit by hand on another host, run \`systemctl ${
      u.scope.length ? "--user " : ""
    }disable ${u.unit}\` there`;
  }
  await _systemctl(u, ["disable", u.unit], "disable-on-boot");
  const removed = _remove(u.file);
  if (u.mode === "system") await _systemctl(u, ["daemon-reload"], "disable-on-boot");
  return `Endpoint "${name}" will no longer start on boot (${u.unit} disabled${
    removed ? `, ${u.file} removed` : ""
  })`;
}

/**
 * Add the `enable-on-boot` command.
 *
 * @example
 * ```ts ignore
 * registerEnable(program, ctx);
 * ```
 */
export function registerEnable(program: Command, ctx: CliContext) {
  program
    .command("enable-on-boot")
    .description(
      "start the endpoint on boot with systemd (user unit; as root a system unit with User=)",
    )
    .argument("[name]", "endpoint name", "default")
    .action(async (nameArg) => {
      console.log(await enableOnBoot(ctx.home, endpointName(nameArg)));
    });
}

/**
 * Add the `disable-on-boot` command.
 *
 * @example
 * ```ts ignore
 * registerDisable(program, ctx);
 * ```
 */
export function registerDisable(program: Command, ctx: CliContext) {
  program
    .command("disable-on-boot")
    .description("stop starting the endpoint on boot (disable and remove its systemd unit)")
    .argument("[name]", "endpoint name", "default")
    .action(async (nameArg) => {
      console.log(await disableOnBoot(ctx.home, endpointName(nameArg)));
    });
}
