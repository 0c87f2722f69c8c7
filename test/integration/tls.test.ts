/**
 * The registry's API over TLS, and the three ways a node trusts it (system
 * or given CA with the host name, public-key pins, both), over real gRPC
 * connections on loopback with certificates made by the openssl tool.
 */
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { createGrpcSource, type RegistryView } from "../../src/node/source.js";
import { runRegistry, type RunningRegistry } from "../../src/registry/run.js";
import { channelCredentials, readCaFile, type ClientTls } from "../../src/tls/client.js";
import type { TlsFiles } from "../../src/tls/server.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { TestPki, type CertFiles } from "../support/tls.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "tls-test-token";
const ALICE = key(1);
const BOB = key(2);

function registryWg(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: key(9),
      listenPort: 51820,
      peers: [
        { publicKey: ALICE, endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"] },
        { publicKey: BOB, endpoint: { ip: "203.0.113.20", port: 50000 }, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
}

const pki = new TestPki();
const registries: RunningRegistry[] = [];
let ca: CertFiles;
let otherCa: CertFiles;
/** Signed by `ca`, naming 127.0.0.1. */
let good: CertFiles;
/** Signed by `ca`, naming only a host the tests never dial. */
let misnamed: CertFiles;
/** Self-signed, naming a host the tests never dial. */
let selfSigned: CertFiles;
/** Another self-signed key. */
let stranger: CertFiles;

before(() => {
  ca = pki.ca("test-ca");
  otherCa = pki.ca("other-ca");
  good = pki.server("registry", ["IP:127.0.0.1"], ca);
  misnamed = pki.server("misnamed", ["DNS:registry.example"], ca);
  selfSigned = pki.server("self", ["DNS:elsewhere.example"]);
  stranger = pki.server("stranger", ["IP:127.0.0.1"]);
});

after(async () => {
  for (const r of registries) await r.stop();
  pki.remove();
});

async function startRegistry(tls: TlsFiles | null, options: { tlsReloadMs?: number; logger?: ReturnType<typeof captureLogger> } = {}): Promise<RunningRegistry> {
  const reg = await runRegistry(
    { address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50, tls, ...(options.tlsReloadMs ? { tlsReloadMs: options.tlsReloadMs } : {}) },
    { wg: registryWg(), logger: (options.logger ?? captureLogger()).logger },
  );
  registries.push(reg);
  return reg;
}

const files = (c: CertFiles): TlsFiles => ({ certFile: c.cert, keyFile: c.key });

type Outcome = { view: RegistryView } | { error: string };

/** Subscribes like a node does; resolves with its first view, or with the error it logged on failing. */
async function connect(port: number, tls: ClientTls | null, token = TOKEN): Promise<Outcome> {
  const log = captureLogger();
  const source = createGrpcSource({ address: `127.0.0.1:${port}`, token, refreshMs: 1_000, logger: log.logger, credentials: channelCredentials(tls) });
  let view: RegistryView | null = null;
  source.start((v) => (view = v));
  try {
    // waitFor returns only a truthy value.
    return (await waitFor<Outcome | null>("a view or a refusal", () => {
      if (view) return { view };
      const failed = log.records.find((r) => r.msg === "registry unreachable or refusing; will keep retrying");
      return failed ? { error: String(failed.err) } : null;
    })) as Outcome;
  } finally {
    source.stop();
  }
}

function assertConnected(result: Outcome): void {
  assert.ok("view" in result, `expected a view, got ${"error" in result ? result.error : "?"}`);
  assert.deepEqual([...result.view.endpoints.keys()].sort(), [ALICE, BOB].sort());
}

function assertRefused(result: Outcome, pattern: RegExp): void {
  assert.ok("error" in result, "expected the node to refuse the registry, but it got a view");
  assert.match(result.error, pattern);
}

describe("TLS: a node that verifies the registry's certificate (--tls-ca)", () => {
  it("connects when the certificate chains to the CA and names the host dialled", async () => {
    const reg = await startRegistry(files(good));
    assertConnected(await connect(reg.port, { ca: readCaFile("--tls-ca", ca.cert), pins: [] }));
  });

  it("refuses a certificate from another CA", async () => {
    const reg = await startRegistry(files(good));
    assertRefused(await connect(reg.port, { ca: readCaFile("--tls-ca", otherCa.cert), pins: [] }), /UNAVAILABLE/);
  });

  it("refuses a certificate of the right CA that names another host", async () => {
    const reg = await startRegistry(files(misnamed));
    assertRefused(await connect(reg.port, { ca: readCaFile("--tls-ca", ca.cert), pins: [] }), /UNAVAILABLE/);
  });

  it("refuses a self-signed certificate with the system's CAs (--tls alone)", async () => {
    const reg = await startRegistry(files(stranger));
    assertRefused(await connect(reg.port, { ca: null, pins: [] }), /UNAVAILABLE/);
  });

  it("a self-signed certificate given as the CA file is trusted (pinning the certificate itself)", async () => {
    const reg = await startRegistry(files(stranger));
    assertConnected(await connect(reg.port, { ca: readCaFile("--tls-ca", stranger.cert), pins: [] }));
  });
});

describe("TLS: a node that pins the registry's key (--tls-pin)", () => {
  it("the registry logs the pin openssl computes for its certificate", async () => {
    const log = captureLogger();
    await startRegistry(files(selfSigned), { logger: log });
    const started = log.records.find((r) => r.msg === "serving TLS; nodes can pin this key with --tls-pin");
    assert.equal(started?.pin, pki.pin(selfSigned.cert));
    assert.doesNotMatch(log.text(), /PRIVATE KEY/);
  });

  it("alone, a pin accepts a self-signed certificate naming another host", async () => {
    const reg = await startRegistry(files(selfSigned));
    assertConnected(await connect(reg.port, { ca: null, pins: [pki.pin(selfSigned.cert)] }));
  });

  it("one of several pins is enough (key rollover)", async () => {
    const reg = await startRegistry(files(selfSigned));
    assertConnected(await connect(reg.port, { ca: null, pins: [pki.pin(stranger.cert), pki.pin(selfSigned.cert)] }));
  });

  it("refuses a key that is not pinned, and says why", async () => {
    const reg = await startRegistry(files(selfSigned));
    assertRefused(await connect(reg.port, { ca: null, pins: [pki.pin(stranger.cert)] }), /is not one of the pinned keys/);
  });

  it("with a CA too, both must hold: a chained certificate with an unpinned key is refused", async () => {
    const reg = await startRegistry(files(good));
    assertRefused(await connect(reg.port, { ca: readCaFile("--tls-ca", ca.cert), pins: [pki.pin(stranger.cert)] }), /is not one of the pinned keys/);
    assertConnected(await connect(reg.port, { ca: readCaFile("--tls-ca", ca.cert), pins: [pki.pin(good.cert)] }));
  });
});

describe("TLS and plaintext do not mix", () => {
  it("a plaintext node gets nothing from a TLS registry", async () => {
    const reg = await startRegistry(files(good));
    assertRefused(await connect(reg.port, null), /UNAVAILABLE|INTERNAL/);
  });

  it("a TLS node refuses a plaintext registry", async () => {
    const reg = await startRegistry(null);
    assertRefused(await connect(reg.port, { ca: null, pins: [pki.pin(good.cert)] }), /UNAVAILABLE/);
  });

  it("the token is still checked inside TLS", async () => {
    const reg = await startRegistry(files(good));
    assertRefused(await connect(reg.port, { ca: readCaFile("--tls-ca", ca.cert), pins: [] }, "wrong-token"), /PERMISSION_DENIED: wrong or missing token/);
  });
});

describe("TLS certificate files", () => {
  it("a renewed certificate is served without a restart; a broken renewal is refused and the last good one stays", async () => {
    const live: CertFiles = { cert: `${pki.dir}/live.crt`, key: `${pki.dir}/live.key` };
    copyFileSync(selfSigned.cert, live.cert);
    copyFileSync(selfSigned.key, live.key);
    const log = captureLogger();
    const reg = await startRegistry(files(live), { tlsReloadMs: 50, logger: log });
    assertConnected(await connect(reg.port, { ca: null, pins: [pki.pin(selfSigned.cert)] }));

    copyFileSync(stranger.cert, live.cert);
    copyFileSync(stranger.key, live.key);
    await waitFor("the reload", () => log.records.some((r) => r.msg === "TLS certificate reloaded" && r.pin === pki.pin(stranger.cert)));
    assertConnected(await connect(reg.port, { ca: null, pins: [pki.pin(stranger.cert)] }));
    assertRefused(await connect(reg.port, { ca: null, pins: [pki.pin(selfSigned.cert)] }), /is not one of the pinned keys/);

    // Half a renewal: the new certificate is there, its key is not yet.
    copyFileSync(good.cert, live.cert);
    await waitFor("the refusal", () => log.records.some((r) => r.msg === "cannot reload the TLS certificate; still serving the previous one"));
    const refusal = log.records.find((r) => r.msg === "cannot reload the TLS certificate; still serving the previous one");
    assert.match(String(refusal?.err), /is not the key of the certificate/);
    assertConnected(await connect(reg.port, { ca: null, pins: [pki.pin(stranger.cert)] }));
    assert.doesNotMatch(log.text(), /PRIVATE KEY/);
  });

  it("/metrics gives the served certificate's expiry", async () => {
    const reg = await runRegistry(
      { address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50, tls: files(good), http: { host: "127.0.0.1", port: 0 } },
      { wg: registryWg(), logger: captureLogger().logger },
    );
    registries.push(reg);
    const body = await (await fetch(`http://127.0.0.1:${reg.httpPort}/metrics`)).text();
    const value = Number(/^wormhole_registry_tls_cert_not_after_seconds (\S+)$/m.exec(body)?.[1]);
    assert.equal(value, pki.notAfter(good.cert).getTime() / 1000);
  });

  it("start-up fails on a key that is not the certificate's, naming both files", async () => {
    await assert.rejects(startRegistry({ certFile: good.cert, keyFile: stranger.key }), (err: Error) => {
      assert.equal(err.message, `the TLS key \`${stranger.key}' is not the key of the certificate \`${good.cert}'`);
      return true;
    });
  });

  it("start-up fails on a missing file or one that is not PEM, naming it", async () => {
    await assert.rejects(startRegistry({ certFile: `${pki.dir}/nope.crt`, keyFile: good.key }), /cannot read the TLS certificate `.*nope\.crt': no such file/);
    await assert.rejects(startRegistry({ certFile: good.key, keyFile: good.key }), /the TLS certificate `.*' is not a PEM certificate/);
    await assert.rejects(startRegistry({ certFile: good.cert, keyFile: good.cert }), /the TLS key `.*' is not a PEM private key/);
  });
});
