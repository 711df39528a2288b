/**
 * The upstream funcX error record (`funcx_sdk/funcx/utils/response_errors.py`):
 * `{"status":"Failed","code":N,"error_args":[...],"reason":"...","http_status_code":H}`.
 *
 * @example
 * ```ts
 * import { ApiError, ErrorCode } from "./errors.ts";
 * const e = new ApiError(ErrorCode.TaskNotFound, "Task a-b-c not found", ["a-b-c"]);
 * e.record(); // {status: "Failed", code: 6, error_args: ["a-b-c"], reason: "...", http_status_code: 404}
 * ```
 * @module
 */

/** Upstream error codes. */
export enum ErrorCode {
  Unknown = 0,
  UserUnauthenticated = 1,
  UserNotFound = 2,
  FunctionNotFound = 3,
  EndpointNotFound = 4,
  ContainerNotFound = 5,
  TaskNotFound = 6,
  AuthGroupNotFound = 7,
  FunctionAccessForbidden = 8,
  EndpointAccessForbidden = 9,
  FunctionNotPermitted = 10,
  EndpointAlreadyRegistered = 11,
  ForwarderRegistrationError = 12,
  ForwarderContactError = 13,
  EndpointStatsError = 14,
  LivenessStatsError = 15,
  RequestKeyError = 16,
  RequestMalformed = 17,
  InternalError = 18,
  EndpointOutdated = 19,
  TaskGroupNotFound = 20,
  TaskGroupAccessForbidden = 21,
  InvalidUUID = 22,
}

const _HTTP: Record<ErrorCode, number> = {
  0: 500,
  1: 401,
  2: 404,
  3: 404,
  4: 404,
  5: 404,
  6: 404,
  7: 404,
  8: 403,
  9: 403,
  10: 403,
  11: 400,
  12: 502,
  13: 502,
  14: 500,
  15: 502,
  16: 400,
  17: 400,
  18: 500,
  19: 400,
  20: 404,
  21: 403,
  22: 400,
};

/** The JSON error record. */
export interface ErrorRecord {
  status: "Failed";
  code: number;
  error_args: unknown[];
  reason: string;
  http_status_code: number;
}

/** An API error; `record()` is the JSON body, `httpStatus` the response status. */
export class ApiError extends Error {
  readonly httpStatus: number;
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
    readonly args: unknown[] = [],
    httpStatus?: number,
  ) {
    super(reason);
    this.name = "ApiError";
    this.httpStatus = httpStatus ?? _HTTP[code] ?? 500;
  }

  /** The upstream error record. */
  record(): ErrorRecord {
    return {
      status: "Failed",
      code: this.code,
      error_args: this.args,
      reason: this.reason,
      http_status_code: this.httpStatus,
    };
  }
}

const _UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True for a canonical (hyphenated, 36-char) UUID string.
 *
 * @example
 * ```ts
 * isUuid("0b3e0e6a-3f5e-4a55-8a2c-7f3e6d0e1a2b"); // true
 * isUuid("nope"); // false
 * ```
 */
export function isUuid(s: unknown): s is string {
  return typeof s === "string" && _UUID_RE.test(s);
}

/**
 * Return the lower-cased uuid or throw `InvalidUUID` naming the field.
 *
 * @example
 * ```ts
 * checkUuid("0B3E0E6A-3F5E-4A55-8A2C-7F3E6D0E1A2B", "endpoint_uuid"); // lower-cased
 * ```
 */
export function checkUuid(s: unknown, field: string): string {
  if (!isUuid(s)) {
    throw new ApiError(
      ErrorCode.InvalidUUID,
      `Invalid UUID for ${field}: ${
        JSON.stringify(s)
      }; expected a UUID like 123e4567-e89b-12d3-a456-426614174000`,
      [String(s)],
    );
  }
  return s.toLowerCase();
}
