/**
 * A node against registries that lie, send garbage or misbehave, over real
 * gRPC (and raw HTTP/2, and a silent TCP socket) on 127.0.0.1, with a fake
 * WireGuard. Whatever they send, the node:
 *  - never adds or removes peers, never changes keys, and never touches
 *    allowed IPs (a punch re-adds a peer with exactly its own; only a relay
 *    the user allowed moves them);
 *  - never points a peer at a loopback, unspecified, multicast, broadcast or
 *    link-local address, nor uses an endpoint with a zone;
 *  - never crashes, keeps retrying, and recovers when the registry is honest
 *    again;
 *  - runs no program and sends no datagram.
 *
 *         hostile registry (127.0.0.1:port)
 *                  │  Watch / GetEndpoint
 *          node "alice" ── FakeWireGuard wg0:
 *             registry  10.200.0.1/32          (the registry peer)
 *             bob       10.200.0.3/32          (no endpoint)
 *             carol     10.200.0.4/32, 192.168.50.0/24  (working tunnel)
 *             dave      fd00::5/128            (preshared key)
 *             erin      10.200.0.6/32          (marker: each step moves her)
 *             victims   10.201.0.N/32          (one bad value each)
 */
import assert from "node:assert/strict";
import { createRequire, syncBuiltinESMExports } from "node:module";
import * as http2 from "node:http2";
import { createServer as createTcpServer, type Socket } from "node:net";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import type { NodeAgent } from "../../src/node/agent.js";
import { runNode } from "../../src/node/run.js";
import { createGrpcSource } from "../../src/node/source.js";
import { endpointProblem } from "../../src/node/validate.js";
import { seedProto, v1Proto, type WatchEvent } from "../../src/rpc/proto.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import type { WgDevice } from "../../src/wg/types.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "hostile-test-token";
const ALICE = key(1);
const REGISTRY = key(9);
const BOB = key(2);
const CAROL = key(3);
const DAVE = key(4);
const ERIN = key(6);
const VICTIMS = Array.from({ length: 40 }, (_, i) => key(100 + i));

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// ---------------------------------------------------------------- nothing is run, nothing is sent

const require = createRequire(import.meta.url);
const childProcess = require("node:child_process") as Record<string, unknown>;
const dgram = require("node:dgram") as Record<string, unknown>;
const SPIED: Array<[Record<string, unknown>, string]> = [
  ...["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork"].map((n) => [childProcess, n] as [Record<string, unknown>, string]),
  [dgram, "createSocket"],
];
const ran: string[] = [];
const originals = new Map<string, unknown>();
before(() => {
  for (const [mod, name] of SPIED) {
    const original = mod[name] as (...args: unknown[]) => unknown;
    originals.set(name, original);
    mod[name] = (...args: unknown[]) => {
      ran.push(`${name} ${String(args[0])}`);
      return original(...args);
    };
  }
  syncBuiltinESMExports();
});
after(() => {
  for (const [mod, name] of SPIED) mod[name] = originals.get(name);
  syncBuiltinESMExports();
  assert.deepEqual(ran, [], "the node ran a program or opened a UDP socket");
});

// ---------------------------------------------------------------- the node

/** A fake WireGuard that notes when the node read it. */
class WatchedWg extends FakeWireGuard {
  readonly readsAtMs: number[] = [];
  override async getDevice(name: string): Promise<WgDevice> {
    this.readsAtMs.push(Date.now());
    return super.getDevice(name);
  }
  /** Resolves once the node has read the interface again at least `ms` after now: every decision due by then was made. */
  async passedAfter(ms: number): Promise<void> {
    const due = Date.now() + ms;
    await waitFor(`a pass of the node at least ${ms} ms from now`, () => this.readsAtMs.some((t) => t >= due));
  }
}

function aliceDevice(): WatchedWg {
  const now = Date.now();
  return new WatchedWg([
    {
      name: "wg0",
      publicKey: ALICE,
      listenPort: 51820,
      peers: [
        // Its endpoint is the address the node dials (127.0.0.1): this peer is provably the registry.
        { publicKey: REGISTRY, endpoint: { ip: "127.0.0.1", port: 51820 }, allowedIps: ["10.200.0.1/32"], persistentKeepaliveSec: 25, lastHandshakeMs: now },
        { publicKey: BOB, allowedIps: ["10.200.0.3/32"] },
        { publicKey: CAROL, endpoint: { ip: "198.51.100.4", port: 51820 }, allowedIps: ["10.200.0.4/32", "192.168.50.0/24"], lastHandshakeMs: now },
        { publicKey: DAVE, allowedIps: ["fd00::5/128"], hasPresharedKey: true },
        { publicKey: ERIN, allowedIps: ["10.200.0.6/32"] },
        ...VICTIMS.map((k, i) => ({ publicKey: k, allowedIps: [`10.201.0.${i + 1}/32`] })),
      ],
    },
  ]);
}

interface NodeOptions {
  readonly allowRelay?: boolean;
  readonly snapshotTimeoutMs?: number;
  readonly callTimeoutMs?: number;
}

async function startNode(port: number, wg: FakeWireGuard, options: NodeOptions = {}) {
  const log = captureLogger();
  const address = `127.0.0.1:${port}`;
  const source = createGrpcSource({
    address,
    token: TOKEN,
    refreshMs: 200,
    logger: log.logger,
    minBackoffMs: 20,
    callTimeoutMs: options.callTimeoutMs ?? 2_000,
    snapshotTimeoutMs: options.snapshotTimeoutMs ?? 10_000,
  });
  const agent: NodeAgent = await runNode(
    { addresses: [address], token: TOKEN, iface: "wg0", refreshMs: 200, keepaliveSec: 25, probeIntervalMs: 0, allowRelay: options.allowRelay ?? false },
    {
      wg,
      logger: log.logger,
      clock: systemClock,
      source,
      prober: null, // never a datagram to the fake peers' addresses
      routeCheck: async () => false, // no tunnel here (and no `ip route get`): nothing goes to the registry's tunnel address
      interfaces: () => ({}),
      decideOptions: { punchRetryMs: 30 },
    },
  );
  cleanups.push(() => agent.stop());
  return { agent, log };
}

/** The safety invariants, over every request the node made to WireGuard and the state it left. */
function assertSafe(wg: FakeWireGuard, original: WgDevice): void {
  const before = new Map(original.peers.map((p) => [p.publicKey, p]));
  for (const [i, call] of wg.calls.entries()) {
    for (const u of call.updates) {
      const where = `call ${i + 1}, peer ${u.publicKey.slice(0, 8)}`;
      const peer = before.get(u.publicKey);
      assert.ok(peer, `${where}: not a peer of the interface`);
      if (u.recreate) assert.ok(sameSet(u.recreate.allowedIps, peer.allowedIps), `${where}: re-added with other allowed IPs ${u.recreate.allowedIps}`);
      assert.equal(u.allowedIps, undefined, `${where}: allowed IPs changed to ${u.allowedIps}`);
      if (u.endpoint) assert.equal(endpointProblem(u.endpoint), null, `${where}: pointed at ${u.endpoint.ip}:${u.endpoint.port}`);
    }
  }
  const now = wg.peer.bind(wg);
  for (const p of original.peers) {
    const after = now("wg0", p.publicKey);
    assert.ok(after, `peer ${p.publicKey.slice(0, 8)} is gone`);
    assert.ok(sameSet(after.allowedIps, p.allowedIps), `peer ${p.publicKey.slice(0, 8)} has allowed IPs ${after.allowedIps}`);
    assert.equal(after.hasPresharedKey, p.hasPresharedKey);
  }
  assert.equal(wg.calls.filter((c) => c.failed).length, 0, "the node sent WireGuard an update it refused");
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}

// ---------------------------------------------------------------- hostile registries

const watchMethod = v1Proto.Registry.service.Watch;
const seedMethod = seedProto.Registry.service.GetEndpoint;

interface PeerLie {
  readonly publicKey: string;
  readonly endpoint?: { ip: string; port: number } | null;
  readonly candidates?: ReadonlyArray<{ ip: string; port: number }>;
}

const peerInfo = (p: PeerLie) => ({
  publicKey: p.publicKey,
  endpoint: p.endpoint ?? null,
  lastHandshakeUnixMs: 0,
  allowedIps: ["0.0.0.0/0"],
  rxBytes: 0,
  txBytes: 0,
  endpointRevision: 1,
  candidates: [...(p.candidates ?? [])],
  paths: [],
});

function snapshot(peers: readonly PeerLie[], extra: { relay?: boolean; registryPublicKey?: string } = {}): Buffer {
  const event: WatchEvent = { snapshot: { relay: extra.relay ?? false, registryPublicKey: extra.registryPublicKey ?? REGISTRY, peers: peers.map(peerInfo) } };
  return watchMethod.responseSerialize(event);
}

const ev = (event: WatchEvent): Buffer => watchMethod.responseSerialize(event);

/** Raw protobuf field `id` (wire type 2) holding `body`. */
function field(id: number, body: Uint8Array | string): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((id << 3) | 2);
  if (typeof body === "string") w.string(body);
  else w.bytes(body);
  return Buffer.from(w.finish());
}

type WatchCall = grpc.ServerWritableStream<unknown, Buffer>;

/** A wormhole.v1 registry whose Watch streams write raw bytes, driven by the test. */
class HostileV1 {
  readonly watches: WatchCall[] = [];
  /** What each new Watch gets; by default, nothing until the test writes. */
  onWatch: (call: WatchCall, n: number) => void = () => {};
  reports = 0;
  port = 0;
  private readonly server = new grpc.Server();

  async start(): Promise<this> {
    const rawWatch = { ...watchMethod, responseSerialize: (b: Buffer) => b };
    this.server.addService({ ...v1Proto.Registry.service, Watch: rawWatch } as grpc.ServiceDefinition, {
      Watch: (call: WatchCall) => {
        call.on("error", () => {});
        this.watches.push(call);
        this.onWatch(call, this.watches.length);
      },
      GetPeers: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED }),
      Report: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => {
        this.reports++;
        cb(null, {});
      },
    });
    this.port = await bind(this.server);
    cleanups.push(() => this.server.forceShutdown());
    return this;
  }

  /** Writes to the newest Watch stream. */
  send(bytes: Buffer): void {
    const call = this.watches.at(-1);
    assert.ok(call, "no Watch stream yet");
    call.write(bytes);
  }
}

/** A registry with only the seed's service, whose GetEndpoint answers raw bytes (or never). */
class HostileSeed {
  calls = 0;
  reply: (() => Buffer | grpc.ServiceError | "hang") = () => seedReply([]);
  port = 0;
  private readonly server = new grpc.Server();

  async start(): Promise<this> {
    const raw = { ...seedMethod, responseSerialize: (b: Buffer) => b };
    this.server.addService({ ...seedProto.Registry.service, GetEndpoint: raw } as grpc.ServiceDefinition, {
      GetEndpoint: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => {
        this.calls++;
        const r = this.reply();
        if (r === "hang") return;
        if (Buffer.isBuffer(r)) cb(null, r);
        else cb(r);
      },
      RegisterEndpoint: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, Buffer.alloc(0)),
    });
    this.port = await bind(this.server);
    cleanups.push(() => this.server.forceShutdown());
    return this;
  }
}

function seedReply(peers: ReadonlyArray<{ pubKey: string; ip?: string; port?: number }>, pubKey = REGISTRY): Buffer {
  return seedMethod.responseSerialize({
    deviceName: "wg0",
    deviceType: "Linux kernel",
    pubKey,
    Peers: peers.map((p) => ({ pubKey: p.pubKey, lastHandshakeUnixTimestamp: 0, TransmitBytes: 0, ReceiveBytes: 0, AllowedIPs: ["0.0.0.0/0"], endpointIP: p.ip ?? "", endpointPort: p.port ?? 0 })),
  });
}

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

let markerPort = 20_000;
/** Waits until the node has acted on a view that put Erin at `port`: every other value in that view was decided on too. */
async function applied(wg: FakeWireGuard, port: number): Promise<void> {
  await waitFor(`the node acting on the view that moves Erin to port ${port}`, () => wg.peer("wg0", ERIN)?.endpoint?.port === port);
}
const marker = (): PeerLie & { endpoint: { ip: string; port: number } } => ({ publicKey: ERIN, endpoint: { ip: "203.0.113.60", port: ++markerPort } });

/** Endpoints no node may write, and what each is. */
const BAD_ENDPOINTS: Array<[string, number]> = [
  ["127.0.0.1", 51820],
  ["127.1.2.3", 22],
  ["::1", 51820],
  ["::ffff:127.0.0.1", 51820],
  ["::127.0.0.1", 51820],
  ["0.0.0.0", 51820],
  ["0.9.9.9", 51820],
  ["::", 51820],
  ["224.0.0.1", 51820],
  ["239.255.255.250", 1900],
  ["ff02::1", 51820],
  ["ff05::1:3", 547],
  ["255.255.255.255", 51820],
  ["169.254.169.254", 80],
  ["fe80::1", 51820],
  ["fe80::1%eth0", 51820],
  ["2001:db8::1%eth0", 51820],
  ["203.0.113.7", 0],
  ["203.0.113.7", 70000],
  ["203.0.113.7", 65536],
  ["203.0.113.7", 4294967295],
  ["1:2:3:4:5:6:7:8:9", 51820],
  [":::", 51820],
  ["2001:db8::g", 51820],
  ["[2001:db8::1]", 51820],
  ["::ffff:999.1.1.1", 51820],
  ["1.2.3", 51820],
  ["1.2.3.4.5", 51820],
  ["256.1.1.1", 51820],
  ["203.0.113.7:51820", 51820],
  ["localhost", 51820],
  ["x".repeat(5000), 51820],
  ["", 51820],
  ["203.0.113.7\n", 51820],
];

describe("a hostile wormhole.v1 registry", () => {
  it("endpoints at loopback, unspecified, multicast, broadcast, link-local, zones, bad ports and IPv6 junk are never written", async () => {
    const reg = await new HostileV1().start();
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    const { log } = await startNode(reg.port, wg);
    await waitFor("the node's Watch", () => reg.watches.length === 1);
    const m = marker();
    reg.send(snapshot([...BAD_ENDPOINTS.map(([ip, port], i) => ({ publicKey: VICTIMS[i] as string, endpoint: { ip, port } })), m]));
    await applied(wg, m.endpoint.port);
    assertSafe(wg, original);
    for (const v of VICTIMS) assert.equal(wg.peer("wg0", v)?.endpoint, null);
    // One warning for the whole message, however many bad values it had.
    const warnings = log.records.filter((r) => String(r.msg).startsWith("registry sent endpoints this node will not use"));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.count, BAD_ENDPOINTS.length);

    // The same, one change event at a time (the other path into the node's state).
    for (const [i, [ip, port]] of BAD_ENDPOINTS.entries()) reg.send(ev({ changed: peerInfo({ publicKey: VICTIMS[i] as string, endpoint: { ip, port } }) }));
    const m2 = marker();
    reg.send(ev({ changed: peerInfo(m2) }));
    await applied(wg, m2.endpoint.port);
    assertSafe(wg, original);
    for (const v of VICTIMS) assert.equal(wg.peer("wg0", v)?.endpoint, null);
  });

  it("candidates that are not LAN addresses are never tried", async () => {
    const reg = await new HostileV1().start();
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    await startNode(reg.port, wg);
    await waitFor("the node's Watch", () => reg.watches.length === 1);
    // Every victim is behind our own public address, so its candidates come first: a bad one, then a LAN one.
    const nat = "198.51.100.10";
    const m = marker();
    reg.send(
      snapshot([
        { publicKey: ALICE, endpoint: { ip: nat, port: 40000 } },
        ...BAD_ENDPOINTS.map(([ip, port], i) => ({
          publicKey: VICTIMS[i] as string,
          endpoint: { ip: nat, port: 41000 + i },
          candidates: [{ ip, port }, { ip: `192.168.7.${i + 1}`, port: 51820 }],
        })),
        m,
      ]),
    );
    await applied(wg, m.endpoint.port);
    // Each victim gets its LAN candidate first, then (retries) its public mapping: never the bad one.
    await waitFor("every victim punched three times", () => VICTIMS.slice(0, BAD_ENDPOINTS.length).every((v) => wg.calls.filter((c) => c.updates.some((u) => u.publicKey === v && u.recreate)).length >= 3));
    assertSafe(wg, original);
    for (const [i, v] of VICTIMS.slice(0, BAD_ENDPOINTS.length).entries()) {
      const written = wg.calls.flatMap((c) => c.updates.filter((u) => u.publicKey === v && u.endpoint).map((u) => `${u.endpoint?.ip}:${u.endpoint?.port}`));
      assert.equal(written[0], `192.168.7.${i + 1}:51820`);
      assert.ok(written.every((w) => w === `192.168.7.${i + 1}:51820` || w === `${nat}:${41000 + i}`), written.join(" "));
    }
  });

  it("invalid keys and wrong types are ignored; a peer not on the interface is never created", async () => {
    const reg = await new HostileV1().start();
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    await startNode(reg.port, wg);
    await waitFor("the node's Watch", () => reg.watches.length === 1);
    const junkKeys = ["", "not-a-key", ALICE.slice(0, 43), `${ALICE.slice(0, 42)}B=`, Buffer.alloc(32, 2).toString("hex"), ` ${BOB}`, `${BOB}\n`, BOB.replace(/=$/, ""), "A".repeat(10_000), key(77)];
    const m = marker();
    reg.send(snapshot([...junkKeys.map((k) => ({ publicKey: k, endpoint: { ip: "203.0.113.5", port: 5 } })), m], { registryPublicKey: "garbage", relay: true }));
    await applied(wg, m.endpoint.port);
    assert.equal(wg.peer("wg0", BOB)?.endpoint, null, "no near-miss of Bob's key names Bob");
    assert.equal(wg.peer("wg0", key(77)), undefined, "a peer the interface does not have is not created");

    // A PeerInfo whose endpoint port is a string, then one whose key is a number: the stream fails to parse, the node retries.
    const portAsString = field(2, Buffer.concat([field(1, BOB), field(2, Buffer.concat([field(1, "203.0.113.5"), field(2, "51820")]))]));
    reg.send(portAsString);
    await waitFor("a second Watch after the parse error", () => reg.watches.length === 2);
    reg.send(Buffer.from([0x12, 0x02, 0x08, 0x05])); // changed { public_key: varint 5 }
    await waitFor("a third Watch", () => reg.watches.length === 3);
    reg.send(Buffer.from("this is not protobuf at all \x00\xff\xfe"));
    await waitFor("a fourth Watch", () => reg.watches.length === 4);
    const m2 = marker();
    reg.send(snapshot([{ publicKey: BOB, endpoint: { ip: "203.0.113.2", port: 2000 } }, m2]));
    await applied(wg, m2.endpoint.port);
    assert.deepEqual(wg.peer("wg0", BOB)?.endpoint, { ip: "203.0.113.2", port: 2000 }, "recovered once the registry made sense");
    assertSafe(wg, original);
  });

  it("gigantic messages are refused before they are decoded, and the node carries on", async () => {
    const reg = await new HostileV1().start();
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    const { log } = await startNode(reg.port, wg);
    await waitFor("the node's Watch", () => reg.watches.length === 1);
    const heapBefore = process.memoryUsage().heapUsed;

    // 8 MiB of empty peer entries: 4 million peers, ~2 GB of objects if decoded.
    const empty = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < empty.length; i += 2) empty[i] = 0x12;
    reg.send(field(1, empty));
    await waitFor("a second Watch after the refusal", () => reg.watches.length === 2);
    assert.ok(log.records.some((r) => String(r.err ?? "").includes("more than 100000 peers")), "the refusal is logged");
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 200 * 1024 * 1024, "the peers were never decoded");

    // 17 candidates for one peer.
    reg.send(snapshot([{ publicKey: BOB, endpoint: { ip: "203.0.113.2", port: 1 }, candidates: Array.from({ length: 17 }, (_, i) => ({ ip: `192.168.0.${i + 1}`, port: 1 })) }]));
    await waitFor("a third Watch", () => reg.watches.length === 3);

    // Over the 64 MiB a node accepts in one message: refused by gRPC itself.
    reg.send(field(1, Buffer.alloc(64 * 1024 * 1024 + 1)));
    await waitFor("a fourth Watch", () => reg.watches.length === 4, 20_000);
    assert.ok(log.records.some((r) => String(r.err ?? "").startsWith("RESOURCE_EXHAUSTED")));

    // A flood of changes for peers the node does not have: its state stays bounded, and honest news still lands.
    reg.send(snapshot([]));
    for (let i = 0; i < 2_000; i++) reg.send(ev({ changed: peerInfo({ publicKey: key(1000 + i), endpoint: { ip: "203.0.113.9", port: 1 + i } }) }));
    const m = marker();
    reg.send(ev({ changed: peerInfo(m) }));
    await applied(wg, m.endpoint.port);
    assertSafe(wg, original);
  });

  it("streams that end, fail or stall at once are retried with backoff, and the node recovers", async () => {
    const reg = await new HostileV1().start();
    const statuses = [grpc.status.UNAVAILABLE, grpc.status.INTERNAL, grpc.status.RESOURCE_EXHAUSTED, grpc.status.PERMISSION_DENIED, grpc.status.DEADLINE_EXCEEDED, grpc.status.UNKNOWN, grpc.status.DATA_LOSS, grpc.status.OK];
    reg.onWatch = (call, n) => {
      if (n <= 8) call.end(); // no snapshot, no status: "ended"
      else if (n <= 8 + statuses.length) call.emit("error", { code: statuses[n - 9], details: "go away", metadata: new grpc.Metadata() });
      else if (n <= 24) {
        // A snapshot, then gone: each connection looks healthy for a moment.
        call.write(snapshot([{ publicKey: BOB, endpoint: { ip: "203.0.113.2", port: 3000 + n } }]));
        call.end();
      } else call.write(snapshot([{ publicKey: BOB, endpoint: { ip: "203.0.113.2", port: 4000 } }]));
    };
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    const { log } = await startNode(reg.port, wg);
    await waitFor("Bob at the endpoint of the first stream that stays", () => wg.peer("wg0", BOB)?.endpoint?.port === 4000, 30_000);
    assert.ok(reg.watches.length >= 25);
    // Failures without a snapshot back off: the retry delay grew to the cap (refresh 200 ms: 100-200 ms).
    const delays = log.records.filter((r) => typeof r.retryInMs === "number").map((r) => r.retryInMs as number);
    assert.ok(delays.some((d) => d >= 100), `retry delays ${delays.join(", ")}`);
    assertSafe(wg, original);
  });

  it("a registry that accepts the Watch and never sends a snapshot is given up on and retried", async () => {
    const reg = await new HostileV1().start(); // onWatch does nothing: the stream stays open, silent
    const wg = aliceDevice();
    const { log } = await startNode(reg.port, wg, { snapshotTimeoutMs: 150 });
    await waitFor("three Watches", () => reg.watches.length >= 3);
    assert.ok(log.records.some((r) => String(r.err ?? "").includes("no snapshot within 150 ms")));
    reg.onWatch = (call) => call.write(snapshot([{ publicKey: BOB, endpoint: { ip: "203.0.113.2", port: 5000 } }]));
    await waitFor("Bob's endpoint once a snapshot comes", () => wg.peer("wg0", BOB)?.endpoint?.port === 5000);
  });

  it("a registry that names another peer as itself is not believed: no reports or relayed packets go to that peer, and no allowed IP ever changes", async () => {
    const lying = await new HostileV1().start();
    lying.onWatch = (call) => call.write(snapshot([{ publicKey: BOB, endpoint: { ip: "203.0.113.2", port: 2 } }], { relay: true, registryPublicKey: CAROL }));
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    const { log } = await startNode(lying.port, wg, { allowRelay: true });
    await waitFor("the node refuses the claim", () => log.records.some((r) => String(r.msg).includes("the peer the registry names as itself is neither")));
    await waitFor("our node punched Bob", () => wg.calls.some((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)));
    assert.equal(log.records.some((r) => String(r.msg).includes("reaching the registry at its tunnel address")), false);
    assertSafe(wg, original);
  });

  it(
    "an endpoint inside the tunnel's own ranges is never written",
    async () => {
      const reg = await new HostileV1().start();
      const wg = aliceDevice();
      const original = await wg.getDevice("wg0");
      await startNode(reg.port, wg);
      await waitFor("the node's Watch", () => reg.watches.length === 1);
      const m = marker();
      reg.send(snapshot([{ publicKey: BOB, endpoint: { ip: "10.200.0.4", port: 51820 } }, { publicKey: VICTIMS[0] as string, endpoint: { ip: "192.168.50.9", port: 51820 } }, m]));
      await applied(wg, m.endpoint.port);
      assertSafe(wg, original);
      assert.equal(wg.peer("wg0", BOB)?.endpoint, null, "Bob pointed into the tunnel");
      assert.equal(wg.peer("wg0", VICTIMS[0] as string)?.endpoint, null, "pointed into Carol's routed LAN");
    },
  );
});

describe("a hostile seed registry (polled)", () => {
  it("bad endpoints, invalid keys and wrong types are ignored; polling goes on", async () => {
    const reg = await new HostileSeed().start();
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    const m = marker();
    reg.reply = () =>
      seedReply([
        ...BAD_ENDPOINTS.map(([ip, port], i) => ({ pubKey: VICTIMS[i] as string, ip, port: port > 0x7fffffff ? -1 : port })),
        { pubKey: "not-a-key", ip: "203.0.113.5", port: 5 },
        { pubKey: key(77), ip: "203.0.113.5", port: 5 },
        { pubKey: ERIN, ip: m.endpoint.ip, port: m.endpoint.port },
      ]);
    const { log } = await startNode(reg.port, wg, { callTimeoutMs: 300 });
    await applied(wg, m.endpoint.port);
    assert.ok(log.records.some((r) => String(r.msg).includes("polling GetEndpoint")));
    for (const v of VICTIMS) assert.equal(wg.peer("wg0", v)?.endpoint, null);
    assert.equal(wg.peer("wg0", key(77)), undefined);

    // Garbage bytes, a wrong wire type, a gigantic list, an error, a hang: each poll fails, polling goes on.
    const hugeList = Buffer.alloc(2 * 100_001);
    for (let i = 0; i < hugeList.length; i += 2) hugeList[i] = 0x22; // Peers = 4, empty
    const replies: Array<Buffer | grpc.ServiceError | "hang"> = [
      Buffer.from([0xff, 0xff, 0xff]),
      Buffer.from([0x22, 0x02, 0x10, 0x01]), // a Peer whose pubKey is a varint
      hugeList,
      Object.assign(new Error("no"), { code: grpc.status.INTERNAL, details: "no", metadata: new grpc.Metadata() }),
      "hang",
    ];
    const start = reg.calls;
    reg.reply = () => replies[(reg.calls - start - 1) % replies.length] ?? "hang";
    await waitFor("ten more polls", () => reg.calls >= start + 10, 30_000);
    assert.ok(log.records.some((r) => String(r.err ?? "").includes("more than 100000 Peers")));
    assert.ok(log.records.some((r) => String(r.err ?? "").startsWith("DEADLINE_EXCEEDED")), "a hanging poll hits its deadline");
    const m2 = marker();
    reg.reply = () => seedReply([{ pubKey: ERIN, ip: m2.endpoint.ip, port: m2.endpoint.port }]);
    await applied(wg, m2.endpoint.port);
    assertSafe(wg, original);
  });
});

describe("garbage below gRPC", () => {
  it("raw HTTP/2 answers (not gRPC, bad frames, a 4 GB length, a gzip bomb, resets) never crash the node", async () => {
    let requests = 0;
    const honest = Buffer.concat([Buffer.from([0]), Buffer.alloc(4), snapshot([{ publicKey: BOB, endpoint: { ip: "203.0.113.2", port: 6000 } }])]);
    honest.writeUInt32BE(honest.length - 5, 1);
    const grpcHeaders = { ":status": 200, "content-type": "application/grpc" };
    const bomb = gzipSync(Buffer.alloc(100 * 1024 * 1024)); // 100 MiB of zeros in ~100 KB
    const framed = (flag: number, body: Buffer) => {
      const head = Buffer.alloc(5);
      head[0] = flag;
      head.writeUInt32BE(body.length, 1);
      return Buffer.concat([head, body]);
    };
    const behaviours: Array<(s: http2.ServerHttp2Stream) => void> = [
      (s) => {
        s.respond({ ":status": 500, "content-type": "text/html" });
        s.end("<h1>oops</h1>");
      },
      (s) => {
        s.respond(grpcHeaders, { waitForTrailers: true });
        s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
        s.end(Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3])); // a 4 GB message
      },
      (s) => {
        s.respond(grpcHeaders, { waitForTrailers: true });
        s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
        s.end(framed(1, Buffer.from("compressed, says the flag; no encoding, says the header")));
      },
      (s) => {
        s.respond({ ...grpcHeaders, "grpc-encoding": "gzip" }, { waitForTrailers: true });
        s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
        s.end(framed(1, bomb));
      },
      (s) => s.respond({ ...grpcHeaders, "grpc-status": "99", "grpc-message": "\u0000\u00ff" }, { endStream: true }),
      (s) => s.close(http2.constants.NGHTTP2_PROTOCOL_ERROR),
      (s) => s.session?.destroy(),
      (s) => {
        s.respond(grpcHeaders);
        s.end(Buffer.from([0, 0, 0])); // a cut frame header
      },
      (s) => {
        s.respond(grpcHeaders);
        s.write(honest);
      },
    ];
    const server = http2.createServer();
    server.on("stream", (s) => {
      s.on("error", () => {});
      const behave = behaviours[Math.min(requests, behaviours.length - 1)] as (s: http2.ServerHttp2Stream) => void;
      requests++;
      behave(s);
    });
    server.on("sessionError", () => {});
    const port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on("session", (s) => {
      sessions.add(s);
      s.on("close", () => sessions.delete(s));
    });
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const s of sessions) s.destroy();
      server.close(() => resolve());
    }));
    const wg = aliceDevice();
    const original = await wg.getDevice("wg0");
    const { log } = await startNode(port, wg);
    await waitFor("Bob's endpoint from the one honest answer", () => wg.peer("wg0", BOB)?.endpoint?.port === 6000, 30_000);
    assert.ok(requests >= behaviours.length);
    assert.ok(log.records.some((r) => /decompresses to a size larger than/.test(String(r.err ?? ""))), "the gzip bomb was cut off at the size limit");
    assertSafe(wg, original);
  });

  it("a registry that takes the TCP connection and says nothing is given up on and retried", async () => {
    const sockets = new Set<Socket>();
    const server = createTcpServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    const port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }));
    const wg = aliceDevice();
    const { log } = await startNode(port, wg, { snapshotTimeoutMs: 150 });
    await waitFor("three give-ups", () => log.records.filter((r) => String(r.err ?? "").includes("no snapshot within 150 ms")).length >= 3);
    assert.equal(wg.calls.length, 0);
  });
});
