/**
 * TLS with a CA and certificates made by `openssl` in the test: the service serves HTTPS,
 * clients trusting the site CA (SDK `caFile`, `ca_file`/env for the endpoint side) succeed,
 * and each certificate problem (unknown CA, wrong host, expired) is a one-line error. Also:
 * SIGHUP-style reload, bad pairs refused, plain HTTP off loopback refused unless forced.
 */
import {
  deepStrictEqual as assertEquals,
  match,
  ok as assert,
  rejects,
  throws,
} from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../../src/daemon/log.ts";
import { caSource, clientForCaFile, trustedFetch } from "../../src/config/trust.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { LocalService } from "../../src/service/service.ts";
import { checkExposure, loadTlsPair } from "../../src/service/tls.ts";
import { checkStartOptions } from "../../src/cli/service.ts";
import { tlsReadPaths } from "../../src/config/sandbox.ts";
import { addUser, loginViaForm, startService, writeTokens } from "../helpers/service.ts";
import { runCli, spawnMain } from "../helpers/cli.ts";
import { fastEndpointConfig } from "../e2e/_world.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A CA, and server certificates: good (localhost + 127.0.0.1), ip-only, wrong host, expired. */
async function makePki(dir: string) {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "3",
    "-subj",
    "/CN=Test Site CA",
  ]);
  await openssl(dir, [
    "req",
    ...ec,
    "-keyout",
    "other-ca.key",
    "-x509",
    "-out",
    "other-ca.pem",
    "-days",
    "3",
    "-subj",
    "/CN=Other CA",
  ]);
  await openssl(dir, ["req", ...ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=funcx"]);
  const ext = (name: string, san: string) => {
    Deno.writeTextFileSync(
      join(dir, name),
      `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
    );
    return name;
  };
  const sign = (out: string, extFile: string) =>
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      "srv.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      out,
      "-days",
      "2",
      "-extfile",
      extFile,
    ]);
  await sign("good.pem", ext("good.ext", "DNS:localhost,IP:127.0.0.1"));
  await sign("ip.pem", ext("ip.ext", "IP:127.0.0.1"));
  await sign("wrong.pem", ext("wrong.ext", "DNS:other.example"));
  // expired: issued by the CA for 2020-01-01..02 (`openssl ca` sets explicit dates)
  Deno.mkdirSync(join(dir, "db"));
  Deno.writeTextFileSync(join(dir, "db", "index.txt"), "");
  Deno.writeTextFileSync(join(dir, "db", "serial"), "1000\n");
  Deno.writeTextFileSync(
    join(dir, "ca.cnf"),
    "[ca]\ndefault_ca=d\n[d]\ndatabase=db/index.txt\nnew_certs_dir=db\nserial=db/serial\n" +
      "default_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n",
  );
  await openssl(dir, [
    "ca",
    "-batch",
    "-config",
    "ca.cnf",
    "-cert",
    "ca.pem",
    "-keyfile",
    "ca.key",
    "-in",
    "srv.csr",
    "-out",
    "expired.pem",
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20200102000000Z",
    "-extfile",
    "good.ext",
    "-notext",
  ]);
  return {
    ca: join(dir, "ca.pem"),
    otherCa: join(dir, "other-ca.pem"),
    key: join(dir, "srv.key"),
    good: join(dir, "good.pem"),
    ip: join(dir, "ip.pem"),
    wrong: join(dir, "wrong.pem"),
    expired: join(dir, "expired.pem"),
  };
}

Deno.test(
  "TLS: service over HTTPS, site CA trusted, each certificate error is one line",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "fx-tls-" });
    const home = join(dir, "home");
    const log = createLogger({ file: join(dir, "svc.log"), level: "debug" });
    let svc: LocalService | undefined;
    const servers: Deno.HttpServer[] = [];
    try {
      const pki = await makePki(dir);
      svc = await LocalService.start({
        home,
        port: 0,
        log,
        tls: { certFile: pki.good, keyFile: pki.key },
      });
      assert(svc.info.tls);
      const port = svc.info.port;
      // the SDK with the site CA
      const fx = new FuncXClient({
        serviceAddress: `https://localhost:${port}/v2`,
        token: "x",
        caFile: pki.ca,
      });
      assertEquals((await fx.version()).api, "0.3.4");
      fx.close();
      // unknown CA: system roots only, and a bundle of another CA
      await rejects(
        trustedFetch(`https://localhost:${port}/v2/version`),
        (e: Error) => {
          match(
            e.message,
            /^TLS: the certificate of localhost:\d+ is signed by an unknown CA; set ca_file/,
          );
          assert(!e.message.includes("\n"));
          return true;
        },
      );
      const other = clientForCaFile(pki.otherCa);
      await rejects(
        trustedFetch(`https://localhost:${port}/v2/version`, { client: other }),
        /unknown CA/,
      );
      other.close();
      // wrong host
      const site = clientForCaFile(pki.ca);
      const wrong = Deno.serve(
        {
          hostname: "127.0.0.1",
          port: 0,
          cert: Deno.readTextFileSync(pki.wrong),
          key: Deno.readTextFileSync(pki.key),
          onListen() {},
        },
        () => new Response("x"),
      );
      servers.push(wrong);
      await rejects(
        trustedFetch(`https://localhost:${wrong.addr.port}/`, { client: site }),
        /^Error: TLS: the certificate does not name host localhost:\d+ \(it is for other\.example\)/,
      );
      // expired (the service itself refuses to start with it, so a bare server serves it)
      const expired = Deno.serve(
        {
          hostname: "127.0.0.1",
          port: 0,
          cert: Deno.readTextFileSync(pki.expired),
          key: Deno.readTextFileSync(pki.key),
          onListen() {},
        },
        () => new Response("x"),
      );
      servers.push(expired);
      await rejects(
        trustedFetch(`https://localhost:${expired.addr.port}/`, { client: site }),
        /^Error: TLS: the certificate of localhost:\d+ expired on 2020-01-02T00:00:00.000Z/,
      );
      // reload: the new certificate names only 127.0.0.1
      await svc.stop();
      svc = undefined;
      Deno.copyFileSync(pki.good, join(dir, "live.pem"));
      svc = await LocalService.start({
        home,
        port: 0,
        log,
        tls: { certFile: join(dir, "live.pem"), keyFile: pki.key },
      });
      const p2 = svc.info.port;
      const ok1 = await trustedFetch(`https://localhost:${p2}/v2/version`, { client: site });
      assertEquals(ok1.status, 200);
      await ok1.body?.cancel();
      Deno.copyFileSync(pki.ip, join(dir, "live.pem"));
      await svc.reloadTls();
      const fresh = clientForCaFile(pki.ca); // new connections get the new certificate
      await rejects(
        trustedFetch(`https://localhost:${p2}/v2/version`, { client: fresh }),
        /does not name host/,
      );
      const ok2 = await trustedFetch(`https://127.0.0.1:${p2}/v2/version`, { client: fresh });
      assertEquals(ok2.status, 200);
      await ok2.body?.cancel();
      fresh.close();
      // a broken pair on reload is refused and the old one stays
      Deno.copyFileSync(pki.otherCa, join(dir, "live.pem"));
      await rejects(svc.reloadTls(), /does not match the certificate/);
      const again = clientForCaFile(pki.ca);
      const ok3 = await trustedFetch(`https://127.0.0.1:${p2}/v2/version`, { client: again });
      assertEquals(ok3.status, 200);
      await ok3.body?.cancel();
      again.close();
      site.close();
      // the pair checks: expired, mismatched, not PEM
      await rejects(loadTlsPair({ certFile: pki.expired, keyFile: pki.key }), /expired on/);
      await rejects(loadTlsPair({ certFile: pki.ca, keyFile: pki.key }), /does not match/);
      await rejects(
        loadTlsPair({ certFile: pki.key, keyFile: pki.key }),
        /is not a PEM certificate/,
      );
    } finally {
      for (const s of servers) await s.shutdown();
      await svc?.stop();
      log.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test("TLS: plain HTTP on a non-loopback address is refused unless forced", () => {
  checkExposure("127.0.0.1", false, false);
  checkExposure("::1", false, false);
  checkExposure("0.0.0.0", true, false);
  checkExposure("0.0.0.0", false, true);
  throws(
    () => checkExposure("0.0.0.0", false, false),
    /refusing to serve plain HTTP on 0\.0\.0\.0/,
  );
  const base = { port: "0", heartbeatPeriod: "30", tokenLifetime: "60", logLevel: "info" };
  throws(() => checkStartOptions({ ...base, host: "10.0.0.5" }), /--insecure-plain-http/);
  throws(() => checkStartOptions({ ...base, host: "0.0.0.0", tlsCert: "c.pem" }), /go together/);
  assert(checkStartOptions({ ...base, host: "0.0.0.0", insecurePlainHttp: true }).allowPlainHttp);
});

Deno.test("TLS: where the CA bundle comes from, and what the sandbox may read", () => {
  assertEquals(caSource({ caFile: "site.pem", home: "/h", env: { SSL_CERT_FILE: "/x" } }), {
    path: "/h/site.pem",
    from: "ca_file in config.yaml",
  });
  assertEquals(
    caSource({ env: { REQUESTS_CA_BUNDLE: "/etc/ca.pem" } })?.from,
    "REQUESTS_CA_BUNDLE",
  );
  assertEquals(caSource({ env: {} }), undefined);
  const home = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(join(home, "config.yaml"), "ca_file: /etc/pki/site.pem  # site CA\n");
    assertEquals(
      tlsReadPaths(
        ["service", "start", "--tls-cert", "c.pem", "--tls-key=/k.pem"],
        { SSL_CERT_FILE: "/s.pem" },
        home,
        "/cwd",
      ),
      ["/cwd/c.pem", "/k.pem", "/s.pem", "/etc/pki/site.pem"],
    );
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test(
  "TLS end to end: `service start --tls-cert`, the CLI trusts ca_file / SSL_CERT_FILE, SIGHUP reloads",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "fx-tls-e2e-" });
    const home = join(dir, "home");
    const user = join(dir, "user");
    Deno.mkdirSync(home);
    Deno.mkdirSync(user);
    const pki = await makePki(dir);
    const live = join(dir, "live.pem");
    Deno.copyFileSync(pki.good, live);
    const svc = await startService({ home, args: ["--tls-cert", live, "--tls-key", pki.key] });
    const site = clientForCaFile(pki.ca);
    try {
      assert(svc.url.startsWith("https://127.0.0.1:"));
      await addUser(home, "alice", "alice-pw");
      const tokens = await loginViaForm(svc.authUrl, "alice", "alice-pw", { client: site });
      await writeTokens(user, tokens);
      const base = `https://localhost:${svc.info.port}`;
      const cfg = `service_address: ${base}/v2\nauth_address: ${base}/auth\n`;
      Deno.writeTextFileSync(join(user, "config.yaml"), cfg);
      const noCa = await runCli(user, ["whoami"]);
      assertEquals(noCa.code, 1);
      match(noCa.stderr, /TLS: the certificate of localhost:\d+ is signed by an unknown CA/);
      assertEquals(noCa.stderr.trim().split("\n").length, 1, noCa.stderr);
      const env = await runCli(user, ["whoami"], { env: { SSL_CERT_FILE: pki.ca } });
      assertEquals(env.code, 0, env.stderr);
      match(env.stdout, /alice/);
      Deno.writeTextFileSync(join(user, "config.yaml"), cfg + `ca_file: ${pki.ca}\n`);
      const cfgCa = await runCli(user, ["whoami"]);
      assertEquals(cfgCa.code, 0, cfgCa.stderr);
      match(cfgCa.stdout, /alice/);
      // SIGHUP: the service re-reads the certificate (now for 127.0.0.1 only)
      Deno.copyFileSync(pki.ip, live);
      Deno.kill(svc.pid, "SIGHUP");
      const deadline = performance.now() + 20_000;
      let err = "";
      while (performance.now() < deadline) {
        const c = clientForCaFile(pki.ca);
        try {
          const r = await trustedFetch(`${base}/v2/version`, { client: c });
          await r.body?.cancel();
        } catch (e) {
          err = (e as Error).message;
          if (err.startsWith("TLS:")) break; // else: refused during the swap of listeners
        } finally {
          c.close();
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      match(err, /does not name host localhost/);
      const c = clientForCaFile(pki.ca);
      const r = await trustedFetch(`https://127.0.0.1:${svc.info.port}/v2/version`, { client: c });
      assertEquals(r.status, 200);
      await r.body?.cancel();
      c.close();
      // wrong passwords lock (alice, this address) for a while: `service status` shows it
      for (let i = 0; i < 3; i++) {
        await rejects(
          loginViaForm(`https://127.0.0.1:${svc.info.port}/auth`, "alice", "nope", {
            client: site,
          }),
          /HTTP 401/,
        );
      }
      // the first wait is 1 s: on a loaded machine `service status` may start after it ended,
      // so keep failing (each failure after a wait doubles the next) until status shows it
      let status = (await runCli(home, ["service", "status"])).stdout;
      const until = performance.now() + 30_000;
      while (!status.includes("pair:alice@127.0.0.1") && performance.now() < until) {
        await loginViaForm(`https://127.0.0.1:${svc.info.port}/auth`, "alice", "nope", {
          client: site,
        }).catch(() => {}); // 401, or 429 while the wait lasts
        status = (await runCli(home, ["service", "status"])).stdout;
      }
      match(
        status,
        /sign-in locks \(1, each expires by itself\):\n\s+pair:alice@127\.0\.0\.1 {2}\d+ failures, until 20/,
      );
      const audit = await runCli(home, ["service", "audit"]);
      match(audit.stdout, /service\.tls\.reloaded/);
      match(audit.stdout, /signin\.success user=alice addr=127\.0\.0\.1/);
    } finally {
      site.close();
      await svc.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "TLS end to end: an endpoint registers over https with ca_file and runs a task",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "fx-tls-ep-" });
    const home = join(dir, "home");
    const user = join(dir, "user");
    Deno.mkdirSync(home);
    Deno.mkdirSync(user);
    const pki = await makePki(dir);
    const svc = await startService({
      home,
      heartbeatPeriod: 1,
      args: ["--tls-cert", pki.good, "--tls-key", pki.key],
    });
    const site = clientForCaFile(pki.ca);
    let ep: ReturnType<typeof spawnMain> | undefined;
    try {
      await addUser(home, "alice", "alice-pw");
      const tokens = await loginViaForm(svc.authUrl, "alice", "alice-pw", { client: site });
      await writeTokens(user, tokens);
      const base = `https://localhost:${svc.info.port}`;
      Deno.writeTextFileSync(
        join(user, "config.yaml"),
        `service_address: ${base}/v2\nauth_address: ${base}/auth\nca_file: ${pki.ca}\n`,
      );
      Deno.mkdirSync(join(user, "tls"), { mode: 0o700 });
      Deno.writeTextFileSync(join(user, "tls", "config.yaml"), fastEndpointConfig());
      ep = spawnMain(user, ["start", "tls", "--foreground"], 1_000_000);
      const deadline = Date.now() + 120_000;
      let endpointId: string | undefined;
      while (!endpointId) {
        try {
          const st = JSON.parse(Deno.readTextFileSync(join(user, "tls", "status.json")));
          if (st.state === "connected" && st.managers?.length > 0) endpointId = st.endpoint_id;
        } catch { /* not yet */ }
        if (Date.now() > deadline) throw new Error(`endpoint not connected: ${ep.stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const fx = new FuncXClient({
        serviceAddress: `${base}/v2`,
        token: tokens.access_token,
        caFile: pki.ca,
      });
      try {
        const fn = await fx.registerFunction("def double(x):\n    return 2 * x\n", "double");
        const id = await fx.run({ functionId: fn, endpointId: endpointId!, args: [21] });
        const results = await fx.waitForResults([id], { timeoutMs: 60_000 });
        assertEquals(results.get(id)?.value, 42);
      } finally {
        fx.close();
      }
      const audit = await runCli(home, ["service", "audit", "--json"]);
      const reg = audit.stdout.trim().split("\n").map((l) => JSON.parse(l))
        .find((e) => e.event === "endpoint.registered");
      assertEquals([reg?.user, reg?.endpoint, reg?.name], ["alice", endpointId, "tls"]);
    } finally {
      if (ep) {
        ep.child.kill("SIGTERM");
        await ep.child.status;
        await ep.drained;
      }
      site.close();
      await svc.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
