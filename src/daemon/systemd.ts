/**
 * Starting an endpoint on boot with systemd (`enable-on-boot` / `disable-on-boot`): the unit
 * text (pure, {@linkcode unitText}), whether systemd runs this machine, and `systemctl`.
 *
 * A normal user gets a user unit written inside the funcX home and linked with
 * `systemctl --user link` (it starts at boot only with `loginctl enable-linger`); root gets a
 * system unit with `User=` the owner of the endpoint.
 *
 * @example
 * ```ts
 * import { unitText } from "./systemd.ts";
 * unitText({ name: "default", home: "/home/u/.funcx", command: ["/usr/bin/funcx-endpoint"], path: "/usr/bin:/bin", mode: "user" });
 * ```
 * @module
 */

/** Inputs of {@linkcode unitText}. */
export interface UnitOptions {
  /** Endpoint name. */
  name: string;
  /** Absolute funcX home. */
  home: string;
  /** The program and its leading arguments (the binary's absolute path, or deno + main.ts). */
  command: readonly string[];
  /** PATH the daemon gets (so python3 and the batch commands are found as in the shell). */
  path: string;
  /** `user`: a `systemctl --user` unit; `system`: a system unit run as `user`. */
  mode: "user" | "system";
  /** `User=` of a system unit. */
  user?: string;
}

/**
 * The unit's file name for endpoint `name`.
 *
 * @example
 * ```ts
 * unitName("default"); // "funcx-endpoint-default.service"
 * ```
 */
export function unitName(name: string): string {
  return `funcx-endpoint-${name}.service`;
}

/**
 * One word of a systemd command line or assignment: bare when safe, else double-quoted;
 * `%` (specifiers) is always doubled.
 *
 * @example
 * ```ts
 * systemdQuote("/a b/c"); // '"/a b/c"'
 * systemdQuote("50%"); // "50%%"
 * ```
 */
export function systemdQuote(word: string): string {
  const w = word.replaceAll("%", "%%");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w)) return w;
  return `"${w.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * The unit file text.
 *
 * @example
 * ```ts
 * unitText({ name: "hpc", home: "/root/.funcx", command: ["/usr/local/bin/funcx-endpoint"], path: "/usr/bin", mode: "system", user: "alice" })
 *   .includes("User=alice"); // true
 * ```
 */
export function unitText(o: UnitOptions): string {
  const exec = [...o.command, "start", o.name, "--foreground"].map(systemdQuote).join(" ");
  const env = (k: string, v: string) => `Environment=${systemdQuote(`${k}=${v}`)}`;
  const lines = [
    `# Written by \`funcx-endpoint enable-on-boot ${o.name}\`; removed by \`disable-on-boot\`.`,
    "[Unit]",
    `Description=funcX endpoint ${o.name} (funcX home ${o.home.replaceAll("%", "%%")})`,
  ];
  if (o.mode === "system") lines.push("Wants=network-online.target", "After=network-online.target");
  lines.push(
    "",
    "[Service]",
    "Type=simple",
  );
  if (o.mode === "system") lines.push(`User=${systemdQuote(o.user ?? "root")}`);
  lines.push(
    env("FUNCX_HOME", o.home),
    env("PATH", o.path),
    // a path setting: not quoted (quotes would be part of it), only specifiers escaped
    `WorkingDirectory=${`${o.home}/${o.name}`.replaceAll("%", "%%")}`,
    `ExecStart=${exec}`,
    "Restart=on-failure",
    "RestartSec=10",
    // SIGTERM to the daemon only: it stops its managers and workers itself, then the rest
    "KillMode=mixed",
    "TimeoutStopSec=60",
    "",
    "[Install]",
    `WantedBy=${o.mode === "system" ? "multi-user.target" : "default.target"}`,
    "",
  );
  return lines.join("\n");
}

/**
 * Why systemd cannot be used on this machine, or `undefined` when it runs it: from
 * `systemctl is-system-running`, which says `offline` when PID 1 is not systemd.
 *
 * @example
 * ```ts
 * await systemdMissing(); // undefined on a systemd host, else "systemctl is not installed" or ...
 * ```
 */
export async function systemdMissing(): Promise<string | undefined> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("systemctl", {
      args: ["is-system-running"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch (e) {
    return e instanceof Deno.errors.NotFound
      ? "systemctl is not installed"
      : `systemctl: ${(e as Error).message}`;
  }
  return systemdStateProblem(new TextDecoder().decode(out.stdout).trim());
}

/**
 * Interpret the output of `systemctl is-system-running`.
 *
 * @example
 * ```ts
 * systemdStateProblem("degraded"); // undefined: systemd runs (some unit failed)
 * systemdStateProblem("offline"); // "systemctl is-system-running: offline"
 * ```
 */
export function systemdStateProblem(state: string): string | undefined {
  if (state === "offline" || state === "unknown" || state === "") {
    return `systemctl is-system-running: ${state || "no answer"}`;
  }
  return undefined;
}

/**
 * Run `systemctl ARGS`; resolves to `undefined` on success, else a one-line reason.
 *
 * @example
 * ```ts
 * await systemctl(["--user", "daemon-reload"]);
 * ```
 */
export async function systemctl(args: string[]): Promise<string | undefined> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("systemctl", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    return e instanceof Deno.errors.NotFound
      ? "systemctl is not installed"
      : `systemctl: ${(e as Error).message}`;
  }
  if (out.success) return undefined;
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").filter(Boolean).pop();
  return `systemctl ${args.join(" ")} failed: ${err ?? `exit code ${out.code}`}`;
}
