/**
 * `executor.address`: where managers on compute nodes connect back to the interchange.
 *
 * - an IP address or host name: bound and announced as is (`*`: every interface, announced
 *   under this host's name);
 * - `by-interface:<name>` (e.g. `ib0`): the IPv4 address of that network interface;
 * - `by-hostname`: this host's name, resolved to an address;
 * - `by-route`: the address of the interface that carries the default route.
 *
 * Resolution is pure over an {@linkcode AddressSources} snapshot ({@linkcode resolveAddress});
 * {@linkcode systemAddressSources} reads the machine (network interfaces, `/proc/net/route` and
 * `/proc/net/dev` through bash, the resolver).
 *
 * @example
 * ```ts
 * import { resolveAddress, systemAddressSources } from "./address.ts";
 * const r = resolveAddress("by-interface:eth0", await systemAddressSources());
 * r.bindHost; // "192.0.2.2"
 * ```
 * @module
 */
import { lookup } from "node:dns/promises";

/** What resolving an address needs to know about the machine. */
export interface AddressSources {
  /** Interfaces with their addresses (`Deno.networkInterfaces()`). */
  interfaces: { name: string; family: "IPv4" | "IPv6"; address: string }[];
  /** Every interface name, also those without an address (`/proc/net/dev`); optional. */
  names?: string[];
  /** This host's name. */
  hostname: string;
  /** This host's name resolved to an IPv4 address (`undefined` when it does not resolve). */
  hostnameAddress: string | undefined;
  /** Interface of the IPv4 default route (`undefined` when there is none). */
  defaultRouteInterface: string | undefined;
}

/** The result of {@linkcode resolveAddress}. */
export interface ResolvedAddress {
  /** The configured value. */
  spec: string;
  /** Host/IP to bind the manager socket on. */
  bindHost: string;
  /** Host/IP managers connect to. */
  connectHost: string;
  /** How it was found, for the log and `status`. */
  how: string;
}

/** `executor.address` could not be resolved (one line, names the key). */
export class AddressError extends Error {
  constructor(message: string) {
    super(`executor.address: ${message}`);
    this.name = "AddressError";
  }
}

function _ipv4Of(src: AddressSources, name: string): string | undefined {
  return src.interfaces.find((i) => i.name === name && i.family === "IPv4")?.address;
}

function _names(src: AddressSources): string {
  const names = [...new Set([...(src.names ?? []), ...src.interfaces.map((i) => i.name)])];
  return names.length ? names.join(", ") : "none";
}

/**
 * Is `spec` a valid `executor.address` value (syntax only)? Returns the problem or undefined.
 *
 * @example
 * ```ts
 * checkAddressSpec("by-interface:"); // "by-interface: needs an interface name, e.g. by-interface:ib0"
 * ```
 */
export function checkAddressSpec(spec: string): string | undefined {
  if (spec === "by-hostname" || spec === "by-route" || spec === "*") return undefined;
  if (spec.startsWith("by-interface:")) {
    const n = spec.slice("by-interface:".length);
    return /^[A-Za-z0-9._@-]{1,15}$/.test(n)
      ? undefined
      : "by-interface: needs an interface name, e.g. by-interface:ib0";
  }
  if (spec.startsWith("by-")) {
    return `unknown method "${spec}": use by-interface:<name>, by-hostname or by-route`;
  }
  return /^[A-Za-z0-9.:_-]+$/.test(spec) ? undefined : "not an IP address or host name";
}

/**
 * Resolve `executor.address` against a snapshot of the machine.
 *
 * @example
 * ```ts
 * const src: AddressSources = {
 *   interfaces: [{ name: "ib0", family: "IPv4", address: "10.1.0.7" }],
 *   hostname: "login1",
 *   hostnameAddress: undefined,
 *   defaultRouteInterface: undefined,
 * };
 * resolveAddress("by-interface:ib0", src).connectHost; // "10.1.0.7"
 * resolveAddress("by-interface:ib1", src); // throws: executor.address: no network interface "ib1" on this host (present: ib0)
 * ```
 */
export function resolveAddress(spec: string, src: AddressSources): ResolvedAddress {
  const problem = checkAddressSpec(spec);
  if (problem) throw new AddressError(problem);
  if (spec === "*") {
    return { spec, bindHost: "0.0.0.0", connectHost: src.hostname, how: "all interfaces" };
  }
  if (spec.startsWith("by-interface:")) {
    const name = spec.slice("by-interface:".length);
    if (!src.interfaces.some((i) => i.name === name) && !src.names?.includes(name)) {
      throw new AddressError(
        `no network interface "${name}" on this host (present: ${_names(src)})`,
      );
    }
    const ip = _ipv4Of(src, name);
    if (!ip) throw new AddressError(`network interface "${name}" has no IPv4 address`);
    return { spec, bindHost: ip, connectHost: ip, how: `interface ${name}` };
  }
  if (spec === "by-hostname") {
    if (!src.hostnameAddress) {
      throw new AddressError(`host name "${src.hostname}" does not resolve to an IPv4 address`);
    }
    return {
      spec,
      bindHost: src.hostnameAddress,
      connectHost: src.hostnameAddress,
      how: `host name ${src.hostname}`,
    };
  }
  if (spec === "by-route") {
    const iface = src.defaultRouteInterface;
    if (!iface) throw new AddressError("by-route: this host has no IPv4 default route");
    const ip = _ipv4Of(src, iface);
    if (!ip) throw new AddressError(`by-route: interface "${iface}" has no IPv4 address`);
    return { spec, bindHost: ip, connectHost: ip, how: `default route via ${iface}` };
  }
  return { spec, bindHost: spec, connectHost: spec, how: "configured" };
}

/**
 * The interface of the IPv4 default route in `/proc/net/route` text.
 *
 * @example
 * ```ts
 * defaultRouteFrom("Iface\tDestination\tGateway\neth0\t00000000\t010200C0\n"); // "eth0"
 * ```
 */
export function defaultRouteFrom(procNetRoute: string): string | undefined {
  let best: { iface: string; metric: number } | undefined;
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[1] !== "00000000" || f[7] !== "00000000") continue;
    const flags = parseInt(f[3], 16);
    if (!(flags & 1)) continue; // RTF_UP
    const metric = Number(f[6]) || 0;
    if (!best || metric < best.metric) best = { iface: f[0], metric };
  }
  return best?.iface;
}

/**
 * Interface names in `/proc/net/dev` text.
 *
 * @example
 * ```ts
 * interfaceNamesFrom("Inter-|\n face |\n    lo: 1 2\n  ib0: 3 4\n"); // ["lo", "ib0"]
 * ```
 */
export function interfaceNamesFrom(procNetDev: string): string[] {
  const out: string[] = [];
  for (const line of procNetDev.split("\n").slice(2)) {
    const m = /^\s*([^\s:]+):/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/**
 * Snapshot of this machine for {@linkcode resolveAddress}; only what `spec` needs is looked
 * up (the resolver is asked only for `by-hostname`).
 *
 * @example
 * ```ts
 * const src = await systemAddressSources("by-route");
 * ```
 */
export async function systemAddressSources(spec = ""): Promise<AddressSources> {
  const hostname = Deno.hostname();
  const interfaces = Deno.networkInterfaces().map((i) => ({
    name: i.name,
    family: i.family,
    address: i.address,
  }));
  let hostnameAddress: string | undefined;
  if (spec === "by-hostname") {
    try {
      hostnameAddress = (await lookup(hostname, { family: 4 })).address;
    } catch { /* does not resolve */ }
  }
  let defaultRouteInterface: string | undefined;
  if (spec === "by-route") {
    const route = await _procNet("route");
    if (route !== undefined) defaultRouteInterface = defaultRouteFrom(route);
  }
  let names: string[] | undefined;
  if (spec.startsWith("by-interface:")) {
    const dev = await _procNet("dev"); // absent: the interfaces with an address are listed
    if (dev !== undefined) names = interfaceNamesFrom(dev);
  }
  return { interfaces, names, hostname, hostnameAddress, defaultRouteInterface };
}

/**
 * `/proc/net/<file>`, read through bash: `/proc/net` links to `/proc/self/net`, which the
 * sandbox may not read directly (Deno asks for all permissions there).
 */
async function _procNet(file: "route" | "dev"): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("bash", {
      args: ["-c", 'exec cat -- "$0"', `/proc/net/${file}`],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolve `spec` on this machine.
 *
 * @example
 * ```ts
 * (await resolveSystemAddress("127.0.0.1")).bindHost; // "127.0.0.1"
 * ```
 */
export async function resolveSystemAddress(spec: string): Promise<ResolvedAddress> {
  return resolveAddress(spec, await systemAddressSources(spec));
}
