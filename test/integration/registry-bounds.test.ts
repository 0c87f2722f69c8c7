/**
 * What a hostile client can make the registry hold or do, over real gRPC on
 * 127.0.0.1: requests are bounded (1 MiB, SERVER_CHANNEL_OPTIONS), and
 * failed token attempts are limited per source address (src/registry/ratelimit.ts).
 * A Watch that never reads is bounded by the WatchHub's backlog limit: see
 * registry-fanout.test.ts ("ends a watcher that falls too far behind").
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { runRegistry } from "../../src/registry/run.js";
import { SERVER_CHANNEL_OPTIONS } from "../../src/registry/server.js";
import { v1Proto } from "../../src/rpc/proto.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

const TOKEN = "bounds-token";
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function registry() {
  const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9), peers: [{ publicKey: key(1), endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["10.200.0.2/32", "127.0.0.1/32"] }] }]);
  const log = captureLogger();
  const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50 }, { wg, logger: log.logger });
  cleanups.push(() => reg.stop());
  const client = new v1Proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
  const raw = new grpc.Client(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close(), () => raw.close());
  return { reg, log, client, raw };
}

const md = (token: string) => {
  const m = new grpc.Metadata();
  m.set("authorization", `Bearer ${token}`);
  return m;
};

function getPeers(client: InstanceType<typeof v1Proto.Registry>, token: string): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client.GetPeers({}, md(token), (err) => resolve(err)));
}

function seedCall(raw: grpc.Client, token: Buffer): Promise<grpc.ServiceError | null> {
  const w = Buffer.concat([Buffer.from([0x0a]), varint(token.length), token]);
  return new Promise((resolve) => raw.makeUnaryRequest("/wgSvc.proto.Registry/GetEndpoint", (b: Buffer) => b, (b: Buffer) => b, w, (err) => resolve(err)));
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

describe("registry bounds against hostile clients", () => {
  it("refuses requests over 1 MiB before any handler sees them, and keeps serving", async () => {
    assert.equal(SERVER_CHANNEL_OPTIONS["grpc.max_receive_message_length"], 1024 * 1024);
    const { client, raw, log } = await registry();
    const report = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Report({ publicKey: key(1), candidates: [], paths: Array.from({ length: 30_000 }, () => ({ peerPublicKey: key(2), kind: "PATH_KIND_DIRECT" as const, sinceUnixMs: 1, endpoint: { ip: "192.168.1.1", port: 1 } })) }, md(TOKEN), (err) => resolve(err)),
    );
    assert.equal(report?.code, grpc.status.RESOURCE_EXHAUSTED);
    const hugeToken = await seedCall(raw, Buffer.alloc(1100 * 1024, 0x61));
    assert.equal(hugeToken?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(log.records.filter((r) => r.msg === "refused a call with a wrong token").length, 0, "no handler ran");
    assert.equal(await seedCall(raw, Buffer.from(TOKEN)), null, "still serving");
    assert.equal(await getPeers(client, TOKEN), null);
  });

  it("refuses an address that keeps guessing tokens with RESOURCE_EXHAUSTED, and logs that once", async () => {
    const { client, raw, log } = await registry();
    // The default budget: 10 failures at once (any API), then about one every 6 s.
    for (let i = 0; i < 5; i++) assert.equal((await getPeers(client, `guess-${i}`))?.code, grpc.status.PERMISSION_DENIED);
    for (let i = 5; i < 10; i++) assert.equal((await seedCall(raw, Buffer.from(`guess-${i}`)))?.code, grpc.status.PERMISSION_DENIED);
    const refusals: Array<grpc.ServiceError | null> = [];
    for (let i = 0; i < 5; i++) refusals.push(await getPeers(client, TOKEN));
    for (const r of refusals) {
      assert.equal(r?.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(r?.details ?? "", /^too many failed token attempts from this address; retry in [1-6]s$/);
    }
    assert.equal((await seedCall(raw, Buffer.from(TOKEN)))?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(log.records.filter((r) => String(r.msg).startsWith("too many failed token attempts")).length, 1);
    assert.ok(!/guess-/.test(JSON.stringify(log.records)), "no token in the log");
  });
});
