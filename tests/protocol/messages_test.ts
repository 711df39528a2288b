import assert from "node:assert/strict";
import { ProtocolError } from "../../src/protocol/errors.ts";
import {
  decodeEPStatusReport,
  decodeRegistration,
  decodeResult,
  encodeEPStatusReport,
  encodeRegistration,
  encodeResult,
  MessageType,
  packBadCommand,
  packEPStatusReportMessage,
  packHeartbeat,
  packHeartbeatReq,
  packResultsAck,
  packTask,
  TaskStatusCode,
  taskStatusName,
  unpackMessage,
  uuidBytes,
  uuidString,
} from "../../src/protocol/messages.ts";
import { decodePickle } from "../../src/protocol/pickle/mod.ts";
import { remoteException } from "../../src/protocol/serialize.ts";
import { fromHex, runPython, toHex } from "./_python.ts";

/** Upstream messages.py (0.3.4) behaviour, written from the reference §6.4/§6.5. */
const MESSAGES_PY = String.raw`
import json, pickle, struct, sys, types, uuid
from enum import Enum, IntEnum, auto

class MessageType(Enum):
    HEARTBEAT_REQ = auto()
    HEARTBEAT = auto()
    EP_STATUS_REPORT = auto()
    MANAGER_STATUS_REPORT = auto()
    TASK = auto()
    RESULTS_ACK = auto()
    def pack(self):
        return struct.pack("b", self.value)

class TaskStatusCode(int, Enum):
    WAITING_FOR_NODES = auto()
    WAITING_FOR_LAUNCH = auto()
    RUNNING = auto()
    SUCCESS = auto()
    FAILED = auto()

class Message:
    def __init__(self):
        self._payload = None
        self._header = None

class EPStatusReport(Message):
    type = MessageType.EP_STATUS_REPORT
    def __init__(self, endpoint_id, ep_status_report, task_statuses):
        super().__init__()
        self._header = uuid.UUID(endpoint_id).bytes
        self.ep_status = ep_status_report
        self.task_statuses = task_statuses
    def pack(self):
        return self.type.pack() + self._header + json.dumps([self.ep_status, self.task_statuses]).encode("ascii")

def unpack_task(raw):
    assert raw[0] == 5
    b_tid, b_cid, task_buf = raw[1:].decode("utf-8").split(";", 2)
    return b_tid[4:], b_cid[4:], task_buf.encode("utf-8")

mod = "funcx_endpoint.executors.high_throughput.messages"
parts = mod.split(".")
for i in range(1, len(parts) + 1):
    sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
for c in (EPStatusReport, TaskStatusCode, MessageType, Message):
    c.__module__ = mod
    setattr(sys.modules[mod], c.__name__, c)
`;

const EP = "4b116d3c-1703-4f8f-9f6f-39921e5864df";

Deno.test("messages: packed messages match upstream Python byte for byte", async () => {
  const body = "12\n00\ngAQu\n" + "é;x";
  const ours = {
    task: toHex(packTask("7c3a0c5e-9e8e-4f38-8d8f-6a2f0c1b8f11", "RAW", body)),
    hb: toHex(packHeartbeat(EP)),
    hbEmpty: toHex(packHeartbeat()),
    hbReq: toHex(packHeartbeatReq()),
    ack: toHex(packResultsAck("t-1")),
    ep: toHex(packEPStatusReportMessage(EP, { task_id: -2, info: { a: 1, "é": "ü" } }, { t1: 3 })),
  };
  const out = JSON.parse(
    await runPython(
      MESSAGES_PY + String.raw`
o = json.load(sys.stdin)
b = lambda k: bytes.fromhex(o[k])
tid, cid, buf = unpack_task(b("task"))
print(json.dumps({
  "task": [tid, cid, buf.decode()],
  "hb": b("hb") == MessageType.HEARTBEAT.pack() + "${EP}".encode("ascii"),
  "hbEmpty": b("hbEmpty") == MessageType.HEARTBEAT.pack(),
  "hbReq": b("hbReq") == MessageType.HEARTBEAT_REQ.pack(),
  "ack": b("ack") == MessageType.RESULTS_ACK.pack() + b"t-1",
  "ep": b("ep") == EPStatusReport("${EP}", {"task_id": -2, "info": {"a": 1, "é": "ü"}}, {"t1": 3}).pack(),
}))
`,
      JSON.stringify(ours),
    ),
  );
  assert.deepEqual(out, {
    task: ["7c3a0c5e-9e8e-4f38-8d8f-6a2f0c1b8f11", "RAW", body],
    hb: true,
    hbEmpty: true,
    hbReq: true,
    ack: true,
    ep: true,
  });
});

Deno.test("messages: unpack what upstream Python packs", async () => {
  const got = JSON.parse(
    await runPython(
      MESSAGES_PY + String.raw`
task = MessageType.TASK.pack() + "TID=abc;CID=RAW;5\nhello".encode()
msr = struct.pack("b", 4) + (7).to_bytes(10, "little") + json.dumps({"t9": 3}).encode()
print(json.dumps({k: v.hex() for k, v in {
  "task": task,
  "hb": MessageType.HEARTBEAT.pack() + b"${EP}",
  "req": MessageType.HEARTBEAT_REQ.pack(),
  "ack": MessageType.RESULTS_ACK.pack() + b"tid-9",
  "ep": EPStatusReport("${EP}", {"task_id": -2, "info": {"x": [1]}}, {"t1": 4}).pack(),
  "msr": msr,
}.items()}))
`,
    ),
  ) as Record<string, string>;
  const task = unpackMessage(fromHex(got.task));
  assert.equal(task.type, MessageType.TASK);
  if (task.type === MessageType.TASK) {
    assert.equal(task.taskId, "abc");
    assert.equal(task.containerId, "RAW");
    assert.equal(new TextDecoder().decode(task.body), "5\nhello");
  }
  assert.deepEqual(unpackMessage(fromHex(got.hb)), { type: MessageType.HEARTBEAT, endpointId: EP });
  assert.deepEqual(unpackMessage(fromHex(got.req)), { type: MessageType.HEARTBEAT_REQ });
  assert.deepEqual(unpackMessage(fromHex(got.ack)), {
    type: MessageType.RESULTS_ACK,
    taskId: "tid-9",
  });
  assert.deepEqual(unpackMessage(fromHex(got.ep)), {
    type: MessageType.EP_STATUS_REPORT,
    endpointId: EP,
    epStatus: { task_id: -2, info: { x: [1] } },
    taskStatuses: { t1: 4 },
  });
  assert.deepEqual(unpackMessage(fromHex(got.msr)), {
    type: MessageType.MANAGER_STATUS_REPORT,
    containerSwitchCount: 7n,
    taskStatuses: { t9: 3 },
  });
  assert.deepEqual(unpackMessage(packBadCommand("nö")), {
    type: MessageType.BAD_COMMAND,
    reason: "n?",
  });
});

Deno.test("messages: EPStatusReport pickle is an isinstance() for the forwarder, and back", async () => {
  const info = {
    managers: 2,
    total_workers: 4,
    idle_workers: 1,
    outstanding_tasks: 3,
    scheduler_mode: "hard",
  };
  const pickled = encodeEPStatusReport(
    EP,
    info,
    new Map([["t1", TaskStatusCode.RUNNING], ["t2", 5]]),
  );
  const out = JSON.parse(
    await runPython(
      MESSAGES_PY + String.raw`
m = pickle.loads(bytes.fromhex(sys.stdin.read()))
assert isinstance(m, EPStatusReport), type(m)
print(json.dumps({"header": str(uuid.UUID(bytes=m._header)), "payload": m._payload,
                  "ep_status": m.ep_status, "task_statuses": m.task_statuses,
                  "repacked": m.pack().hex()}))
`,
      toHex(pickled),
    ),
  );
  assert.equal(out.header, EP);
  assert.equal(out.payload, null);
  assert.deepEqual(out.ep_status, { task_id: -2, info });
  assert.deepEqual(out.task_statuses, { t1: 3, t2: 5 });
  assert.deepEqual(decodeEPStatusReport(pickled), {
    endpointId: EP,
    info,
    taskStatuses: { t1: 3, t2: 5 },
  });
  const realHex = (await runPython(
    MESSAGES_PY + String.raw`
st = {"t3": TaskStatusCode.SUCCESS}
print(pickle.dumps(EPStatusReport("${EP}", {"task_id": -2, "info": {"managers": 1}}, st)).hex())
`,
  )).trim();
  assert.deepEqual(decodeEPStatusReport(fromHex(realHex)), {
    endpointId: EP,
    info: { managers: 1 },
    taskStatuses: { t3: 4 },
  });
});

Deno.test("messages: registration and result dicts round-trip with Python", async () => {
  const reg = encodeRegistration({
    registration: EP,
    funcx_endpoint_version: "0.3.4",
    os: "linux",
  });
  const exc = remoteException("ManagerLost", "lost", "");
  const res = encodeResult({
    task_id: "t1",
    container_id: "RAW",
    result: "00\ngAQu\n",
    times: { execution_start: 1, execution_end: 2.5, execution_time: 1.5 },
  });
  const failed = encodeResult({ task_id: "t2", exception: exc });
  const out = await runPython(
    "import pickle,sys\nfor l in sys.stdin.read().split():\n print(repr(pickle.loads(bytes.fromhex(l))))",
    [reg, res, failed].map(toHex).join("\n"),
  );
  assert.deepEqual(out.trim().split("\n"), [
    `{'registration': '${EP}', 'funcx_endpoint_version': '0.3.4', 'os': 'linux'}`,
    "{'task_id': 't1', 'container_id': 'RAW', 'result': '00\\ngAQu\\n', 'times': {'execution_start': 1.0, 'execution_end': 2.5, 'execution_time': 1.5}}",
    `{'task_id': 't2', 'exception': ${JSON.stringify(exc).replaceAll('"', "'")}}`,
  ]);
  assert.equal(decodeRegistration(reg).registration, EP);
  const py = (await runPython(
    "import pickle\nprint(pickle.dumps({'task_id': 'x', 'container_id': None, 'exception': '00\\nabc', 'times': {'execution_start': 3.0, 'execution_end': 4.0, 'execution_time': 1.0}}).hex())",
  )).trim();
  assert.deepEqual(decodeResult(fromHex(py)), {
    task_id: "x",
    exception: "00\nabc",
    times: { execution_start: 3, execution_end: 4, execution_time: 1 },
  });
  assert.deepEqual(decodeResult(failed), { task_id: "t2", exception: exc });
});

Deno.test("messages: malformed frames throw one-line ProtocolErrors", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const cat = (a: number, s: string) => new Uint8Array([a, ...enc(s)]);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(0), /empty buffer/],
    [new Uint8Array([0]), /unknown message type 0/],
    [new Uint8Array([99, 1]), /unknown message type 99/],
    [cat(5, "XID=a;CID=b;c"), /TID=/],
    [cat(5, "TID=abc"), /no ';' after the task id/],
    [cat(5, "TID=a;XID=b;c"), /no CID=/],
    [cat(5, "TID=a;CID=b"), /no ';' after the container id/],
    [new Uint8Array([5, ...enc("TID="), 0xff, ...enc(";CID=b;c")]), /not UTF-8/],
    [new Uint8Array([2, 0xc3, 0xa9]), /not ASCII/],
    [new Uint8Array([3, 1, 2]), /shorter than 16/],
    [new Uint8Array([3, ...new Uint8Array(16), ...enc("{")]), /not valid JSON/],
    [new Uint8Array([3, ...new Uint8Array(16), ...enc("[1]")]), /\[ep_status, task_statuses\]/],
    [new Uint8Array([3, ...new Uint8Array(16), ...enc('[1, {"a": "x"}]')]), /not an int/],
    [new Uint8Array([4, 1, 2]), /shorter than 10/],
    [cat(7, "3"), /not a string/],
  ];
  for (const [b, re] of cases) {
    assert.throws(() => unpackMessage(b), (e: unknown) => {
      assert.ok(e instanceof ProtocolError, String(e));
      assert.match(e.message, re);
      assert.equal(e.message.includes("\n"), false);
      return true;
    });
  }
  assert.throws(() => packTask("a;b", "RAW", ""), /must not contain ';'/);
  assert.throws(() => packResultsAck("é"), /ASCII/);
  assert.throws(() => uuidBytes("nope"), /not a UUID/);
  assert.equal(uuidString(uuidBytes(EP.toUpperCase())), EP);
  assert.throws(() => decodeRegistration(encodeRegistration({ other: 1 })), /registration/);
  assert.throws(() => decodeResult(encodeRegistration({ task_id: 1 })), /task_id/);
  assert.throws(
    () => decodeResult(encodeRegistration({ task_id: "x" })),
    /neither result nor exception/,
  );
  assert.throws(
    () => decodeResult(encodeRegistration({ task_id: "x", result: 3 })),
    /result is not a str/,
  );
  assert.throws(() => decodeEPStatusReport(encodeRegistration({})), /not an EPStatusReport/);
  assert.throws(() => encodeResult({ task_id: "x" }), /exactly one/);
  assert.equal(taskStatusName(TaskStatusCode.WAITING_FOR_LAUNCH), "waiting-for-launch");
  assert.throws(() => taskStatusName(9), /unknown code 9/);
  assert.ok(decodePickle(encodeRegistration({ registration: "x" })));
});
