/**
 * Small assertion helpers over `node:assert/strict` (JSR is unreachable) for the endpoint
 * room's tests.
 * @module
 */
import nodeAssert from "node:assert/strict";

export function assert(v: unknown, msg?: string): asserts v {
  nodeAssert.ok(v, msg);
}
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  nodeAssert.match(actual, re, msg);
}
type Ctor<E> = new (...args: never[]) => E;
function _check<E extends Error>(e: unknown, cls?: Ctor<E>, includes?: string): E {
  if (cls && !(e instanceof cls)) {
    throw new Error(`expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  if (includes && !String((e as Error)?.message).includes(includes)) {
    throw new Error(`expected message to include "${includes}", got "${(e as Error)?.message}"`);
  }
  return e as E;
}
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: Ctor<E>,
  includes?: string,
): E {
  try {
    fn();
  } catch (e) {
    return _check(e, cls, includes);
  }
  throw new Error("expected the function to throw");
}
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: Ctor<E>,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return _check(e, cls, includes);
  }
  throw new Error("expected the promise to reject");
}
