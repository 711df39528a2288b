import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { DEFAULT_ENDPOINT_CONFIG } from "../../src/config/types.ts";
import { jobName, schedulerLines } from "../../src/providers/batch.ts";
import {
  parseQstatJson,
  parseQsub,
  PBSProProvider,
  pbsScript,
  pbsState,
} from "../../src/providers/pbs.ts";
import { commandError, shellQuote, walltimeSeconds } from "../../src/providers/provider.ts";
import {
  parseSacct,
  parseSbatch,
  parseScontrolJob,
  parseSqueue,
  slurmScript,
  slurmState,
} from "../../src/providers/slurm.ts";

Deno.test("batch: walltime parsing and validation", () => {
  assertEquals(walltimeSeconds("01:00:00"), 3600);
  assertEquals(walltimeSeconds("10:30"), 630);
  assertEquals(walltimeSeconds("2-00:00:01"), 172801);
  throws(() => walltimeSeconds("1h"), /walltime "1h" is invalid; expected HH:MM:SS/);
});

Deno.test("batch: shell quoting, job names, scheduler lines, command errors", () => {
  assertEquals(shellQuote("/a/b.ts"), "/a/b.ts");
  assertEquals(shellQuote("it's"), `'it'"'"'s'`);
  assertEquals(jobName("/h/my ep", "3"), "funcx.my_ep.3");
  assertEquals(schedulerLines("  --mem=4G\n\n#SBATCH --exclusive", "#SBATCH"), [
    "#SBATCH --mem=4G",
    "#SBATCH --exclusive",
  ]);
  assertEquals(
    commandError("sbatch", { code: 1, stdout: "", stderr: "sbatch: error: a\nsbatch: error: b\n" }),
    "sbatch failed (exit 1): sbatch: error: a; sbatch: error: b",
  );
});

const slurmInput = {
  jobName: "funcx.default.0",
  nodes: 2,
  walltime: "00:10:00",
  partition: "debug",
  account: "proj1",
  schedulerOptions: "--mem=1G",
  workerInit: "module load python\nsource venv/bin/activate",
  launcher: "srun" as const,
  stdout: "/h/default/submit_scripts/b.stdout",
  stderr: "/h/default/submit_scripts/b.stderr",
  home: "/h",
  command: ["/usr/bin/deno", "run", "/opt/x y/main.ts", "manager", "--block-id", "0"],
};

Deno.test("slurm: submit script has the directives, worker_init and one srun per node", () => {
  const s = slurmScript(slurmInput);
  const lines = s.split("\n");
  assertEquals(lines[0], "#!/bin/bash");
  for (
    const want of [
      "#SBATCH --job-name=funcx.default.0",
      "#SBATCH --nodes=2",
      "#SBATCH --ntasks-per-node=1",
      "#SBATCH --time=00:10:00",
      "#SBATCH --output=/h/default/submit_scripts/b.stdout",
      "#SBATCH --error=/h/default/submit_scripts/b.stderr",
      "#SBATCH --partition=debug",
      "#SBATCH --account=proj1",
      "#SBATCH --mem=1G",
      "export FUNCX_HOME=/h",
      "module load python",
      "source venv/bin/activate",
      "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 /usr/bin/deno run '/opt/x y/main.ts' manager --block-id 0",
    ]
  ) assert(lines.includes(want), `missing line: ${want}\n${s}`);
  // Directives come before the first command.
  const firstCmd = lines.findIndex((l) => l.startsWith("export"));
  assert(lines.slice(firstCmd).every((l) => !l.startsWith("#SBATCH")));
  const none = slurmScript({ ...slurmInput, launcher: "none", partition: null, account: null });
  assert(!none.includes("srun") && !none.includes("--partition") && !none.includes("--account"));
  throws(() => slurmScript({ ...slurmInput, walltime: "soon" }), /walltime "soon" is invalid/);
});

Deno.test("slurm: sbatch, squeue, scontrol and sacct parsing", () => {
  assertEquals(parseSbatch("4711\n"), "4711");
  assertEquals(parseSbatch("4711;cluster1\n"), "4711");
  assertEquals(parseSbatch("Submitted batch job 12\n"), "12");
  throws(() => parseSbatch("nothing here"), /cannot find a job id/);
  const q = parseSqueue("12|PENDING|Resources\n13|RUNNING|None\n14|TIMEOUT|TimeLimit\n\n");
  assertEquals(q.get("12"), { state: "PENDING", message: "Resources" });
  assertEquals(q.get("13"), { state: "RUNNING", message: "" });
  assertEquals(q.get("14"), { state: "FAILED", message: "walltime exceeded (TIMEOUT); TimeLimit" });
  assertEquals(q.size, 3);
  assertEquals(
    parseScontrolJob(
      "JobId=5 JobName=x UserId=root(0) JobState=CANCELLED Reason=None ExitCode=0:15",
    ),
    { id: "5", status: { state: "CANCELLED", message: "exit code 0:15" } },
  );
  assertEquals(parseScontrolJob("slurm_load_jobs error: Invalid job id specified"), undefined);
  const a = parseSacct("7|CANCELLED by 0|0:15\n7.batch|CANCELLED|0:15\n8|FAILED|1:0\n");
  assertEquals(a.get("7"), { state: "CANCELLED", message: "" });
  assertEquals(a.get("8"), { state: "FAILED", message: "job failed (FAILED); exit code 1:0" });
  assertEquals(a.has("7.batch"), false);
});

Deno.test("slurm: state table", () => {
  const table: [string, string][] = [
    ["PENDING", "PENDING"],
    ["PD", "PENDING"],
    ["CONFIGURING", "PENDING"],
    ["RUNNING", "RUNNING"],
    ["COMPLETING", "RUNNING"],
    ["COMPLETED", "COMPLETED"],
    ["CANCELLED+", "CANCELLED"],
    ["TIMEOUT", "FAILED"],
    ["NODE_FAIL", "FAILED"],
    ["OUT_OF_MEMORY", "FAILED"],
    ["WEIRD", "UNKNOWN"],
  ];
  for (const [raw, want] of table) assertEquals(slurmState(raw).state, want, raw);
});

Deno.test("pbs: submit script, launchers, qsub and qstat parsing", () => {
  const base = {
    jobName: "funcx.default.1",
    nodes: 3,
    walltime: "1:30:00",
    queue: "workq",
    account: "A1",
    schedulerOptions: "-l filesystems=home",
    workerInit: "",
    launcher: "mpiexec" as const,
    stdout: "/o",
    stderr: "/e",
    home: "/h",
    command: ["fx", "manager"],
  };
  const s = pbsScript(base).split("\n");
  for (
    const want of [
      "#PBS -N funcx.default.1",
      "#PBS -l select=3",
      "#PBS -l walltime=01:30:00",
      "#PBS -q workq",
      "#PBS -A A1",
      "#PBS -l filesystems=home",
      "#PBS -o /o",
      "#PBS -e /e",
      "mpiexec -n 3 -ppn 1 fx manager",
    ]
  ) assert(s.includes(want), `missing line: ${want}`);
  assert(pbsScript({ ...base, launcher: "pbsdsh" }).includes("pbsdsh -u -- fx manager"));
  assert(pbsScript({ ...base, launcher: "srun" }).split("\n").includes("fx manager"));
  assertEquals(parseQsub("1234.pbs01\n"), "1234.pbs01");
  assertEquals(parseQsub("99[].server\n"), "99[].server");
  throws(() => parseQsub("qsub: Unknown queue"), /cannot find a job id/);
  const st = parseQstatJson(JSON.stringify({
    Jobs: {
      "1.s": { job_state: "Q", comment: "Not Running: Insufficient resources" },
      "2.s": { job_state: "R" },
      "3.s": { job_state: "F", Exit_status: 0 },
      "4.s": { job_state: "F", Exit_status: -29 },
      "5.s": { job_state: "F", Exit_status: 271 },
      "6.s": { job_state: "F", Exit_status: 1, comment: "Job failed" },
    },
  }));
  assertEquals(st.get("1.s"), { state: "PENDING", message: "Not Running: Insufficient resources" });
  assertEquals(st.get("2.s")!.state, "RUNNING");
  assertEquals(st.get("3.s")!.state, "COMPLETED");
  assertEquals(st.get("4.s"), { state: "FAILED", message: "walltime exceeded (exit status -29)" });
  assertEquals(st.get("5.s")!.state, "CANCELLED");
  assertEquals(st.get("6.s"), { state: "FAILED", message: "exit status 1; Job failed" });
  assertEquals(pbsState("H").state, "PENDING");
  throws(() => parseQstatJson("not json"), /not valid JSON/);
});

Deno.test("pbs: provider drives qsub/qstat/qdel and reports their errors", async () => {
  const dir = await Deno.makeTempDir();
  const calls: string[][] = [];
  const replies: Record<string, { code: number; stdout: string; stderr: string }> = {
    qsub: { code: 0, stdout: "42.srv\n", stderr: "" },
    qstat: {
      code: 153,
      stdout: JSON.stringify({ Jobs: { "42.srv": { job_state: "R" } } }),
      stderr: "qstat: Unknown Job Id 41.srv",
    },
    qdel: { code: 35, stdout: "", stderr: "qdel: Job has finished 42.srv" },
  };
  const p = new PBSProProvider({
    config: { ...DEFAULT_ENDPOINT_CONFIG.provider, type: "pbs", queue: "q1" },
    endpointDir: dir,
    home: "/h",
    run: (cmd, args) => {
      calls.push([cmd, ...args]);
      return Promise.resolve(replies[cmd]);
    },
  });
  try {
    assertEquals(
      await p.submit({ blockId: "0", command: ["fx"], nodes: 1, walltime: "00:05:00" }),
      "42.srv",
    );
    const scripts = [...Deno.readDirSync(`${dir}/submit_scripts`)].map((e) => e.name);
    assertEquals(scripts.length, 1);
    assert(Deno.readTextFileSync(`${dir}/submit_scripts/${scripts[0]}`).includes("#PBS -q q1"));
    const st = await p.status(["42.srv", "41.srv"]);
    assertEquals(st.get("42.srv")!.state, "RUNNING");
    assertEquals(st.get("41.srv")!.state, "COMPLETED");
    await p.cancel(["42.srv"]);
    replies.qsub = { code: 38, stdout: "", stderr: "qsub: Unknown queue\n" };
    await p.submit({ blockId: "1", command: ["fx"], nodes: 1, walltime: "00:05:00" }).then(
      () => {
        throw new Error("qsub should fail");
      },
      (e) => assertEquals(e.message, "qsub failed (exit 38): qsub: Unknown queue"),
    );
    assertEquals(calls.map((c) => c[0]), ["qsub", "qstat", "qdel", "qsub"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
