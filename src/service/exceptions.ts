/**
 * Service-generated task failures, serialized like a worker's exception (`00` +
 * MIME-base64 pickle of a `parsl.app.errors.RemoteExceptionWrapper`, DESIGN.md §3) so
 * clients decode them the same way as failures raised on an endpoint.
 *
 * @example
 * ```ts
 * import { serviceException } from "./exceptions.ts";
 * const s = serviceException("EndpointDeleted", "endpoint was deleted");
 * s.startsWith("00\n"); // true
 * ```
 * @module
 */
import { encodeBase64Mime } from "../protocol/base64.ts";
import { encodePickle, PyGlobal, PyObject } from "../protocol/pickle.ts";

/**
 * A serialized RemoteExceptionWrapper for an error raised by the service itself.
 * The exception class is `builtins.RuntimeError`; `exception_type` carries `typeName`.
 *
 * @example
 * ```ts
 * serviceException("EndpointDeleted", "gone").slice(0, 3); // "00\n"
 * ```
 */
export function serviceException(typeName: string, message: string): string {
  const traceback =
    `Traceback (most recent call last):\n  (raised by the funcX service)\n${typeName}: ${message}\n`;
  const runtimeError = new PyGlobal("builtins", "RuntimeError");
  const wrapper = new PyObject(
    new PyGlobal("parsl.app.errors", "RemoteExceptionWrapper"),
    [],
    "newobj",
    {
      e_type: runtimeError,
      e_value: new PyObject(runtimeError, [`${typeName}: ${message}`], "reduce"),
      e_traceback: null,
      formatted_traceback: traceback,
      exception_type: typeName,
      message,
    },
  );
  return "00\n" + encodeBase64Mime(encodePickle(wrapper));
}

/**
 * The serialized exception of tasks whose endpoint was deleted before they finished.
 *
 * @example
 * ```ts
 * endpointGoneException("0b3e0e6a-3f5e-4a55-8a2c-7f3e6d0e1a2b").slice(0, 3); // "00\n"
 * ```
 */
export function endpointGoneException(endpointUuid: string): string {
  return serviceException(
    "EndpointDeleted",
    `endpoint ${endpointUuid} was deleted before the task finished`,
  );
}
