/**
 * Test helper: a Python client environment shaped like the funcX 0.3.x SDK's, to unpickle
 * what our service hands out exactly as upstream does. It runs Debian's `/usr/bin/python3`
 * with the real `dill` and `tblib` (python3-dill, python3-tblib; `.ci/run` installs them) and a
 * `parsl.app.errors.RemoteExceptionWrapper` written here after parsl 1.1.0's behaviour:
 * `reraise()` loads `e_type` and `e_value` with `dill.loads`, rebuilds the traceback with
 * `e_traceback.as_traceback()` and raises the value with it. Results are loaded the way the
 * SDK's `00` serializer does (base64 + `pickle.loads`).
 *
 * @example
 * ```ts ignore
 * import { reraiseInUpstreamClient } from "./_upstream_client.ts";
 * const [r] = await reraiseInUpstreamClient([exceptionString]);
 * r.type; // "ValueError"
 * ```
 * @module
 */

/** The interpreter with dill and tblib (Debian's, not pyenv's). */
export const CLIENT_PYTHON = "/usr/bin/python3";

/** Client-side prelude: the upstream-shaped parsl module, dill, tblib, SDK deserialize. */
export const UPSTREAM_CLIENT_PRELUDE = String.raw`
import sys, types, json, pickle, codecs, logging, traceback
import dill
import tblib

logger = logging.getLogger("parsl.app.errors")

class RemoteExceptionWrapper:
    # parsl 1.1.0's layout and reraise() (behaviour, written for this test)
    def __init__(self, e_type, e_value, tb):
        self.e_type = dill.dumps(e_type)
        self.e_value = dill.dumps(e_value)
        self.e_traceback = tblib.Traceback(tb)

    def reraise(self):
        t = dill.loads(self.e_type)
        logger.debug("Reraising exception of type %s", t)
        v = dill.loads(self.e_value)
        tb = self.e_traceback.as_traceback()
        if v.__traceback__ is not tb:
            raise v.with_traceback(tb)
        raise v

for _n in ("parsl", "parsl.app", "parsl.app.errors"):
    sys.modules.setdefault(_n, types.ModuleType(_n))
RemoteExceptionWrapper.__module__ = "parsl.app.errors"
sys.modules["parsl.app.errors"].RemoteExceptionWrapper = RemoteExceptionWrapper

def sdk_deserialize(s):
    assert s[:3] == "00\n", s[:3]
    return pickle.loads(codecs.decode(s[3:].encode(), "base64"))
`;

/** What the client saw when it re-raised one exception. */
export interface Reraised {
  /** Class name of the exception raised by `reraise()`. */
  type: string;
  /** Its module (`builtins` for builtin ones). */
  module: string;
  /** `str(e)`. */
  message: string;
  /** The remote frames of the traceback as `[filename, function name, line]`, outermost first. */
  frames: [string, string, number][];
  /** The wrapper's class, as the client resolved it. */
  wrapper: string;
  /** `dill.loads(wrapper.e_value)` type name: what FuncXExecutor's futures get. */
  executorType: string;
}

/**
 * Load each serialized exception in the upstream-shaped client and call `reraise()`.
 * Throws (with the client's stderr) when a wrapper cannot be loaded or re-raised.
 */
export async function reraiseInUpstreamClient(serialized: string[]): Promise<Reraised[]> {
  const code = UPSTREAM_CLIENT_PRELUDE + String.raw`
out = []
for s in json.load(sys.stdin):
    w = sdk_deserialize(s)
    ev = dill.loads(w.e_value)
    try:
        w.reraise()
    except BaseException as e:
        # the client's own frames (this script, reraise) are "<string>"; the rest came remote
        frames = [[f.filename, f.name, f.lineno] for f in traceback.extract_tb(e.__traceback__)
                  if f.filename != "<string>"]
        out.append({"type": type(e).__name__, "module": type(e).__module__,
                    "message": str(e), "frames": frames,
                    "wrapper": type(w).__module__ + "." + type(w).__name__,
                    "executorType": type(ev).__name__})
    else:
        raise SystemExit("reraise() returned")
print(json.dumps(out))
`;
  const child = new Deno.Command(CLIENT_PYTHON, {
    args: ["-c", code],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(serialized)));
  await w.close();
  const out = await child.output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `${CLIENT_PYTHON} (the upstream-shaped client; needs python3-dill and python3-tblib) failed: ${err}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
