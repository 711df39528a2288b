/**
 * The manager's fast path: well-formed command lines are taken, anything else goes to the
 * full CLI, which still reports bad input with its usual one-line errors.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { daemonArgsOf, managerFlagsOf, startArgsOf } from "../../src/cli/fast.ts";
import { runCli, tempHome } from "../helpers/cli.ts";

const REQUIRED = [
  "--task-url",
  "tcp://127.0.0.1:5000",
  "--block-id",
  "0",
  "--worker-script",
  "/h/w.py",
  "--logdir",
  "/h/logs",
];

Deno.test("fast path: managerFlagsOf takes only complete, known --flag value pairs", () => {
  assertEquals(managerFlagsOf([...REQUIRED, "--workers", "2"]), {
    taskUrl: "tcp://127.0.0.1:5000",
    blockId: "0",
    workerScript: "/h/w.py",
    logdir: "/h/logs",
    workers: "2",
  });
  assertEquals(managerFlagsOf(REQUIRED.slice(0, 6)), undefined); // --logdir missing
  assertEquals(managerFlagsOf([...REQUIRED, "--help"]), undefined);
  assertEquals(managerFlagsOf([...REQUIRED, "--bogus", "1"]), undefined);
  assertEquals(managerFlagsOf([...REQUIRED, "--block-id", "1"]), undefined); // twice
  assertEquals(managerFlagsOf([...REQUIRED, "--workers", "--uid"]), undefined);
});

Deno.test("fast path: daemonArgsOf takes only the daemon's own command line", () => {
  const U = "12345678-9ABC-def0-1234-56789abcdef0";
  assertEquals(daemonArgsOf(["start", "ep", "--foreground", "--daemon"]), {
    name: "ep",
    endpointUuid: undefined,
    debug: false,
    daemon: true,
  });
  assertEquals(
    daemonArgsOf(["--debug", "start", "ep", "--foreground", "--daemon", "--endpoint-uuid", U]),
    {
      name: "ep",
      endpointUuid: U.toLowerCase(),
      debug: true,
      daemon: true,
    },
  );
  assertEquals(daemonArgsOf(["start", "ep"]), undefined);
  assertEquals(daemonArgsOf(["start", "a/b", "--foreground", "--daemon"]), undefined);
  assertEquals(
    daemonArgsOf(["start", "ep", "--foreground", "--daemon", "--endpoint-uuid", "x"]),
    undefined,
  );
  assertEquals(
    daemonArgsOf(["start", "ep", "--foreground", "--daemon", "--timeout", "5"]),
    undefined,
  );
});

Deno.test("fast path: startArgsOf takes the user's detached start, nothing else", () => {
  const U = "12345678-9ABC-def0-1234-56789abcdef0";
  assertEquals(startArgsOf(["start"]), {
    name: "default",
    endpointUuid: undefined,
    timeoutSeconds: 60,
    debug: false,
  });
  assertEquals(startArgsOf(["-d", "start", "hpc", "--timeout", "120", "--endpoint-uuid", U]), {
    name: "hpc",
    endpointUuid: U.toLowerCase(),
    timeoutSeconds: 120,
    debug: true,
  });
  assertEquals(startArgsOf(["start", "--timeout", "5"])?.name, "default");
  // for the full CLI: its own flags, help, bad values (it prints the error), repeats
  for (
    const argv of [
      ["start", "ep", "--foreground"],
      ["start", "ep", "--foreground", "--daemon"],
      ["start", "--help"],
      ["start", "ep", "--timeout", "0"],
      ["start", "ep", "--timeout", "soon"],
      ["start", "ep", "--timeout=5"],
      ["start", "ep", "--timeout"],
      ["start", "ep", "--timeout", "5", "--timeout", "6"],
      ["start", "ep", "--endpoint-uuid", "x"],
      ["start", "a/b"],
      ["start", "ep", "extra"],
      ["-c", "/tmp/x", "start"],
      ["stop", "ep"],
    ]
  ) assertEquals(startArgsOf(argv), undefined, argv.join(" "));
});

Deno.test("fast path: daemonArgsOf takes `start NAME --foreground` as typed (systemd)", () => {
  const U = "12345678-9abc-def0-1234-56789abcdef0";
  assertEquals(daemonArgsOf(["start", "ep", "--foreground"]), {
    name: "ep",
    endpointUuid: undefined,
    debug: false,
    daemon: false,
  });
  assertEquals(daemonArgsOf(["start", "ep", "--foreground", "--endpoint-uuid", U]), {
    name: "ep",
    endpointUuid: U,
    debug: false,
    daemon: false,
  });
  assertEquals(daemonArgsOf(["start", "ep", "--foreground", "--timeout", "5"]), undefined);
  assertEquals(daemonArgsOf(["start", "ep", "--foreground", "--endpoint-uuid"]), undefined);
  assertEquals(daemonArgsOf(["start", "ep", "--daemon", "--foreground"]), undefined);
});

Deno.test("fast path: bad manager flags still get the CLI's one-line errors", async () => {
  const home = tempHome();
  try {
    const bad = await runCli(home, ["manager", ...REQUIRED.slice(2), "--task-url", "nope"]);
    assertEquals(bad.code, 1);
    assertMatch(
      bad.stderr,
      /^funcx-endpoint: --task-url: "nope" is invalid; expected tcp:\/\/HOST:PORT\n$/,
    );
    const missing = await runCli(home, ["manager", "--block-id", "0"]);
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /required option '--task-url <url>' not specified/);
    // the daemon's command line with a bad name: the full CLI's message
    const daemon = await runCli(home, ["start", "a/b", "--foreground", "--daemon"]);
    assertEquals(daemon.code, 1);
    assertMatch(daemon.stderr, /^funcx-endpoint: endpoint name "a\/b" must not contain/);
    // the user's start, taken by the fast path: the same one-line errors as the full CLI
    const unconfigured = await runCli(home, ["start", "nope"]);
    assertEquals(unconfigured.code, 1);
    assertMatch(unconfigured.stderr, /^funcx-endpoint: .*"nope".*\n$/);
    const badTimeout = await runCli(home, ["start", "nope", "--timeout", "0"]);
    assertEquals(badTimeout.code, 1);
    assertMatch(badTimeout.stderr, /^funcx-endpoint: --timeout: "0" is not a positive number/);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
