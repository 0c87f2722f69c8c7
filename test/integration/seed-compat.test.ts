/**
 * Wire compatibility with the seed (wg-wormhole), both directions, checked
 * without trusting our own generated code:
 *  - a seed node's call, written as raw protobuf bytes by field number, to
 *    our registry, and its reply decoded by field number;
 *  - a client built from proto/wgSvc.proto, as the seed's generated stubs are;
 *  - our node against a registry that serves only the seed's service, and
 *    the same registry upgraded in place.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { runNode } from "../../src/node/run.js";
import { createGrpcSource, type RegistryView } from "../../src/node/source.js";
import { runRegistry } from "../../src/registry/run.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "seed-token";
const ALICE = key(1);
const BOB = key(2);
const REGISTRY = key(9);
const PROTO = fileURLToPath(new URL("../../proto/wgSvc.proto", import.meta.url));

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function ourRegistry(port = 0) {
  return (await ourRegistryAndWg(port)).reg;
}

async function ourRegistryAndWg(port = 0) {
  const wg = new FakeWireGuard([
    {
      name: "wg0",
      type: "kernel",
      publicKey: REGISTRY,
      peers: [
        { publicKey: ALICE, endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"], lastHandshakeMs: 1_764_000_000_500, rxBytes: 7, txBytes: 9 },
        { publicKey: BOB, endpoint: { ip: "2001:db8::20", port: 50000 }, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
  const reg = await runRegistry({ address: `127.0.0.1:${port}`, iface: "wg0", token: TOKEN, pollIntervalMs: 50 }, { wg, logger: captureLogger().logger });
  cleanups.push(() => reg.stop());
  return { reg, wg };
}

/** Protobuf wire fields of one message: field number → list of raw values. */
function fields(buf: Uint8Array): Map<number, Array<string | number | Uint8Array>> {
  const r = protobuf.Reader.create(buf);
  const out = new Map<number, Array<string | number | Uint8Array>>();
  while (r.pos < r.len) {
    const tag = r.uint32();
    const no = tag >>> 3;
    const wire = tag & 7;
    const list = out.get(no) ?? [];
    if (wire === 0) list.push(Number(r.int64()));
    else if (wire === 2) list.push(r.bytes());
    else r.skipType(wire);
    out.set(no, list);
  }
  return out;
}
const text = (v: unknown) => Buffer.from(v as Uint8Array).toString("utf8");

function rawCall(port: number, token: string): Promise<Buffer> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  // GetEndpointRequest { string token = 1; } written by hand: tag 0x0a, length, bytes.
  const body = Buffer.from(token, "utf8");
  const request = Buffer.concat([Buffer.from([0x0a, body.length]), body]);
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/wgSvc.proto.Registry/GetEndpoint",
      (b: Buffer) => b,
      (b: Buffer) => b,
      request,
      (err, reply) => (err ? reject(err) : resolve(reply as Buffer)),
    ),
  );
}

describe("seed compatibility", () => {
  it("answers a seed node's raw GetEndpoint with the seed's field numbers", async () => {
    const reg = await ourRegistry();
    const reply = fields(await rawCall(reg.port, TOKEN));
    assert.equal(text(reply.get(1)?.[0]), "wg0"); // deviceName
    assert.equal(text(reply.get(2)?.[0]), "Linux kernel"); // deviceType
    assert.equal(text(reply.get(3)?.[0]), REGISTRY); // pubKey
    const peers = (reply.get(4) ?? []).map((p) => fields(p as Uint8Array)); // repeated Peer Peers = 4
    assert.equal(peers.length, 2);
    const [alice, bob] = peers;
    assert.equal(text(alice?.get(2)?.[0]), ALICE); // pubKey = 2
    assert.equal(alice?.get(3)?.[0], 1_764_000_000); // lastHandshakeUnixTimestamp = 3 (seconds)
    assert.equal(alice?.get(4)?.[0], 9); // TransmitBytes = 4
    assert.equal(alice?.get(5)?.[0], 7); // ReceiveBytes = 5
    assert.equal(text(alice?.get(6)?.[0]), "10.200.0.2/32"); // AllowedIPs = 6
    assert.equal(text(alice?.get(7)?.[0]), "198.51.100.10"); // endpointIP = 7
    assert.equal(alice?.get(8)?.[0], 40000); // endpointPort = 8
    assert.equal(text(bob?.get(7)?.[0]), "2001:db8::20");
  });

  it("a reply (encoded once per read of the interface) has the changes of the next read", async () => {
    const { reg, wg } = await ourRegistryAndWg();
    const bobPort = async () => fields(fields(await rawCall(reg.port, TOKEN)).get(4)?.[1] as Uint8Array).get(8)?.[0];
    assert.equal(await bobPort(), 50000);
    wg.setPeerEndpoint("wg0", BOB, { ip: "203.0.113.20", port: 50002 });
    await waitFor("the change in a later reply", async () => (await bobPort()) === 50002);
  });

  it("refuses a wrong token with PERMISSION_DENIED, as the seed did", async () => {
    const reg = await ourRegistry();
    await assert.rejects(rawCall(reg.port, "nope"), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED);
  });

  it("serves a client generated from the seed's .proto, and RegisterEndpoint answers empty", async () => {
    const reg = await ourRegistry();
    const pkg = grpc.loadPackageDefinition(loadSync(PROTO)) as unknown as {
      wgSvc: { proto: { Registry: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, (...args: unknown[]) => unknown> } };
    };
    const client = new pkg.wgSvc.proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const reply = await new Promise<{ Peers: Array<{ pubKey: string; endpointPort: number }> }>((resolve, reject) =>
      client.GetEndpoint!({ token: TOKEN }, (e: Error | null, r: never) => (e ? reject(e) : resolve(r))),
    );
    assert.deepEqual(
      reply.Peers.map((p) => [p.pubKey, p.endpointPort]),
      [
        [ALICE, 40000],
        [BOB, 50000],
      ],
    );
    const empty = await new Promise((resolve, reject) => client.RegisterEndpoint!({}, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
    assert.deepEqual(empty, {});
  });

  it("our node works against a registry that has only the seed's service (falls back to polling)", async () => {
    const pkg = grpc.loadPackageDefinition(loadSync(PROTO)) as unknown as { wgSvc: { proto: { Registry: { service: grpc.ServiceDefinition } } } };
    const server = new grpc.Server();
    let calls = 0;
    server.addService(pkg.wgSvc.proto.Registry.service, {
      GetEndpoint(call: grpc.ServerUnaryCall<{ token: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
        calls += 1;
        if (call.request.token !== TOKEN) return cb({ code: grpc.status.PERMISSION_DENIED });
        cb(null, {
          deviceName: "wg0",
          deviceType: "Linux kernel",
          pubKey: REGISTRY,
          Peers: [
            { pubKey: ALICE, endpointIP: "198.51.100.10", endpointPort: 40000 },
            { pubKey: BOB, endpointIP: "203.0.113.20", endpointPort: calls > 1 ? 50001 : 50000 },
            { pubKey: "not-a-key", endpointIP: "203.0.113.30", endpointPort: 1 },
            { pubKey: key(5), endpointIP: "999.1.1.1", endpointPort: 1 },
          ],
        });
      },
      RegisterEndpoint(_c: unknown, cb: grpc.sendUnaryData<unknown>) {
        cb(null, {});
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    cleanups.push(() => server.forceShutdown());

    const alice = new FakeWireGuard([
      { name: "wg0", publicKey: ALICE, peers: [{ publicKey: BOB }, { publicKey: key(5), endpoint: { ip: "192.0.2.5", port: 5 } }] },
    ]);
    const log = captureLogger();
    const agent = await runNode(
      { addresses: [`127.0.0.1:${port}`], token: TOKEN, iface: "wg0", refreshMs: 200, keepaliveSec: 25, probeIntervalMs: 0 },
      { wg: alice, logger: log.logger, clock: systemClock, prober: null },
    );
    cleanups.push(() => agent.stop());
    await waitFor("Bob's endpoint from the seed registry", () => alice.peer("wg0", BOB)?.endpoint?.port === 50000);
    // Polling continues at the refresh interval; the next answer moves Bob.
    await waitFor("a later poll", () => alice.peer("wg0", BOB)?.endpoint?.port === 50001 || null);
    assert.ok(log.records.some((r) => String(r.msg).includes("polling GetEndpoint")));
    // Garbage from the registry is ignored, never applied.
    assert.deepEqual(alice.peer("wg0", key(5))?.endpoint, { ip: "192.0.2.5", port: 5 });
  });

  it("a seed registry upgraded in place: the polling node tries Watch again and switches to push", async () => {
    const pkg = grpc.loadPackageDefinition(loadSync(PROTO)) as unknown as { wgSvc: { proto: { Registry: { service: grpc.ServiceDefinition } } } };
    const seedOnlyRegistry = async () => {
      const server = new grpc.Server();
      server.addService(pkg.wgSvc.proto.Registry.service, {
        GetEndpoint(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
          cb(null, { deviceName: "wg0", pubKey: REGISTRY, Peers: [{ pubKey: ALICE, endpointIP: "198.51.100.10", endpointPort: 40000 }] });
        },
        RegisterEndpoint(_c: unknown, cb: grpc.sendUnaryData<unknown>) {
          cb(null, {});
        },
      });
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
      cleanups.push(() => server.forceShutdown());
      return { server, port };
    };
    const pollingSource = (port: number) => {
      const log = captureLogger();
      const views: RegistryView[] = [];
      const source = createGrpcSource({ address: `127.0.0.1:${port}`, token: TOKEN, refreshMs: 50, watchRetryMs: 200, minBackoffMs: 50, logger: log.logger });
      source.start((v) => views.push(v));
      cleanups.push(() => source.stop());
      return { log, views };
    };
    const { server: seedOnly, port } = await seedOnlyRegistry();
    const { log, views } = pollingSource(port);

    await waitFor("a polled view", () => views.some((v) => v.via === "poll"));
    await waitFor("Watch tried again while polling", () => log.records.some((r) => r.msg === "registry still has no wormhole.v1 Watch; polling GetEndpoint"));
    assert.equal(log.records.filter((r) => String(r.msg).startsWith("registry has no wormhole.v1 Watch")).length, 1, "said once at info");
    const polledBefore = views.filter((v) => v.via === "poll").length;
    await waitFor("polling goes on between the tries", () => views.filter((v) => v.via === "poll").length >= polledBefore + 3);

    // The operator replaces the seed registry with wormhole on the same port.
    await new Promise<void>((resolve) => seedOnly.tryShutdown(() => resolve()));
    await ourRegistry(port);
    const pushed = (await waitFor("a pushed view", () => views.find((v) => v.via === "watch"))) as RegistryView;
    assert.deepEqual([...pushed.endpoints.keys()].sort(), [ALICE, BOB].sort());
    assert.ok(log.records.some((r) => r.msg === "the registry has wormhole.v1 Watch now; pushed from here on, no more polling"));
    const polledAtSwitch = views.filter((v) => v.via === "poll").length;
    // A source with the same settings against a registry still seed-only polls three times meanwhile.
    const control = pollingSource((await seedOnlyRegistry()).port);
    await waitFor("three polls of a source still polling", () => control.views.filter((v) => v.via === "poll").length >= 3);
    assert.equal(views.filter((v) => v.via === "poll").length, polledAtSwitch, "no more polls once pushed");
  });
});
