/**
 * `executor.address` resolution and `executor.worker_ports`: the pure parts with snapshots,
 * then against this machine's real interfaces and routes (compared with what `ip` reports)
 * and a real manager socket (src/io/zmtp) bound in a range whose other ports are taken.
 */
import {
  deepStrictEqual as assertEquals,
  match,
  ok as assert,
  rejects,
  throws,
} from "node:assert/strict";
import { Router } from "../../src/io/zmtp/mod.ts";
import {
  type AddressSources,
  defaultRouteFrom,
  interfaceNamesFrom,
  resolveAddress,
  resolveSystemAddress,
} from "../../src/engine/address.ts";
import { bindManagerSocket } from "../../src/engine/bind.ts";
import {
  bindInRange,
  parsePortRange,
  portOrder,
  PortRangeExhaustedError,
} from "../../src/engine/ports.ts";

const SRC: AddressSources = {
  interfaces: [
    { name: "lo", family: "IPv4", address: "127.0.0.1" },
    { name: "ib0", family: "IPv4", address: "10.1.0.7" },
    { name: "ib0", family: "IPv6", address: "fe80::1" },
    { name: "eth9", family: "IPv6", address: "fd00::9" },
  ],
  hostname: "login1",
  hostnameAddress: "10.0.0.3",
  defaultRouteInterface: "ib0",
};

Deno.test("resolveAddress: literal, *, by-interface, by-hostname, by-route", () => {
  assertEquals(resolveAddress("10.2.3.4", SRC).connectHost, "10.2.3.4");
  assertEquals(resolveAddress("*", SRC), {
    spec: "*",
    bindHost: "0.0.0.0",
    connectHost: "login1",
    how: "all interfaces",
  });
  assertEquals(resolveAddress("by-interface:ib0", SRC).bindHost, "10.1.0.7");
  assertEquals(resolveAddress("by-hostname", SRC).connectHost, "10.0.0.3");
  assertEquals(resolveAddress("by-route", SRC).how, "default route via ib0");
  throws(
    () => resolveAddress("by-interface:ib1", SRC),
    /^AddressError: executor\.address: no network interface "ib1" on this host \(present: lo, ib0, eth9\)$/,
  );
  throws(() => resolveAddress("by-interface:eth9", SRC), /"eth9" has no IPv4 address/);
  // an interface without any address (from /proc/net/dev) is present, but has no IPv4
  const withDown = { ...SRC, names: ["lo", "ib0", "ifb0"] };
  throws(() => resolveAddress("by-interface:ifb0", withDown), /"ifb0" has no IPv4 address/);
  throws(
    () => resolveAddress("by-interface:ib1", withDown),
    /no network interface "ib1" on this host \(present: lo, ib0, ifb0, eth9\)$/,
  );
  assertEquals(
    interfaceNamesFrom("Inter-|   Receive\n face |bytes\n    lo: 1 2\n  ifb0:  0 0\n  ib0: 3 4\n"),
    ["lo", "ifb0", "ib0"],
  );
  throws(() => resolveAddress("by-magic", SRC), /unknown method "by-magic"/);
  throws(
    () => resolveAddress("by-hostname", { ...SRC, hostnameAddress: undefined }),
    /host name "login1" does not resolve/,
  );
  throws(
    () => resolveAddress("by-route", { ...SRC, defaultRouteInterface: undefined }),
    /no IPv4 default route/,
  );
});

Deno.test("defaultRouteFrom picks the lowest-metric up default route", () => {
  const text = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
    "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\n" +
    "ib0\t00000000\t0101010A\t0003\t0\t0\t5\t00000000\n" +
    "eth1\t00000000\t0101010A\t0002\t0\t0\t0\t00000000\n" +
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
  assertEquals(defaultRouteFrom(text), "ib0");
  assertEquals(defaultRouteFrom("Iface\n"), undefined);
});

async function ip(args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped" }).output();
  assert(out.success, `ip ${args.join(" ")}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("the real machine: every interface with IPv4, the default route, unknown names", async () => {
  // `ip -o -4 addr` lists "N: NAME inet A.B.C.D/P ..."
  const addrs = [...(await ip(["-o", "-4", "addr", "show"])).matchAll(
    /^\d+: (\S+)\s+inet (\d+\.\d+\.\d+\.\d+)\//gm,
  )].map((m) => [m[1], m[2]]);
  assert(addrs.length > 0);
  for (const [name, address] of addrs) {
    const r = await resolveSystemAddress(`by-interface:${name}`);
    assertEquals([r.bindHost, r.connectHost], [address, address]);
  }
  const route = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(
    await ip(["-o", "-4", "route", "get", "8.8.8.8"]),
  );
  if (route) assertEquals((await resolveSystemAddress("by-route")).bindHost, route[1]);
  const byName = await resolveSystemAddress("by-hostname");
  match(byName.bindHost, /^\d+\.\d+\.\d+\.\d+$/);
  // every interface of the machine is named, with or without an address (`ip -o link`)
  const all = [...(await ip(["-o", "link", "show"])).matchAll(/^\d+: ([^:@\s]+)[@:]/gm)].map((m) =>
    m[1]
  );
  await rejects(resolveSystemAddress("by-interface:nosuch0"), (e: Error) => {
    for (const name of all) assert(e.message.includes(name), `${name}: ${e.message}`);
    match(
      e.message,
      /^executor\.address: no network interface "nosuch0" on this host \(present: .*lo/,
    );
    for (const [name] of addrs) assert(e.message.includes(name), e.message);
    return !e.message.includes("\n");
  });
});

Deno.test("worker_ports: range parsing and the order ports are tried in", () => {
  assertEquals(parsePortRange("54000-55000"), { lo: 54000, hi: 55000 });
  assertEquals(parsePortRange("7-7"), { lo: 7, hi: 7 });
  for (const bad of ["0-10", "10-9", "1-70000", "54000", "a-b", ""]) {
    assertEquals(parsePortRange(bad), undefined, bad);
  }
  assertEquals([...portOrder({ lo: 10, hi: 13 }, 0.5)], [12, 13, 10, 11]);
  assertEquals([...portOrder({ lo: 10, hi: 13 }, 0.9999)], [13, 10, 11, 12]);
  assertEquals([...portOrder({ lo: 10, hi: 13 }, 0)], [10, 11, 12, 13]);
});

/** `n` consecutive free ports, all held open by listeners (close them to free). */
function holdRange(n: number): { lo: number; listeners: Deno.Listener[] } {
  for (let attempt = 0; attempt < 50; attempt++) {
    const lo = 20000 + Math.floor(Math.random() * 30000);
    const listeners: Deno.Listener[] = [];
    try {
      for (let p = lo; p < lo + n; p++) {
        listeners.push(Deno.listen({ hostname: "127.0.0.1", port: p }));
      }
      return { lo, listeners };
    } catch {
      for (const l of listeners) l.close();
    }
  }
  throw new Error("no free port range");
}

Deno.test("worker_ports: a real manager socket skips ports in use; an exhausted range is one clear error", async () => {
  const { lo, listeners } = holdRange(4);
  const router = new Router();
  const router2 = new Router();
  try {
    // all four taken: exhausted
    await rejects(
      bindInRange(router, "127.0.0.1", { lo, hi: lo + 3 }),
      (e: Error) =>
        e instanceof PortRangeExhaustedError &&
        e.message ===
          `executor.worker_ports: no free port in ${lo}-${
            lo + 3
          } on 127.0.0.1 (all 4 in use); widen the range or stop what uses it`,
    );
    // free exactly one: that is the one bound, though the search starts elsewhere and wraps
    listeners[2].close();
    assertEquals(
      await bindInRange(router, "127.0.0.1", { lo, hi: lo + 3 }, () => 0.99),
      `tcp://127.0.0.1:${lo + 2}`,
    );
    // through the interchange's call: address resolution + range, URL for managers
    listeners[1].close();
    const b = await bindManagerSocket(router2, {
      address: "by-interface:lo",
      worker_ports: `${lo}-${lo + 3}`,
    });
    assertEquals(b, {
      url: `tcp://127.0.0.1:${lo + 1}`,
      spec: "by-interface:lo",
      how: "interface lo",
    });
  } finally {
    await router.close();
    await router2.close();
    listeners[0].close();
    listeners[3].close();
  }
});
