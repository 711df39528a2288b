import assert from "node:assert/strict";
import { curveKeyPairZ85 as curveKeyPair } from "../../src/io/zmtp/mod.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { formatCertificate, isZ85Key, parseCertificate } from "../../src/protocol/zpl.ts";
import { runPython } from "./_python.ts";

/** pyzmq `load_certificate` / `_write_key_file` behaviour, written from its documented format. */
const PYZMQ_PY = String.raw`
import datetime, json, sys

def load_certificate(data):
    public_key = None
    secret_key = None
    for line in data.splitlines():
        line = line.strip()
        if line.startswith(b"#"):
            continue
        if line.startswith(b"public-key"):
            public_key = line.split(b"=", 1)[1].strip(b' \t\'"')
        if line.startswith(b"secret-key"):
            secret_key = line.split(b"=", 1)[1].strip(b' \t\'"')
        if public_key and secret_key:
            break
    if public_key is None:
        raise ValueError("No public key found")
    return public_key, secret_key

def write_key_file(public_key, secret_key=None):
    out = "#   ****  Generated on {0} by pyzmq  ****\n".format(datetime.datetime.now())
    out += "#   ZeroMQ CURVE Public Certificate\n\n" if secret_key is None else "#   ZeroMQ CURVE **Secret** Certificate\n\n"
    out += "metadata\ncurve\n"
    out += '    public-key = "{0}"\n'.format(public_key)
    if secret_key:
        out += '    secret-key = "{0}"\n'.format(secret_key)
    return out
`;

Deno.test("zpl: certificates written here load with pyzmq's reader and vice versa", async () => {
  const { publicKey, secretKey } = curveKeyPair();
  assert.ok(isZ85Key(publicKey) && isZ85Key(secretKey));
  const pub = formatCertificate({ publicKey, date: new Date(2021, 0, 2, 3, 4, 5, 6) });
  const sec = formatCertificate({ publicKey, secretKey, metadata: { name: "endpoint" } });
  assert.match(pub, /^# {3}\*{4} {2}Generated on 2021-01-02 03:04:05\.006000 by pyzmq {2}\*{4}\n/);
  assert.match(
    sec,
    /\nmetadata\n {4}name = endpoint\ncurve\n {4}public-key = ".{40}"\n {4}secret-key = ".{40}"\n$/,
  );
  const out = JSON.parse(
    await runPython(
      PYZMQ_PY + String.raw`
pub, sec = json.load(sys.stdin)
p1, s1 = load_certificate(pub.encode())
p2, s2 = load_certificate(sec.encode())
print(json.dumps([p1.decode(), s1, p2.decode(), s2.decode(), write_key_file(p2.decode(), s2.decode())]))
`,
      JSON.stringify([pub, sec]),
    ),
  );
  assert.deepEqual(out.slice(0, 4), [publicKey, null, publicKey, secretKey]);
  assert.deepEqual(parseCertificate(out[4]), { publicKey, secretKey });
  assert.deepEqual(parseCertificate(pub), { publicKey, secretKey: null });
});

Deno.test("zpl: bad certificates name the file and the problem", () => {
  const k = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  assert.throws(
    () => parseCertificate("curve\n", "/x/server.key"),
    /\/x\/server\.key: no public key found/,
  );
  assert.throws(
    () => parseCertificate('public-key = "short"\n', "f"),
    /f: public-key is not a 40-character/,
  );
  assert.throws(
    () => parseCertificate(`public-key = "${k}"\nsecret-key = "x"\n`, "f"),
    /secret-key is not/,
  );
  assert.throws(() => parseCertificate(`# public-key = "${k}"\n`), ProtocolError);
  assert.throws(() => formatCertificate({ publicKey: "bad" }), /public key must be 40 Z85/);
  assert.throws(() => formatCertificate({ publicKey: k, secretKey: "bad" }), /secret key/);
  assert.throws(() => formatCertificate({ publicKey: k, metadata: { "a=b": "c" } }), /metadata/);
});
