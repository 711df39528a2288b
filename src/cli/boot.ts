/**
 * `funcx-endpoint enable-on-boot [NAME]` / `disable-on-boot [NAME]`: a systemd unit that runs
 * `start NAME --foreground` (daemon/systemd.ts). As a normal user a user unit, written in the
 * endpoint directory and linked with `systemctl --user link`; as root a system unit with
 * `User=`. Where systemd does not run, a clear message and the unit text to install by hand.
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
import { selfCommand } from "../config/sandbox.ts";
import { atomicWrite } from "../endpoint/files.ts";
import { systemctl, systemdMissing, unitName, unitText } from "../daemon/systemd.ts";
import { endpointName, requireConfigured } from "./common.ts";
import { type CliContext, CliError } from "./context.ts";

/** The unit of an endpoint: where it is written, its name, text and systemctl scope. */
export interface BootUnit {
  file: string;
  unit: string;
  text: string;
  mode: "user" | "system";
  /** `["--user"]` for a user unit, `[]` for a system unit. */
  scope: string[];
}

function _systemUser(dir: string): string {
  const sudo = Deno.env.get("SUDO_USER");
  if (sudo && sudo !== "root" && /^[a-z_][a-z0-9_.-]*$/i.test(sudo)) return sudo;
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
  const text = unitText({
    name,
    home,
    command: [self.cmd, ...self.args],
    path: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    mode,
    user: mode === "system" ? _systemUser(p.dir) : undefined,
  });
  return {
    file: p.userUnit,
    unit: unitName(name),
    text,
    mode,
    scope: mode === "user" ? ["--user"] : [],
  };
}

function _manual(u: BootUnit): string {
  const s = u.scope.length ? "--user " : "";
  return `systemctl ${s}link ${u.file} && systemctl ${s}enable ${u.unit}`;
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
  atomicWrite(u.file, u.text, 0o644);
  const missing = await systemdMissing();
  if (missing) {
    console.log(u.text);
    throw new CliError(
      `enable-on-boot: systemd is not running on this host (${missing}); nothing was enabled. The unit above is in ${u.file}: on a systemd host run \`${
        _manual(u)
      }\`, or start \`funcx-endpoint start ${name}\` from your own boot script`,
    );
  }
  for (const args of [[...u.scope, "link", u.file], [...u.scope, "enable", u.unit]]) {
    const err = await systemctl(args);
    if (err) {
      throw new CliError(
        `enable-on-boot: ${err}; the unit is in ${u.file}, to enable it by hand: \`${_manual(u)}\``,
      );
    }
  }
  const out = [
    `Endpoint "${name}" will start on boot: ${u.mode} unit ${u.unit} (${u.file})`,
  ];
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
  if (!missing) {
    const err = await systemctl([...u.scope, "disable", u.unit]);
    if (err) throw new CliError(`disable-on-boot: ${err}`);
  }
  let removed = true;
  try {
    Deno.removeSync(u.file);
  } catch {
    removed = false;
  }
  if (missing) {
    return `systemd is not running on this host (${missing}): nothing to disable here${
      removed ? `; removed ${u.file}` : ""
    }. If you installed the unit by hand on another host, run \`systemctl ${
      u.scope.length ? "--user " : ""
    }disable ${u.unit}\` there`;
  }
  return `Endpoint "${name}" will no longer start on boot (${u.unit} disabled${
    removed ? `, ${u.file} removed` : ""
  })`;
}

/**
 * Add the `enable-on-boot` command.
 *
 * @example
 * ```ts
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
 * ```ts
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
