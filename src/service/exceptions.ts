/**
 * Service-generated task failures, serialized like a worker's exception (`00` + pickled
 * `parsl.app.errors.RemoteExceptionWrapper`, DESIGN.md §3) so clients decode them the
 * same way as failures raised on an endpoint.
 *
 * @example
 * ```ts
 * import { endpointGoneException } from "./exceptions.ts";
 * const s = endpointGoneException("0b3e0e6a-3f5e-4a55-8a2c-7f3e6d0e1a2b");
 * s.startsWith("00\n"); // true
 * ```
 * @module
 */
import { remoteException } from "../protocol/serialize.ts";

/**
 * The serialized exception of tasks whose endpoint was deleted before they finished.
 *
 * @example
 * ```ts
 * endpointGoneException("0b3e0e6a-3f5e-4a55-8a2c-7f3e6d0e1a2b").slice(0, 3); // "00\n"
 * ```
 */
export function endpointGoneException(endpointUuid: string): string {
  const message = `endpoint ${endpointUuid} was deleted before the task finished`;
  return remoteException(
    "EndpointDeleted",
    message,
    `Traceback (most recent call last):\n  (raised by the funcX service)\nEndpointDeleted: ${message}\n`,
  );
}
