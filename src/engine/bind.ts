/**
 * Bind the interchange's manager socket as `executor.address` and `executor.worker_ports`
 * say: resolve the address on this machine (engine/address.ts), take a port of the range
 * (engine/ports.ts), and return the URL managers connect to.
 *
 * @example
 * ```ts ignore
 * import { bindManagerSocket } from "./bind.ts";
 * const b = await bindManagerSocket(router, { address: "by-route", worker_ports: "54000-55000" });
 * b.url; // "tcp://192.0.2.2:54321"
 * ```
 * @module
 */
import { AddressError, resolveSystemAddress } from "./address.ts";
import { type Bindable, bindInRange, parsePortRange, PortRangeExhaustedError } from "./ports.ts";

/** Where the manager socket listens and how managers reach it. */
export interface BoundAddress {
  /** `tcp://host:port` managers connect to. */
  url: string;
  /** The configured `executor.address`. */
  spec: string;
  /** How the address was found (`interface ib0`, `default route via eth0`, ...). */
  how: string;
}

/**
 * Resolve, bind and describe; errors are one line naming the config key.
 *
 * @example
 * ```ts ignore
 * await bindManagerSocket(router, { address: "127.0.0.1", worker_ports: null });
 * ```
 */
export async function bindManagerSocket(
  socket: Bindable & { lastEndpoint?: string },
  ex: { address: string; worker_ports: string | null },
): Promise<BoundAddress> {
  const r = await resolveSystemAddress(ex.address);
  const range = ex.worker_ports === null ? undefined : parsePortRange(ex.worker_ports);
  let bound: string;
  try {
    await bindInRange(socket, r.bindHost, range);
    bound = socket.lastEndpoint!;
  } catch (e) {
    if (e instanceof PortRangeExhaustedError || e instanceof AddressError) throw e;
    throw new Error(
      `executor.address: cannot bind the manager socket on "${r.bindHost}" (${r.how}): ${
        (e as Error).message
      }`,
    );
  }
  const port = new URL(bound.replace("tcp://", "http://")).port;
  const host = r.connectHost.includes(":") ? `[${r.connectHost}]` : r.connectHost;
  return { url: `tcp://${host}:${port}`, spec: ex.address, how: r.how };
}
