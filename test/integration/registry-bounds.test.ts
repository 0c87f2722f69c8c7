/**
 * What a hostile client can make the registry hold or do, over real gRPC on
 * 127.0.0.1: requests are bounded (1 MiB, SERVER_CHANNEL_OPTIONS), failed
 * token attempts are limited per source address (src/registry/ratelimit.ts)
 * and counted in the metrics, and each connection is bounded: calls open at
 * once (HTTP/2 max concurrent streams), time without any call (idle
 * connections are closed), and unanswered ping acks (node's HTTP/2 ends a
 * ping flood). A Watch that never reads is bounded by the WatchHub's backlog
 * limit: see registry-fanout.test.ts ("ends a watcher that falls too far behind").
 */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { METRIC_NAMES } from "../../src/registry/metrics.js";
import { runRegistry } from "../../src/registry/run.js";
import { bindServer, CONNECTION_IDLE_MS, createRegistryServer, MAX_CONCURRENT_STREAMS, MAX_REQUEST_BYTES, SERVER_CHANNEL_OPTIONS, type ConnectionLimits } from "../../src/registry/server.js";
import { PeerTable } from "../../src/registry/table.js";
import { v1Proto, type WatchEvent__Output } from "../../src/rpc/proto.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "bounds-token";
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function registry(options: { http?: boolean } = {}) {
  const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9), peers: [{ publicKey: key(1), endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["10.200.0.2/32", "127.0.0.1/32"] }] }]);
  const log = captureLogger();
  const http = options.http ? { http: { host: "127.0.0.1", port: 0 } } : {};
  const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50, ...http }, { wg, logger: log.logger });
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
  it("refuses requests over MAX_REQUEST_BYTES before any handler sees them, and keeps serving", async () => {
    assert.equal(SERVER_CHANNEL_OPTIONS["grpc.max_receive_message_length"], MAX_REQUEST_BYTES);
    const { client, raw, log } = await registry();
    const report = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Report({ publicKey: key(1), candidates: [], paths: Array.from({ length: 1_000 }, () => ({ peerPublicKey: key(2), kind: "PATH_KIND_DIRECT" as const, sinceUnixMs: 1, endpoint: { ip: "192.168.1.1", port: 1 } })) }, md(TOKEN), (err) => resolve(err)),
    );
    assert.equal(report?.code, grpc.status.RESOURCE_EXHAUSTED);
    const hugeToken = await seedCall(raw, Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x61));
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
    for (let i = 10; i < 15; i++) refusals.push(await getPeers(client, `guess-${i}`));
    for (const r of refusals) {
      assert.equal(r?.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(r?.details ?? "", /^too many failed token attempts from this address; retry in [1-6]s$/);
    }
    assert.equal((await seedCall(raw, Buffer.from("guess-15")))?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(log.records.filter((r) => String(r.msg).startsWith("too many failed token attempts")).length, 1);
    assert.ok(!/guess-/.test(JSON.stringify(log.records)), "no token in the log");
  });

  it("counts wrong tokens and rate-limited refusals apart in /metrics", async () => {
    const { reg, client, raw } = await registry({ http: true });
    const scrape = async () => {
      const text = await (await fetch(`http://127.0.0.1:${reg.httpPort}/metrics`)).text();
      const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
      return { wrongToken: value(METRIC_NAMES.authFailures), rateLimited: value(METRIC_NAMES.authRateLimited) };
    };
    assert.deepEqual(await scrape(), { wrongToken: 0, rateLimited: 0 });
    for (let i = 0; i < 10; i++) assert.equal((await getPeers(client, `guess-${i}`))?.code, grpc.status.PERMISSION_DENIED);
    assert.deepEqual(await scrape(), { wrongToken: 10, rateLimited: 0 });
    // Over the budget: wrong tokens are refused as rate-limited, on every API.
    assert.equal((await getPeers(client, "guess-10"))?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal((await seedCall(raw, Buffer.from("guess-11")))?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal((await watchRefusal(client, "guess-12")).code, grpc.status.RESOURCE_EXHAUSTED);
    assert.deepEqual(await scrape(), { wrongToken: 10, rateLimited: 3 });
  });

  it("never refuses the right token because others at its address guessed wrong", async () => {
    const { client, raw } = await registry();
    for (let i = 0; i < 12; i++) await getPeers(client, `guess-${i}`);
    assert.equal((await getPeers(client, "guess-12"))?.code, grpc.status.RESOURCE_EXHAUSTED, "the address is over its budget");
    assert.equal(await getPeers(client, TOKEN), null, "GetPeers with the right token");
    assert.equal(await seedCall(raw, Buffer.from(TOKEN)), null, "GetEndpoint with the right token");
    const events: WatchEvent__Output[] = [];
    const call = client.Watch({}, md(TOKEN));
    call.on("data", (e: WatchEvent__Output) => events.push(e));
    call.on("error", () => {});
    cleanups.push(() => call.cancel());
    await waitFor("a snapshot for the right token", () => events.length === 1);
  });
});

function watchRefusal(client: InstanceType<typeof v1Proto.Registry>, token: string): Promise<grpc.ServiceError> {
  return new Promise((resolve) => {
    const call = client.Watch({}, md(token));
    call.on("data", () => {});
    call.on("error", resolve);
  });
}

// ------------------------------------------------------------- connection bounds

/** A registry server with these connection limits, its table refreshed only by the test. */
async function limitedServer(connections?: ConnectionLimits) {
  const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9), peers: [{ publicKey: key(1), endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["10.200.0.2/32"] }] }]);
  const log = captureLogger();
  const table = new PeerTable({ wg, iface: "wg0", logger: log.logger });
  await table.refresh();
  const server = createRegistryServer({ table, token: TOKEN, logger: log.logger, ...(connections ? { connections } : {}) });
  const port = await bindServer(server, "127.0.0.1:0");
  cleanups.push(() => server.forceShutdown());
  const joined = () => log.records.filter((r) => r.msg === "watcher joined");
  return { wg, table, port, joined };
}

/** A client on a connection of its own (grpc-js otherwise shares one among clients with equal options). */
function ownClient(port: number, options: grpc.ChannelOptions = {}): InstanceType<typeof v1Proto.Registry> {
  const client = new v1Proto.Registry(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1, ...options });
  cleanups.push(() => client.close());
  return client;
}

function watch(client: InstanceType<typeof v1Proto.Registry>) {
  const call = client.Watch({}, md(TOKEN));
  const events: WatchEvent__Output[] = [];
  const state: { error: grpc.ServiceError | null } = { error: null };
  call.on("data", (e: WatchEvent__Output) => events.push(e));
  call.on("error", (e: grpc.ServiceError) => (state.error = e));
  cleanups.push(() => call.cancel());
  return { call, events, state };
}

const channelState = (client: grpc.Client) => grpc.connectivityState[client.getChannel().getConnectivityState(false)];

/**
 * Moves the registry's one peer to `port` and waits until every stream in `watches` that has its
 * snapshot heard of it: a stream of the same connection that the registry served meanwhile would
 * have had its snapshot before this change (one connection, in order).
 */
async function pushedTo(r: Awaited<ReturnType<typeof limitedServer>>, watches: Array<ReturnType<typeof watch>>, port: number): Promise<void> {
  r.wg.setPeerEndpoint("wg0", key(1), { ip: "198.51.100.1", port });
  await r.table.refresh();
  await waitFor(`the change to port ${port} on every served stream`, () =>
    watches.filter((w) => w.events.length > 0).every((w) => w.events.some((e) => e.changed?.endpoint?.port === port)),
  );
}

/** An HTTP/2 frame: 3 bytes length, type, flags, stream 0. */
function frame(type: number, flags: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  return Buffer.concat([header, payload]);
}

/** The frames in what a raw HTTP/2 client received, as [type, flags]. */
function frames(received: Buffer[]): Array<[number, number]> {
  const all = Buffer.concat(received);
  const out: Array<[number, number]> = [];
  for (let at = 0; at + 9 <= all.length; at += 9 + all.readUIntBE(at, 3)) out.push([all[at + 3] ?? -1, all[at + 4] ?? -1]);
  return out;
}

describe("registry connection bounds", () => {
  it("as run, advertises 32 streams per connection, closes connections idle 5 minutes, and never ends one for its age", async () => {
    assert.equal(MAX_CONCURRENT_STREAMS, 32);
    assert.equal(CONNECTION_IDLE_MS, 5 * 60_000);
    assert.equal(SERVER_CHANNEL_OPTIONS["grpc.max_concurrent_streams"], MAX_CONCURRENT_STREAMS);
    assert.equal(SERVER_CHANNEL_OPTIONS["grpc.max_connection_idle_ms"], CONNECTION_IDLE_MS);
    assert.ok(!("grpc.max_connection_age_ms" in SERVER_CHANNEL_OPTIONS), "a connection age would end every node's Watch");
    const { reg } = await registry();
    const session = http2.connect(`http://127.0.0.1:${reg.port}`);
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
    assert.equal(settings.maxConcurrentStreams, 32);
  });

  it("serves at most maxConcurrentStreams calls of one connection at once; the others wait until one ends", async () => {
    const r = await limitedServer({ maxConcurrentStreams: 3 });
    const client = ownClient(r.port);
    const watches = Array.from({ length: 5 }, () => watch(client));
    const served = () => watches.filter((w) => w.events.length > 0);
    await waitFor("three snapshots", () => served().length >= 3);
    await pushedTo(r, watches, 100);
    assert.equal(served().length, 3, "no more than 3 streams served");
    assert.equal(r.joined().length, 3, "the registry saw only 3");
    assert.equal(new Set(r.joined().map((j) => j.from)).size, 1, "all on one connection");

    const cancelled = served()[0]!;
    cancelled.call.cancel();
    await waitFor("a fourth snapshot", () => served().length >= 4);
    await pushedTo(
      r,
      watches.filter((w) => w !== cancelled),
      101,
    );
    assert.equal(served().length, 4);
    served()[1]?.call.cancel();
    await waitFor("the fifth snapshot", () => served().length === 5);
    assert.ok(watches.every((w) => w.state.error === null || w.state.error.code === grpc.status.CANCELLED));
  });

  it("closes a connection without a call for idleMs, however often its client pings; one holding a Watch stays", async () => {
    const r = await limitedServer({ idleMs: 300 });
    // Pings far more often than a node's (every 15 s): they neither keep a connection open nor get it closed.
    const pinging = { "grpc.keepalive_time_ms": 50, "grpc.keepalive_timeout_ms": 5_000, "grpc.keepalive_permit_without_calls": 1 };
    const idle = ownClient(r.port, pinging);
    const watching = ownClient(r.port, pinging);
    const w = watch(watching);
    await waitFor("snapshot", () => w.events.length === 1);
    assert.equal(await getPeers(idle, TOKEN), null);
    assert.equal(channelState(idle), "READY");
    // The registry's GOAWAY takes the idle channel to IDLE.
    await waitFor("the idle connection closed", () => channelState(idle) === "IDLE", 5_000);
    // Two more idle periods, each seen to pass by the idle client's next connection being closed in turn.
    for (let i = 0; i < 2; i++) {
      assert.equal(await getPeers(idle, TOKEN), null, "an idle client connects again for its next call");
      await waitFor("the idle client's new connection closed", () => channelState(idle) === "IDLE", 5_000);
    }
    assert.equal(channelState(watching), "READY");
    assert.equal(w.state.error, null);
    r.wg.setPeerEndpoint("wg0", key(1), { ip: "198.51.100.7", port: 7 });
    await r.table.refresh();
    await waitFor("the change on the same Watch", () => w.events.length === 2);
    assert.equal(w.events[1]?.changed?.endpoint?.port, 7);
    assert.equal(await getPeers(idle, TOKEN), null, "an idle client connects again for its next call");
  });

  it("closes a connection that never starts HTTP/2 once idleMs has passed", async () => {
    const r = await limitedServer({ idleMs: 300 });
    const started = Date.now();
    const sock = net.connect(r.port, "127.0.0.1");
    cleanups.push(() => sock.destroy());
    let closedAfter: number | null = null;
    sock.on("error", () => {});
    sock.on("close", () => (closedAfter = Date.now() - started));
    sock.resume();
    await waitFor("closed", () => closedAfter !== null, 5_000);
    assert.ok((closedAfter ?? 0) >= 250, `closed after ${closedAfter} ms`);
  });

  it("answers a client's pings, ends one that sends a thousand faster than they are answered, and keeps serving", async () => {
    const { reg, client } = await registry();
    const sock = net.connect(reg.port, "127.0.0.1");
    cleanups.push(() => sock.destroy());
    const received: Buffer[] = [];
    let closed = false;
    sock.on("data", (d: Buffer) => received.push(d));
    sock.on("error", () => {});
    sock.on("close", () => (closed = true));
    const ping = frame(6, 0, Buffer.alloc(8, 7));
    const acks = () => frames(received).filter(([type, flags]) => type === 6 && flags === 1).length;
    sock.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(4, 0, Buffer.alloc(0)), ...Array<Buffer>(10).fill(ping)]));
    await waitFor("ten ping acks", () => acks() === 10);
    // One more, answered: a connection the ten had ended would not answer it.
    sock.write(frame(6, 0, Buffer.alloc(8, 8)));
    await waitFor("the next ping's ack", () => acks() === 11);
    assert.ok(!closed, "ten pings are fine");
    sock.write(Buffer.concat(Array<Buffer>(2000).fill(ping)));
    await waitFor("the flood ended", () => closed, 5_000);
    assert.ok(frames(received).some(([type]) => type === 7), "with a GOAWAY");
    assert.equal(await getPeers(client, TOKEN), null, "still serving");
  });
});
