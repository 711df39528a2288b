"""A libzmq peer (Debian python3-zmq) for the transport's interop tests; run with /usr/bin/python3.

    _libzmq_peer.py ROLE MECH [options]
    ROLE: router-bind | dealer-connect | dealer-bind | router-connect
    MECH: null | curve (the binding side is the CURVE server)

Prints "READY <endpoint>" (bind) or "READY" (connect, once every socket is created and
connecting) on stdout, then echoes every message back as received: the ROUTER
to its sender, each DEALER to its peer. `--count N` makes N DEALER sockets (identities
IDENTITY0 .. IDENTITY{N-1}). `--monitor` prints "EVENT <name> <value>" lines for the
connection events of socket 0 (handshakes, disconnects). "quit" on stdin (or stdin closing)
stops it.
"""
import argparse, os, sys, tempfile, threading, zmq
from zmq.utils.monitor import recv_monitor_message

p = argparse.ArgumentParser()
p.add_argument("role", choices=["router-bind", "dealer-connect", "dealer-bind", "router-connect"])
p.add_argument("mech", choices=["null", "curve"])
p.add_argument("--address", default="tcp://127.0.0.1:*")
p.add_argument("--server-public")
p.add_argument("--server-secret")
p.add_argument("--client-public")
p.add_argument("--client-secret")
p.add_argument("--identity", default="")
p.add_argument("--count", type=int, default=1)
p.add_argument("--allow", action="append", default=[], help="CURVE client keys to admit (ZAP)")
p.add_argument("--max-msgsize", type=int, default=-1)
p.add_argument("--hb-ivl", type=int, default=0, help="ZMQ_HEARTBEAT_IVL, ms")
p.add_argument("--hb-timeout", type=int, default=0, help="ZMQ_HEARTBEAT_TIMEOUT, ms")
p.add_argument("--hb-ttl", type=int, default=0, help="ZMQ_HEARTBEAT_TTL, ms")
p.add_argument("--monitor", action="store_true")
a = p.parse_args()

ctx = zmq.Context()
ctx.set(zmq.MAX_SOCKETS, max(1024, 2 * a.count + 64))
auth = None
binds = a.role.endswith("-bind")
if a.mech == "curve" and binds and a.allow:
    from zmq.auth.thread import ThreadAuthenticator
    auth = ThreadAuthenticator(ctx)
    auth.start()
    d = tempfile.mkdtemp()
    for i, k in enumerate(a.allow):
        with open(os.path.join(d, f"c{i}.key"), "w") as f:
            f.write('metadata\ncurve\n    public-key = "%s"\n' % k)
    auth.configure_curve(domain="*", location=d)


def make(kind, identity):
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.MAXMSGSIZE, a.max_msgsize)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    s.setsockopt(zmq.RECONNECT_IVL, 50)
    if kind == zmq.ROUTER:
        s.setsockopt(zmq.ROUTER_MANDATORY, 1)
    if identity:
        s.setsockopt(zmq.IDENTITY, identity.encode())
    if a.hb_ivl:
        s.setsockopt(zmq.HEARTBEAT_IVL, a.hb_ivl)
    if a.hb_timeout:
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, a.hb_timeout)
    if a.hb_ttl:
        s.setsockopt(zmq.HEARTBEAT_TTL, a.hb_ttl)
    if a.mech == "curve":
        if binds:
            s.curve_server = True
            s.curve_secretkey = a.server_secret.encode()
            s.curve_publickey = a.server_public.encode()
        else:
            s.curve_serverkey = a.server_public.encode()
            s.curve_secretkey = a.client_secret.encode()
            s.curve_publickey = a.client_public.encode()
    return s


kind = zmq.ROUTER if a.role.startswith("router") else zmq.DEALER
if binds:
    socks = [make(kind, a.identity)]
else:
    socks = [make(kind, a.identity + (str(i) if a.count > 1 else "")) for i in range(a.count)]

poller = zmq.Poller()
mon = None
if a.monitor:
    mon = socks[0].get_monitor_socket()
    poller.register(mon, zmq.POLLIN)

if binds:
    socks[0].bind(a.address)
    print("READY", socks[0].getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
else:
    for s in socks:
        s.connect(a.address)
    print("READY", flush=True)

stop = threading.Event()


def _stdin():
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    stop.set()


threading.Thread(target=_stdin, daemon=True).start()

names = {v: k for k, v in vars(zmq).items() if k.startswith("EVENT_") and isinstance(v, int)}
for s in socks:
    poller.register(s, zmq.POLLIN)
while not stop.is_set():
    for s, _ in poller.poll(100):
        if s is mon:
            ev = recv_monitor_message(mon)
            print("EVENT", names.get(ev["event"], ev["event"]), ev["value"], flush=True)
            continue
        while True:
            try:
                msg = s.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                s.send_multipart(msg)
            except zmq.ZMQError:
                pass  # the sender left (ROUTER_MANDATORY): nothing to echo to
if mon is not None:
    socks[0].disable_monitor()
    mon.close(0)
for s in socks:
    s.close(0)
if auth:
    auth.stop()
ctx.term()
