import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import {
  buildArgs,
  DEV_BUILD,
  formatVersion,
  parseBuild,
  splitBuildArg,
} from "../../src/config/build.ts";
import { runCli, tempHome } from "../helpers/cli.ts";

Deno.test("build: --funcx-build=<release>@<commit> is taken off the front of argv only", () => {
  const b = { release: "1.2.0", commit: "0123abcd", protocol: "0.3.4" };
  assertEquals(splitBuildArg(["--funcx-build=1.2.0@0123abcd", "list", "--json"]), {
    build: b,
    argv: ["list", "--json"],
  });
  assertEquals(splitBuildArg(["list", "--funcx-build=1.2.0@0123abcd"]), {
    build: undefined,
    argv: ["list", "--funcx-build=1.2.0@0123abcd"],
  });
  assertEquals(splitBuildArg([]), { build: undefined, argv: [] });
  assertEquals(parseBuild("1.3.0-rc.1+x@" + "a".repeat(40)).release, "1.3.0-rc.1+x");
  assertEquals(buildArgs(b), ["--funcx-build=1.2.0@0123abcd"]);
  assertEquals(buildArgs(DEV_BUILD), []);
  assertEquals(
    formatVersion(b),
    "FuncX endpoint version: 0.3.4\nrelease: 1.2.0\ncommit: 0123abcd",
  );
  for (
    const bad of ["1.2.0", "1.2.0@", "@0123abcd", "1 2@0123abcd", "1.2.0@XYZ1234", "1.2.0@abc"]
  ) {
    throws(() => parseBuild(bad), /^Error: --funcx-build="[^"]*": expected <release>@<commit>/);
  }
});

Deno.test("build: a malformed baked-in build argument is a one-line error, exit 1", async () => {
  const home = tempHome();
  try {
    const r = await runCli(home, ["--funcx-build=1.2.0", "list"]);
    assertEquals(r.code, 1);
    assertEquals(
      r.stderr,
      'funcx-endpoint: --funcx-build="1.2.0": expected <release>@<commit>, the release made of ' +
        "letters, digits and . + _ - (like 1.2.0) and the commit 7-64 lowercase hex digits\n",
    );
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
