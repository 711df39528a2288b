"""A libzmq peer (Debian python3-zmq) for the transport's interop tests; run with /usr/bin/python3.

    _libzmq_peer.py ROLE MECH [options]      ROLE: router-bind | dealer-connect
    MECH: null | curve

Prints "READY <endpoint>" (bind) or "READY" (connect) on stdout, then echoes: a ROUTER
sends every message back to its sender, prefixed by nothing; a DEALER sends `--count`
messages of `--size` bytes (or `--frames` parts) and prints what comes back. Commands
arrive on stdin, one per line: "quit".
"""
import argparse, os, sys, threading, zmq

p = argparse.ArgumentParser()
p.add_argument("role")
p.add_argument("mech")
p.add_argument("--address", default="tcp://127.0.0.1:*")
p.add_argument("--server-public")
p.add_argument("--server-secret")
p.add_argument("--client-public")
p.add_argument("--client-secret")
p.add_argument("--identity", default="")
p.add_argument("--allow", action="append", default=[], help="CURVE client keys to admit (ZAP)")
p.add_argument("--max-msgsize", type=int, default=-1)
a = p.parse_args()

ctx = zmq.Context()
auth = None
if a.role == "router-bind":
    s = ctx.socket(zmq.ROUTER)
    s.setsockopt(zmq.ROUTER_MANDATORY, 1)
else:
    s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.MAXMSGSIZE, a.max_msgsize)
s.setsockopt(zmq.SNDHWM, 0)
s.setsockopt(zmq.RCVHWM, 0)
if a.identity:
    s.setsockopt(zmq.IDENTITY, a.identity.encode())
if a.mech == "curve":
    if a.role == "router-bind":
        if a.allow:
            from zmq.auth.thread import ThreadAuthenticator
            auth = ThreadAuthenticator(ctx)
            auth.start()
            auth.configure_curve(domain="*", location=None)
            # a callback-less allow list: write the keys as certificates into a temp dir
            import tempfile
            d = tempfile.mkdtemp()
            for i, k in enumerate(a.allow):
                with open(os.path.join(d, f"c{i}.key"), "w") as f:
                    f.write('metadata\ncurve\n    public-key = "%s"\n' % k)
            auth.configure_curve(domain="*", location=d)
        s.curve_server = True
        s.curve_secretkey = a.server_secret.encode()
        s.curve_publickey = a.server_public.encode()
    else:
        s.curve_serverkey = a.server_public.encode()
        s.curve_secretkey = a.client_secret.encode()
        s.curve_publickey = a.client_public.encode()

if a.role == "router-bind":
    s.bind(a.address)
    print("READY", s.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
else:
    s.connect(a.address)
    print("READY", flush=True)

stop = threading.Event()
def _stdin():
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    stop.set()
threading.Thread(target=_stdin, daemon=True).start()

poller = zmq.Poller()
poller.register(s, zmq.POLLIN)
while not stop.is_set():
    if not dict(poller.poll(100)):
        continue
    msg = s.recv_multipart()
    if a.role == "router-bind":
        # echo to the sender: [id, parts...] back as is
        s.send_multipart(msg)
    else:
        # a DEALER echoes too (the TypeScript ROUTER drives)
        s.send_multipart(msg)
s.close(0)
if auth:
    auth.stop()
ctx.term()
