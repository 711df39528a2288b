/**
 * The embedded Python worker, `<endpoint>/worker/funcx_worker.py` (DESIGN.md §6).
 *
 * Run as `python3 -u funcx_worker.py`: it reads frames (4-byte big-endian length + payload)
 * from stdin, each payload an upstream Task message (`\x05TID=..;CID=..;<packed buffers>`),
 * runs `fn(*args, **kwargs)` and writes one frame per task to stdout holding the pickled
 * result dict `{"task_id", "container_id", "result" | "exception", "times"}`.
 * Serializer ids `00`–`04` are understood (`01` needs `dill`); exceptions travel as a
 * `parsl.app.errors.RemoteExceptionWrapper` pickle built without Parsl. The result size limit
 * comes from `--result-size-limit N` or env `FUNCX_RESULT_SIZE_LIMIT` (default 10 MiB).
 * User code cannot write into the frame stream: file descriptor 1 is pointed at stderr
 * and stdin at `/dev/null` while the frames use private duplicates.
 *
 * Other modes: `--self-test` (runs a built-in task, prints a JSON line) and
 * `--bench FILE N` (runs the Task message in FILE N times through the same
 * deserialize/call/serialize path, prints `{"tasks", "seconds", "tasks_per_second"}`).
 * Python 3.8+, standard library only.
 *
 * @example
 * ```ts
 * import { PYTHON_WORKER_FILENAME, PYTHON_WORKER_SOURCE } from "./python_worker.ts";
 * await Deno.writeTextFile(`/tmp/${PYTHON_WORKER_FILENAME}`, PYTHON_WORKER_SOURCE);
 * ```
 * @module
 */

/** File name the worker is written under, in `<endpoint>/worker/`. */
export const PYTHON_WORKER_FILENAME = "funcx_worker.py";

/** Default result size limit (bytes of the serialized result), upstream 0.3.5+. */
export const DEFAULT_RESULT_SIZE_LIMIT = 10 * 1024 * 1024;

/** Largest task frame the worker accepts before giving up on the stream (bytes). */
export const MAX_TASK_FRAME = 256 * 1024 * 1024;

/** Source text of the Python worker. */
export const PYTHON_WORKER_SOURCE: string = String.raw`#!/usr/bin/env python3
"""funcX worker (funcx-endpoint, embedded). Standard library only; dill is used if present.

Protocol: frames of a 4-byte big-endian length + payload on stdin (Task messages) and
stdout (pickled result dicts). See DESIGN.md section 6 of funcx-endpoint.
"""
import base64
import builtins
import io
import json
import linecache
import os
import pickle
import struct
import sys
import time
import traceback

try:
    import dill  # noqa: F401
except Exception:  # pragma: no cover - dill is optional
    dill = None

DEFAULT_RESULT_SIZE_LIMIT = ${DEFAULT_RESULT_SIZE_LIMIT}
MAX_TASK_FRAME = ${MAX_TASK_FRAME}
TASK_TYPE = 5
_FN_CACHE = {}
_FN_CACHE_MAX = 128


class WorkerError(Exception):
    """An error the worker reports instead of a result (bad payload, size limit...)."""

    def __init__(self, type_name, message):
        Exception.__init__(self, message)
        self.type_name = type_name
        self.message = message


def log(msg):
    try:
        sys.stderr.write("funcx_worker[%d]: %s\n" % (os.getpid(), msg))
        sys.stderr.flush()
    except Exception:
        pass


# ---------------------------------------------------------------- payload decoding

def unpack_task(payload):
    """Task message -> (task_id, container_id, task_buffer str)."""
    if not payload or payload[0] != TASK_TYPE:
        raise WorkerError("DeserializationError", "frame is not a Task message (type byte %r)"
                          % (payload[0] if payload else None,))
    try:
        text = payload[1:].decode("utf-8")
    except UnicodeDecodeError as e:
        raise WorkerError("DeserializationError", "Task message is not UTF-8: %s" % e)
    parts = text.split(";", 2)
    if len(parts) != 3 or not parts[0].startswith("TID=") or not parts[1].startswith("CID="):
        raise WorkerError("DeserializationError",
                          "Task message is not TID=<id>;CID=<id>;<buffers>")
    return parts[0][4:], parts[1][4:], parts[2]


def guess_task_id(payload):
    try:
        if payload and payload[0] == TASK_TYPE and payload[1:5] == b"TID=":
            end = payload.index(b";", 5)
            return payload[5:end].decode("utf-8", "replace")
    except Exception:
        pass
    return ""


def unpack_buffers(packed):
    out = []
    pos = 0
    n = len(packed)
    while pos < n:
        nl = packed.find("\n", pos)
        if nl < 0:
            raise WorkerError("DeserializationError", "packed buffers: missing newline after length")
        length = packed[pos:nl]
        if not length.isdigit() or not length.isascii() or len(length) > 15:
            raise WorkerError("DeserializationError",
                              "packed buffers: invalid length %r" % length[:20])
        size = int(length)
        start = nl + 1
        if size > n - start:
            raise WorkerError("DeserializationError",
                              "packed buffers: buffer declares %d characters, %d remain"
                              % (size, n - start))
        out.append(packed[start:start + size])
        pos = start + size
    return out


def _b64(body):
    try:
        return base64.b64decode(body.encode("ascii"), validate=False)
    except Exception as e:
        raise WorkerError("DeserializationError", "invalid base64 payload: %s" % e)


def _exec_source(name, src):
    ns = {"__name__": "__funcx_main__", "__builtins__": builtins}
    filename = "<funcx function %s>" % name
    lines = src.splitlines(True)
    n = 1
    while filename in linecache.cache and linecache.cache[filename][2] != lines:
        n += 1
        filename = "<funcx function %s #%d>" % (name, n)
    # let tracebacks show the function's source lines
    linecache.cache[filename] = (len(src), None, lines, filename)
    exec(compile(src, filename, "exec"), ns)
    try:
        return ns[name]
    except KeyError:
        raise WorkerError("DeserializationError",
                          "function source does not define %r" % (name,))


def deserialize(payload, what):
    header = payload[0:3]
    body = payload[3:]
    if header == "00\n":
        try:
            return pickle.loads(_b64(body))
        except WorkerError:
            raise
        except Exception as e:
            raise WorkerError("DeserializationError", "cannot unpickle %s: %s: %s"
                              % (what, type(e).__name__, e))
    if header in ("03\n", "04\n"):
        try:
            name, src = pickle.loads(_b64(body))
        except WorkerError:
            raise
        except Exception as e:
            raise WorkerError("DeserializationError", "cannot unpickle %s source: %s" % (what, e))
        if not isinstance(name, str) or not isinstance(src, str):
            raise WorkerError("DeserializationError", "%s source is not (name, source)" % what)
        return _exec_source(name, src)
    if header == "01\n":
        if dill is None:
            raise WorkerError("DeserializationError",
                              "%s was serialized with dill (id 01) but dill is not installed "
                              "on the endpoint; install dill or register the function as "
                              "source" % what)
        try:
            return dill.loads(_b64(body))
        except Exception as e:
            raise WorkerError("DeserializationError", "cannot load %s with dill: %s" % (what, e))
    if header == "02\n":
        loader = dill.loads if dill is not None else pickle.loads
        try:
            return loader(_b64(body))
        except WorkerError:
            raise
        except Exception as e:
            hint = "" if dill is not None else " (dill is not installed)"
            raise WorkerError("DeserializationError", "cannot unpickle %s%s: %s: %s"
                              % (what, hint, type(e).__name__, e))
    raise WorkerError("DeserializationError", "invalid header %r in %s payload" % (header, what))


def load_function(serialized):
    fn = _FN_CACHE.get(serialized)
    if fn is None:
        fn = deserialize(serialized, "function")
        if not callable(fn):
            raise WorkerError("DeserializationError", "function payload is not callable")
        if len(_FN_CACHE) >= _FN_CACHE_MAX:
            _FN_CACHE.pop(next(iter(_FN_CACHE)))
        _FN_CACHE[serialized] = fn
    return fn


def decode_task(task_buffer):
    bufs = unpack_buffers(task_buffer)
    if len(bufs) != 3:
        raise WorkerError("DeserializationError",
                          "task payload holds %d buffers; expected 3 (fn, args, kwargs)"
                          % len(bufs))
    fn = load_function(bufs[0])
    args = deserialize(bufs[1], "args")
    kwargs = deserialize(bufs[2], "kwargs")
    if isinstance(args, list):
        args = tuple(args)
    if not isinstance(args, tuple):
        raise WorkerError("DeserializationError", "args is a %s, not a tuple" % type(args).__name__)
    if not isinstance(kwargs, dict):
        raise WorkerError("DeserializationError",
                          "kwargs is a %s, not a dict" % type(kwargs).__name__)
    return fn, args, kwargs


# ---------------------------------------------------------------- result encoding

def serialize_data(value):
    return "00\n" + base64.encodebytes(pickle.dumps(value, protocol=4)).decode("ascii")


_BUILTIN_EXC = {n for n in dir(builtins)
                if isinstance(getattr(builtins, n), type)
                and issubclass(getattr(builtins, n), BaseException)}
_MAX_TB_FRAMES = 100


class _Obj:
    """An instance of module.name as the default pickling writes it (NEWOBJ + BUILD state),
    written without importing the module (parsl, tblib: absent on a bare python3)."""

    __slots__ = ("glob", "state")

    def __init__(self, module, name, state):
        self.glob = ("c%s\n%s\n" % (module, name)).encode("ascii")
        self.state = state


def _emit(x, out):
    if isinstance(x, _Obj):
        out += x.glob + b")\x81"
        _emit(x.state, out)
        out += b"b"
    elif type(x) is dict and any(isinstance(v, (_Obj, dict)) for v in x.values()):
        out += b"}("
        for k, v in x.items():
            _emit(k, out)
            _emit(v, out)
        out += b"u"
    else:
        # a standalone protocol-3 fragment: its memo indices are only used inside it
        out += pickle.dumps(x, protocol=3)[2:-1]


def _pickle_obj(obj):
    out = bytearray(b"\x80\x03")
    _emit(obj, out)
    out += b"."
    return bytes(out)


def _tb_entries(tb):
    """(filename, name, lineno, module name) of the user's frames (the worker's dropped)."""
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename != __file__:
            g = tb.tb_frame.f_globals
            out.append((code.co_filename, code.co_name, int(tb.tb_lineno),
                        g.get("__name__") if isinstance(g.get("__name__"), str) else None,
                        g.get("__file__") if isinstance(g.get("__file__"), str) else None))
        tb = tb.tb_next
    if len(out) > _MAX_TB_FRAMES:
        half = _MAX_TB_FRAMES // 2
        out = out[:half] + out[-half:]
    return out


def _tblib_traceback(entries):
    """The pickled state a tblib.Traceback (with its Frame and Code) holds, innermost last."""
    if not entries:
        entries = [("<funcx-endpoint worker>", "<module>", 1, "funcx_worker", None)]
    nxt = None
    for filename, name, lineno, modname, modfile in reversed(entries):
        code = _Obj("tblib", "Code", {
            "co_filename": filename, "co_name": name, "co_argcount": 0,
            "co_kwonlyargcount": 0, "co_varnames": (), "co_nlocals": 0, "co_stacksize": 0,
            "co_flags": 64, "co_firstlineno": 0})
        glob = {}
        if modfile is not None:
            glob["__file__"] = modfile
        if modname is not None:
            glob["__name__"] = modname
        frame = _Obj("tblib", "Frame", {"f_locals": {}, "f_globals": glob, "f_code": code,
                                        "f_lineno": lineno})
        nxt = _Obj("tblib", "Traceback", {"tb_frame": frame, "tb_lineno": lineno,
                                          "tb_next": nxt})
    return nxt


def _dumps(x):
    return dill.dumps(x, protocol=3) if dill is not None else pickle.dumps(x, protocol=3)


def _loads(b):
    return dill.loads(b) if dill is not None else pickle.loads(b)


def _builtin_base(cls):
    """The nearest builtin exception class of cls (RuntimeError if none fits)."""
    for c in getattr(cls, "__mro__", ()):
        if c.__module__ == "builtins" and c.__name__ in _BUILTIN_EXC \
                and getattr(builtins, c.__name__) is c and "Unicode" not in c.__name__:
            return c
    return RuntimeError


def _type_and_value(type_name, message, exc):
    """dill-loadable pickles of the exception's type and value; builtin stand-ins when the
    real ones cannot be loaded without the user's code (e.g. a class defined in the
    function's source)."""
    if exc is not None:
        try:
            t, v = _dumps(type(exc)), _dumps(exc)
            if _loads(t) is type(exc) and type(_loads(v)) is type(exc):
                return t, v
        except Exception:
            pass
        cls = _builtin_base(type(exc))
    else:
        cls = getattr(builtins, type_name, None) if type_name in _BUILTIN_EXC \
            and "Unicode" not in type_name else RuntimeError
    value = None
    if exc is not None:
        try:
            value = cls(*exc.args)  # same args: same str() as the original
            pickle.loads(pickle.dumps(value, protocol=3))
        except Exception:
            value = None
    if value is None:
        try:
            value = cls(message)
        except Exception:
            cls, value = RuntimeError, RuntimeError(message)
    return pickle.dumps(cls, protocol=3), pickle.dumps(value, protocol=3)


def serialize_exception(type_name, message, formatted, exc=None):
    """A parsl.app.errors.RemoteExceptionWrapper (parsl 1.1.0 layout: e_type and e_value
    dill pickles, e_traceback a tblib.Traceback) plus our readable fields."""
    e_type, e_value = _type_and_value(type_name, message, exc)
    entries = _tb_entries(exc.__traceback__) if exc is not None else []
    state = {"e_type": e_type, "e_value": e_value, "e_traceback": _tblib_traceback(entries),
             "formatted_traceback": formatted, "exception_type": type_name,
             "message": message}
    try:
        data = _pickle_obj(_Obj("parsl.app.errors", "RemoteExceptionWrapper", state))
    except Exception:
        state["e_traceback"] = _tblib_traceback([])
        data = _pickle_obj(_Obj("parsl.app.errors", "RemoteExceptionWrapper", state))
    return "00\n" + base64.encodebytes(data).decode("ascii")


def format_user_traceback(exc):
    tb = exc.__traceback__
    # drop the worker's own frames (run_task -> fn call)
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class _Redirect:
    """Point sys.stdout/sys.stdin away from the frame stream while user code runs."""

    def __enter__(self):
        self.saved = (sys.stdout, sys.stdin)
        sys.stdout = sys.stderr
        sys.stdin = io.StringIO("")
        return self

    def __exit__(self, *exc):
        try:
            sys.stdout.flush()
        except Exception:
            pass
        sys.stdout, sys.stdin = self.saved
        return False


def run_task(payload, limit):
    """Run one Task message; returns the pickled result dict (bytes)."""
    start = time.time()
    task_id = guess_task_id(payload)
    container_id = "RAW"
    key = "result"
    try:
        task_id, container_id, task_buffer = unpack_task(payload)
        fn, args, kwargs = decode_task(task_buffer)
        start = time.time()
        try:
            with _Redirect():
                value = fn(*args, **kwargs)
        except BaseException as e:  # noqa: B902 - SystemExit/KeyboardInterrupt included
            end = time.time()
            key = "exception"
            out = serialize_exception(type(e).__name__, str(e), format_user_traceback(e), e)
        else:
            end = time.time()
            try:
                out = serialize_data(value)
            except Exception as e:
                raise WorkerError("SerializationError", "cannot pickle the result (%s): %s: %s"
                                  % (type(value).__name__, type(e).__name__, e))
            if len(out) > limit:
                raise WorkerError("MaxResultSizeExceeded",
                                  "Task result of %d bytes exceeds the result size limit of "
                                  "%d bytes" % (len(out), limit))
    except WorkerError as e:
        end = time.time()
        key = "exception"
        out = serialize_exception(e.type_name, e.message, "%s: %s\n" % (e.type_name, e.message))
    except BaseException as e:  # noqa: B902
        # a failure while loading the function (exec of its source, unpickling)
        end = time.time()
        key = "exception"
        out = serialize_exception(type(e).__name__, str(e), format_user_traceback(e), e)
    msg = {"task_id": task_id, "container_id": container_id, key: out,
           "times": {"execution_start": start, "execution_end": end,
                     "execution_time": end - start}}
    return pickle.dumps(msg, protocol=4)


# ---------------------------------------------------------------- frame I/O

def read_exact(f, n):
    data = f.read(n)
    if data is None:
        return b""
    return data


def serve(limit):
    # Private copies of the pipes; fd 1 -> stderr, fd 0 -> /dev/null for user code.
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    fin = io.open(in_fd, "rb", buffering=1 << 16)
    fout = io.open(out_fd, "wb", buffering=1 << 16)
    log("ready (python %s, dill %s, result limit %d)"
        % (sys.version.split()[0], "yes" if dill else "no", limit))
    while True:
        head = read_exact(fin, 4)
        if not head:
            log("stdin closed; exiting")
            return 0
        if len(head) < 4:
            log("truncated frame header; exiting")
            return 3
        (size,) = struct.unpack(">I", head)
        if size > MAX_TASK_FRAME:
            log("frame of %d bytes exceeds %d; cannot continue" % (size, MAX_TASK_FRAME))
            return 3
        payload = read_exact(fin, size)
        if len(payload) < size:
            log("truncated frame (%d of %d bytes); exiting" % (len(payload), size))
            return 3
        result = run_task(payload, limit)
        fout.write(struct.pack(">I", len(result)))
        fout.write(result)
        fout.flush()


def bench(path, n, limit):
    with open(path, "rb") as f:
        payload = f.read()
    first = pickle.loads(run_task(payload, limit))
    t0 = time.perf_counter()
    for _ in range(n):
        run_task(payload, limit)
    dt = time.perf_counter() - t0
    ok = "result" in first
    print(json.dumps({"tasks": n, "seconds": dt, "tasks_per_second": n / dt if dt > 0 else None,
                      "ok": ok}))
    return 0 if ok else 1


def self_test(limit):
    src = "def _self_test(a, b=1):\n    return a + b\n"
    fn = "03\n" + base64.encodebytes(pickle.dumps(("_self_test", src))).decode()
    args = serialize_data((41,))
    kwargs = serialize_data({"b": 1})
    packed = "".join(str(len(b)) + "\n" + b for b in (fn, args, kwargs))
    payload = bytes([TASK_TYPE]) + ("TID=self-test;CID=RAW;" + packed).encode()
    msg = pickle.loads(run_task(payload, limit))
    value = pickle.loads(base64.b64decode(msg["result"][3:])) if "result" in msg else None
    ok = value == 42
    print(json.dumps({"ok": ok, "python": sys.version.split()[0], "dill": dill is not None}))
    return 0 if ok else 1


def main(argv):
    limit = DEFAULT_RESULT_SIZE_LIMIT
    env = os.environ.get("FUNCX_RESULT_SIZE_LIMIT")
    mode = "serve"
    bench_args = None
    try:
        if env:
            limit = int(env)
        i = 0
        while i < len(argv):
            a = argv[i]
            if a == "--result-size-limit":
                limit = int(argv[i + 1])
                i += 2
            elif a == "--self-test":
                mode = "self-test"
                i += 1
            elif a == "--bench":
                mode = "bench"
                bench_args = (argv[i + 1], int(argv[i + 2]))
                i += 3
            elif a == "--worker-id":
                i += 2
            else:
                raise ValueError("unknown argument %r" % a)
        if limit <= 0:
            raise ValueError("result size limit must be > 0")
    except (ValueError, IndexError) as e:
        sys.stderr.write("funcx_worker: bad arguments: %s; usage: funcx_worker.py "
                         "[--result-size-limit BYTES] [--self-test | --bench FILE N]\n" % e)
        return 2
    if mode == "self-test":
        return self_test(limit)
    if mode == "bench":
        return bench(bench_args[0], bench_args[1], limit)
    try:
        return serve(limit)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
`;
