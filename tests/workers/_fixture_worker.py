# Test-only worker speaking the manager's framed stdin/stdout protocol with a tiny
# command language instead of serialized functions (the real worker is
# src/workers/python_worker.ts). Task body: b"\x05TID=<id>;CID=<cid>;<command>" where
# command is "value:<text>", "sleep:<seconds>", "pidfile:<path>:<seconds>" or "exit:<code>".
import os
import pickle
import struct
import sys
import time

inp = sys.stdin.buffer
out = sys.stdout.buffer


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = inp.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


while True:
    head = read_exact(4)
    if head is None:
        break
    (size,) = struct.unpack(">I", head)
    body = read_exact(size)
    if body is None:
        break
    tid_part, cid_part, cmd = body[1:].decode().split(";", 2)
    tid, cid = tid_part[4:], cid_part[4:]
    kind, _, arg = cmd.partition(":")
    res = {"task_id": tid, "container_id": cid}
    if kind == "value":
        res["result"] = arg + "|pid=" + str(os.getpid())
    elif kind == "sleep":
        time.sleep(float(arg))
        res["result"] = "slept"
    elif kind == "pidfile":
        path, _, secs = arg.rpartition(":")
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(path + ".tmp", path)
        time.sleep(float(secs))
        res["result"] = "survived"
    elif kind == "exit":
        sys.exit(int(arg))
    else:
        res["exception"] = "unknown command " + kind
    data = pickle.dumps(res)
    out.write(struct.pack(">I", len(data)) + data)
    out.flush()
