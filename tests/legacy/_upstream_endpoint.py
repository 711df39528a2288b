"""The wire of an unmodified funcx-endpoint 0.3.x (EndpointInterchange), written for the tests
from the protocol notes (not upstream code): three libzmq DEALERs with a fresh CURVE key pair,
the endpoint uuid as IDENTITY, pickled registration messages without any endpoint_secret, then
Task messages in, pickled result dicts out. Run with /usr/bin/python3 (Debian python3-zmq).

    _upstream_endpoint.py UUID HOST TASKS_PORT RESULTS_PORT COMMANDS_PORT SERVER_PUBLIC_Z85

Prints "KEY <z85>", "READY", "TASK <id>" for every task (answered with the result
"ran:<body length>", serialized as funcX's "00" pickle) and "ACK <id>" for every
ResultsAck. Stops on "quit" on stdin.
"""
import codecs, pickle, sys, threading, zmq

uuid, host, tp, rp, cp, server_public = sys.argv[1:7]
public, secret = zmq.curve_keypair()
print("KEY", public.decode(), flush=True)
ctx = zmq.Context()
socks = {}
for name, port in (("tasks", tp), ("results", rp), ("commands", cp)):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.IDENTITY, uuid.encode())
    s.setsockopt(zmq.LINGER, 0)
    s.curve_serverkey = server_public.encode()
    s.curve_publickey = public
    s.curve_secretkey = secret
    s.connect("tcp://%s:%s" % (host, port))
    socks[name] = s
platform = {"parsl_v": "1.1.0", "python_v": "3.9", "libzmq_v": zmq.zmq_version(),
            "pyzmq_v": zmq.__version__, "os": "Linux", "hname": "upstream",
            "funcx_sdk_version": "0.3.7", "funcx_endpoint_version": "0.3.7",
            "registration": uuid, "dir": "/tmp"}
socks["tasks"].send(pickle.dumps(platform))
socks["results"].send(pickle.dumps({"registration": uuid}))
socks["commands"].send(pickle.dumps({"registration": uuid}))
print("READY", flush=True)

stop = threading.Event()
def _stdin():
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    stop.set()
threading.Thread(target=_stdin, daemon=True).start()

poller = zmq.Poller()
poller.register(socks["tasks"], zmq.POLLIN)
while not stop.is_set():
    if not dict(poller.poll(100)):
        continue
    msg = socks["tasks"].recv()
    kind = msg[0]
    if kind == 5:  # TASK: TID=<id>;CID=<cid>;<buffer>
        tid, cid, body = msg[1:].decode().split(";", 2)
        tid, cid = tid[4:], cid[4:]
        print("TASK", tid, flush=True)
        socks["results"].send(pickle.dumps({
            "task_id": tid, "container_id": cid,
            # funcX serializer "00": base64 of a pickle
            "result": "00\n" + codecs.encode(pickle.dumps("ran:%d" % len(body)), "base64").decode(),
        }))
    elif kind == 6:  # RESULTS_ACK
        print("ACK", msg[1:].decode(), flush=True)
for s in socks.values():
    s.close(0)
ctx.term()
