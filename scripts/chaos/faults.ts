/**
 * The fault kinds of the chaos run and their command-line names.
 *
 * - SIGKILL of a component at a random moment: `service`, `daemon`, `manager`, `worker`;
 * - the service SIGKILLed at a chosen moment: `service-in-submit` (a submit request is in
 *   flight), `service-in-poll` (a `batch_status` request is in flight: its answer is lost),
 *   `service-storing` (right after the first result of a burst was stored, while the rest
 *   arrive);
 * - `disk-full`: the service's filesystem (a tmpfs of its own) filled up, SQLite writes fail;
 * - `daemon-sigstop`: the endpoint daemon SIGSTOPped past its heartbeat threshold, then resumed;
 * - TCP faults (see `fault_proxy.ts`) between the endpoint and the forwarder (`fwd-*`) and
 *   between the managers and the interchange (`mgr-*`): `stall`, `half-open`, `reset`,
 *   `drip`, `partition`.
 *
 * @example
 * ```ts
 * import { parseFaultList } from "./faults.ts";
 * parseFaultList("worker,fwd-stall"); // ["worker", "fwd-stall"]
 * ```
 * @module
 */

/** TCP faults of the proxies. */
export const LINK_FAULTS = ["stall", "half-open", "reset", "drip", "partition"] as const;

/** One TCP fault kind. */
export type LinkFault = typeof LINK_FAULTS[number];

/** Every fault kind, in report order. */
export const FAULT_KINDS = [
  "service",
  "daemon",
  "manager",
  "worker",
  "service-in-submit",
  "service-in-poll",
  "service-storing",
  "disk-full",
  "daemon-sigstop",
  ...LINK_FAULTS.map((f) => `fwd-${f}` as const),
  ...LINK_FAULTS.map((f) => `mgr-${f}` as const),
] as const;

/** One fault kind. */
export type FaultKind = typeof FAULT_KINDS[number];

/**
 * Is `s` a fault kind?
 *
 * @example
 * ```ts
 * isFaultKind("mgr-drip"); // true
 * ```
 */
export function isFaultKind(s: string): s is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(s);
}

/**
 * Parse a comma-separated list of fault kinds; `all` stands for every kind. Throws a one-line
 * error naming the bad entry and the valid ones.
 *
 * @example
 * ```ts
 * parseFaultList("all").length; // FAULT_KINDS.length
 * ```
 */
export function parseFaultList(text: string): FaultKind[] {
  const out: FaultKind[] = [];
  for (const raw of text.split(",")) {
    const s = raw.trim();
    if (s === "all") out.push(...FAULT_KINDS);
    else if (isFaultKind(s)) out.push(s);
    else {
      throw new Error(
        `--faults: unknown fault ${JSON.stringify(s)}; valid: all, ${FAULT_KINDS.join(", ")}`,
      );
    }
  }
  return [...new Set(out)];
}

/**
 * The link and the TCP fault of a `fwd-*` / `mgr-*` kind, null for the others.
 *
 * @example
 * ```ts
 * linkFault("fwd-reset"); // { link: "fwd", fault: "reset" }
 * ```
 */
export function linkFault(kind: FaultKind): { link: "fwd" | "mgr"; fault: LinkFault } | null {
  const m = /^(fwd|mgr)-(.+)$/.exec(kind);
  return m ? { link: m[1] as "fwd" | "mgr", fault: m[2] as LinkFault } : null;
}
