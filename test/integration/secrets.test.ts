/**
 * The interface's private key never leaves the parser. A registry and a node
 * run in process on the userspace-socket backend, each against a fake daemon
 * (test/unit/wg-fake-daemon.ts) that answers `get=1` with a `private_key=`
 * line, the node reaching the registry through a TCP proxy that keeps every
 * byte. Every log line (at trace level), every byte between node and
 * registry, every gRPC reply (GetEndpoint, GetPeers, the Watch snapshot),
 * the status page and /metrics are searched for either private key: hex
 * (either case), base64, raw bytes, and 16-character pieces of each text form.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, createServer, type Socket } from "node:net";
import type { NetworkInterfaceInfo } from "node:os";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { runNode } from "../../src/node/run.js";
import { runRegistry } from "../../src/registry/run.js";
import { systemClock } from "../../src/util/clock.js";
import { createLogger, type Logger } from "../../src/util/log.js";
import { createWireGuard } from "../../src/wg/index.js";
import { keyToHex, publicKeyFromPrivate } from "../../src/wg/keys.js";
import { uapiSocketPath } from "../../src/wg/uapi.js";
import { startFakeDaemon, tempDir, type FakeDaemonState } from "../unit/wg-fake-daemon.js";
import { waitFor } from "../support/wait.js";

const REGISTRY_PRIV = randomBytes(32).toString("hex");
const NODE_PRIV = randomBytes(32).toString("hex");
const REGISTRY_PUB = publicKeyFromPrivate(Buffer.from(REGISTRY_PRIV, "hex"));
const NODE_PUB = publicKeyFromPrivate(Buffer.from(NODE_PRIV, "hex"));
const BOB = Buffer.alloc(32, 2).toString("base64");
const TOKEN = "secrets-test-token";

/** Text forms of a secret that must appear nowhere: hex (both cases), base64, and their 16-character pieces. */
function textForms(hex: string): string[] {
  const b64 = Buffer.from(hex, "hex").toString("base64");
  const forms = [hex, hex.toUpperCase(), b64, b64.replace(/=+$/, ""), Buffer.from(hex, "hex").toString("base64url")];
  for (const f of [hex, hex.toUpperCase(), b64]) for (let i = 0; i + 16 <= f.length; i += 4) forms.push(f.slice(i, i + 16));
  return forms;
}

/** Asserts that neither private key is in `data`, in any text form or as raw bytes (whole or either half). */
function assertNoSecret(what: string, data: Buffer | string): void {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const text = buf.toString("latin1");
  for (const hex of [REGISTRY_PRIV, NODE_PRIV]) {
    for (const form of textForms(hex)) assert.ok(!text.includes(form), `${what} holds a piece of a private key: ${form}`);
    const raw = Buffer.from(hex, "hex");
    for (const piece of [raw, raw.subarray(0, 16), raw.subarray(16)]) assert.equal(buf.indexOf(piece), -1, `${what} holds private key bytes`);
  }
}

function traceLogger(): { logger: Logger; text: () => string; lines: () => number } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: "trace", format: "json", destination }), text: () => chunks.join(""), lines: () => chunks.length };
}

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A TCP proxy on 127.0.0.1 that keeps every byte in both directions. */
async function proxy(targetPort: number): Promise<{ port: number; bytes: () => Buffer }> {
  const seen: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (d: Buffer) => {
      seen.push(Buffer.from(d));
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      seen.push(Buffer.from(d));
      client.write(d);
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port, bytes: () => Buffer.concat(seen) };
}

const identity = (b: Buffer) => b;

function rawUnary(port: number, path: string, request: Buffer, md: grpc.Metadata): Promise<Buffer | grpc.ServiceError> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  return new Promise((resolve) => client.makeUnaryRequest(path, identity, identity, request, md, (err, reply) => resolve(err ?? (reply as Buffer))));
}

function rawFirstWatchMessage(port: number, md: grpc.Metadata): Promise<Buffer> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  const call = client.makeServerStreamRequest("/wormhole.v1.Registry/Watch", identity, identity, Buffer.alloc(0), md);
  return new Promise((resolve, reject) => {
    call.on("data", (b: Buffer) => {
      resolve(b);
      call.cancel();
    });
    call.on("error", (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
  });
}

const lan = (): NodeJS.Dict<NetworkInterfaceInfo[]> => ({
  eth0: [{ address: "192.168.1.10", netmask: "255.255.255.0", family: "IPv4", mac: "02:00:00:00:00:01", internal: false, cidr: "192.168.1.10/24" }],
});

describe("the private key never leaves the parser", () => {
  it("appears in no log line, no byte between node and registry, no gRPC reply, page or metric", async () => {
    const regDir = await tempDir("whs-reg-");
    const nodeDir = await tempDir("whs-node-");
    cleanups.push(() => regDir.remove(), () => nodeDir.remove());
    const regState: FakeDaemonState = {
      privateKeyHex: REGISTRY_PRIV,
      listenPort: 51820,
      peers: new Map([
        // The node's tunnel address includes 127.0.0.1, so its loopback calls are "through the tunnel" and its reports are taken.
        [keyToHex(NODE_PUB), { endpoint: "198.51.100.10:40000", keepalive: 0, allowedIps: ["10.200.0.2/32", "127.0.0.1/32"], presharedHex: "0".repeat(64), handshakeSec: 1_764_000_000 }],
        [keyToHex(BOB), { endpoint: "203.0.113.20:50000", keepalive: 0, allowedIps: ["10.200.0.3/32"], presharedHex: randomBytes(32).toString("hex"), handshakeSec: 1_764_000_000 }],
      ]),
    };
    const regDaemon = await startFakeDaemon(uapiSocketPath(regDir.dir, "wg0"), regState);
    cleanups.push(() => regDaemon.close());
    const nodeDaemon = await startFakeDaemon(uapiSocketPath(nodeDir.dir, "wg0"), {
      privateKeyHex: NODE_PRIV,
      listenPort: 51820,
      peers: new Map([
        [keyToHex(REGISTRY_PUB), { endpoint: "192.0.2.1:51820", keepalive: 25, allowedIps: ["10.200.0.1/32"], presharedHex: "0".repeat(64), handshakeSec: 0 }],
        // A handshake long ago: no session now, and the daemon's non-zero rx counter is not a handshake under way.
        [keyToHex(BOB), { endpoint: null, keepalive: 0, allowedIps: ["10.200.0.3/32"], presharedHex: "0".repeat(64), handshakeSec: 1 }],
      ]),
    });
    cleanups.push(() => nodeDaemon.close());

    const regLog = traceLogger();
    const reg = await runRegistry(
      { address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50, http: { host: "127.0.0.1", port: 0 } },
      { wg: createWireGuard({ socketDir: regDir.dir }), logger: regLog.logger },
    );
    cleanups.push(() => reg.stop());
    assert.equal(reg.table.current?.publicKey, REGISTRY_PUB, "the registry read its key through the parser");

    const wire = await proxy(reg.port);
    const nodeLog = traceLogger();
    const agent = await runNode(
      { addresses: [`127.0.0.1:${wire.port}`], token: TOKEN, iface: "wg0", refreshMs: 100, keepaliveSec: 25, probeIntervalMs: 0 },
      // The fake daemon knows endpoint and keepalive only: no punching by re-adding peers.
      { wg: createWireGuard({ socketDir: nodeDir.dir }), logger: nodeLog.logger, clock: systemClock, prober: null, interfaces: lan, decideOptions: { recreate: false } },
    );
    cleanups.push(() => agent.stop());
    await waitFor("the node writes Bob's endpoint", () => nodeDaemon.state.peers.get(keyToHex(BOB))?.endpoint === "203.0.113.20:50000");
    await waitFor("the node's report at the registry", () => reg.table.reportOf(NODE_PUB));

    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${TOKEN}`);
    const token = Buffer.from(TOKEN);
    const getEndpoint = await rawUnary(reg.port, "/wgSvc.proto.Registry/GetEndpoint", Buffer.concat([Buffer.from([0x0a, token.length]), token]), new grpc.Metadata());
    const getPeers = await rawUnary(reg.port, "/wormhole.v1.Registry/GetPeers", Buffer.alloc(0), md);
    const snapshot = await rawFirstWatchMessage(reg.port, md);
    for (const [what, reply] of [["GetEndpoint", getEndpoint], ["GetPeers", getPeers]] as const) {
      assert.ok(Buffer.isBuffer(reply), `${what} failed: ${String(reply)}`);
      assert.ok(reply.includes(Buffer.from(REGISTRY_PUB)), `${what} carries the registry's public key (the search is looking at the right bytes)`);
      assertNoSecret(`the ${what} reply`, reply);
    }
    assert.ok(snapshot.includes(Buffer.from("192.168.1.10")), "the snapshot carries the node's reported candidate");
    assertNoSecret("the Watch snapshot", snapshot);

    const http = `http://127.0.0.1:${reg.httpPort}`;
    for (const path of ["/", "/metrics", "/healthz"]) {
      const body = await (await fetch(`${http}${path}`)).text();
      assert.ok(body.length > 0);
      assertNoSecret(`GET ${path}`, body);
    }

    // An interface reply the parser refuses, with the key in it: the error goes to the log, /healthz and gRPC's UNAVAILABLE.
    regDaemon.mode = { kind: "reply", chunks: [`private_key=${REGISTRY_PRIV}\nlisten_port=51820\npublic_key=${REGISTRY_PRIV.slice(0, 40)}\nerrno=0\n\n`] };
    await waitFor("the registry notices", () => reg.table.lastError);
    const refused = await rawUnary(reg.port, "/wormhole.v1.Registry/GetPeers", Buffer.alloc(0), md);
    assert.ok(!Buffer.isBuffer(refused) && refused.code === grpc.status.UNAVAILABLE);
    assertNoSecret("the UNAVAILABLE details", refused.details);
    assertNoSecret("GET /healthz", await (await fetch(`${http}/healthz`)).text());
    regDaemon.mode = { kind: "normal" };
    await waitFor("the registry reads its interface again", () => !reg.table.lastError);

    await agent.stop();
    const traffic = wire.bytes();
    assert.ok(traffic.includes(Buffer.from(BOB)) && traffic.includes(Buffer.from(NODE_PUB)), "the proxy saw the conversation");
    assertNoSecret("the bytes between node and registry", traffic);
    assert.ok(regLog.lines() > 3 && nodeLog.lines() > 3, "both logged");
    assertNoSecret("the registry's log", regLog.text());
    assertNoSecret("the node's log", nodeLog.text());
  });
});
