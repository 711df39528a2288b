/**
 * Description of the machine a benchmark ran on: cores, architecture, CPU model (from
 * `/proc/cpuinfo`), kernel, Deno, Python and libzmq versions.
 *
 * @example
 * ```ts
 * import { machineInfo } from "./machine.ts";
 * const m = await machineInfo(); // { cores: 2, arch: "x86_64", cpu: "...", ... }
 * ```
 * @module
 */

/** What {@linkcode machineInfo} reports. */
export interface MachineInfo {
  cores: number;
  arch: string;
  cpu: string;
  kernel: string;
  deno: string;
  python: string;
  libzmq: string;
  /** 1/5/15-minute load averages when measured (other work on the machine skews figures). */
  loadavg: number[];
}

/**
 * Collect the machine description.
 *
 * @example
 * ```ts
 * (await machineInfo()).cpu;
 * ```
 */
export async function machineInfo(): Promise<MachineInfo> {
  let cpu = "unknown";
  let kernel = Deno.osRelease();
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? cpu;
  } catch { /* not Linux */ }
  const uname = await _run("uname", ["-m"]);
  const py = await _run("python3", ["--version"]);
  kernel = `${Deno.build.os} ${kernel}`;
  return {
    cores: navigator.hardwareConcurrency,
    arch: uname || Deno.build.arch,
    cpu,
    kernel,
    deno: Deno.version.deno,
    python: py.replace(/^Python\s+/, "") || "unknown",
    libzmq: "none (ZMTP 3.1 in TypeScript, src/io/zmtp)",
    loadavg: Deno.loadavg(),
  };
}

async function _run(cmd: string, args: string[]): Promise<string> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(o.stdout).trim() || new TextDecoder().decode(o.stderr).trim();
  } catch {
    return "";
  }
}
