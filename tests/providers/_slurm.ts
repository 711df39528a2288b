// Shared by the real-Slurm tests: make sure the local one-node Slurm is up, or say why not.
const SCRIPT = new URL("../../scripts/local-slurm.sh", import.meta.url).pathname;

/** Run a command, capture its output. */
export async function sh(cmd: string, args: string[]) {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: `${cmd}: ${(e as Error).message}` };
  }
}

let _checked: Promise<string | undefined> | undefined;

/**
 * `undefined` when a usable Slurm is there (already running, or started now as root with
 * scripts/local-slurm.sh), else the reason the Slurm tests are skipped.
 */
export function slurmSkipReason(): Promise<string | undefined> {
  _checked ??= (async () => {
    if ((await sh("bash", [SCRIPT, "status"])).code === 0) return undefined;
    if (Deno.uid() !== 0) {
      return `no running Slurm and not root (uid ${Deno.uid()}), so scripts/local-slurm.sh cannot start one`;
    }
    const r = await sh("bash", [SCRIPT, "start"]);
    if (r.code !== 0) return `local Slurm did not start: ${r.stderr.trim().split("\n").pop()}`;
    return undefined;
  })();
  return _checked;
}

/** Jobs in squeue whose name belongs to the endpoint directory `dir`. */
export async function ourJobs(dir: string): Promise<string[]> {
  const r = await sh("squeue", ["--noheader", "--format=%i|%j|%T"]);
  const prefix = `funcx.${dir.split("/").pop()}.`;
  return r.stdout.split("\n").filter((l) => l.split("|")[1]?.startsWith(prefix));
}

/** The test name, with the skip reason appended when skipped. */
export function slurmTestName(name: string, skip: string | undefined): string {
  return skip ? `${name} (skipped: ${skip})` : name;
}
