/**
 * What a node accepts from its registry (src/node/validate.ts): endpoints and
 * candidates, the tunnel check for the agent, and the pass over a reply's
 * bytes before it is decoded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import protobuf from "protobufjs";
import { applyWatchEvent, viewFromSeedReply, type WarnSink, type WatchState } from "../../src/node/source.js";
import { endpointProblem, guardedServices, insideTunnel, MAX_DECODED_VALUES, MAX_PEER_CANDIDATES, MAX_PEER_PATHS, MAX_VIEW_PEERS, messageProblem, registryEndpoint } from "../../src/node/validate.js";
import { seedProto, v1Proto } from "../../src/rpc/proto.js";
import type { WgDevice } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

describe("registryEndpoint", () => {
  const usable: Array<[unknown, unknown, { ip: string; port: number } | null]> = [
    ["203.0.113.7", 51820, { ip: "203.0.113.7", port: 51820 }],
    ["192.168.1.10", 1, { ip: "192.168.1.10", port: 1 }],
    ["100.64.3.4", 65535, { ip: "100.64.3.4", port: 65535 }],
    ["10.1.2.3", 4242, { ip: "10.1.2.3", port: 4242 }],
    ["2001:DB8:0:0::1", 51820, { ip: "2001:db8::1", port: 51820 }],
    ["fd00::5", 51820, { ip: "fd00::5", port: 51820 }],
    ["::ffff:198.51.100.1", 7, { ip: "198.51.100.1", port: 7 }],
    ["", 0, null],
    [undefined, undefined, null],
  ];
  for (const [ip, port, want] of usable) {
    it(`takes ${JSON.stringify(ip)} port ${String(port)}`, () => assert.deepEqual(registryEndpoint(ip, port), { endpoint: want }));
  }
  const refused: Array<[unknown, unknown, RegExp]> = [
    ["127.0.0.1", 51820, /loopback/],
    ["127.255.0.9", 51820, /loopback/],
    ["::1", 51820, /loopback/],
    ["::ffff:127.0.0.1", 51820, /loopback/],
    ["0.0.0.0", 51820, /unspecified/],
    ["0.1.2.3", 51820, /unspecified/],
    ["::", 51820, /unspecified/],
    ["224.0.0.1", 51820, /multicast/],
    ["239.255.255.250", 1900, /multicast/],
    ["ff02::1", 51820, /multicast/],
    ["255.255.255.255", 51820, /broadcast/],
    ["169.254.1.1", 51820, /linkLocal/],
    ["fe80::1", 51820, /linkLocal/],
    ["fe80::1%eth0", 51820, /zone/],
    ["2001:db8::1%eth0", 51820, /zone/],
    ["203.0.113.7", 0, /port/],
    ["203.0.113.7", 70000, /port/],
    ["203.0.113.7", -1, /port/],
    ["203.0.113.7", 1.5, /port/],
    ["203.0.113.7", "51820", /port/],
    ["", 51820, /address/],
    ["1::2::3", 51820, /address/],
    ["[2001:db8::1]", 51820, /address/],
    ["::ffff:999.1.1.1", 51820, /address/],
    ["203.0.113.7:51820", 51820, /address/],
    ["example.com", 51820, /address/],
    [42, 51820, /address/],
  ];
  for (const [ip, port, why] of refused) {
    it(`refuses ${JSON.stringify(ip)} port ${JSON.stringify(port)}`, () => {
      const r = registryEndpoint(ip, port);
      assert.ok("problem" in r, JSON.stringify(r));
      assert.match(r.problem, why);
    });
  }

  it("whatever it is given, never throws, and what it takes is canonical and passes endpointProblem (property)", () => {
    const ip = fc.oneof(
      fc.string(),
      fc.ipV4(),
      fc.ipV6(),
      fc.ipV4Extended(),
      fc.tuple(fc.ipV6(), fc.string({ maxLength: 8 })).map(([a, z]) => `${a}%${z}`),
      fc.constantFrom<unknown>(undefined, null, 0, {}, []),
    );
    const port = fc.oneof(fc.integer({ min: -2, max: 70_000 }), fc.double(), fc.constantFrom<unknown>(undefined, null, "1", NaN));
    fc.assert(
      fc.property(ip, port, (i, p) => {
        const r = registryEndpoint(i, p);
        if ("problem" in r) return;
        if (r.endpoint === null) return;
        assert.equal(endpointProblem(r.endpoint), null);
        assert.ok(Number.isInteger(r.endpoint.port) && r.endpoint.port >= 1 && r.endpoint.port <= 65535);
        assert.deepEqual(registryEndpoint(r.endpoint.ip, r.endpoint.port), r, "idempotent");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("insideTunnel", () => {
  const device = (allowedIps: string[][]): WgDevice => ({
    name: "wg0",
    type: "userspace",
    publicKey: key(1),
    listenPort: 51820,
    peers: allowedIps.map((ips, i) => ({ publicKey: key(i + 2), endpoint: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps: ips, persistentKeepaliveSec: 0, hasPresharedKey: false })),
  });
  const cases: Array<[string, string, string[][], boolean]> = [
    ["a tunnel address", "10.200.0.3", [["10.200.0.1/32"], ["10.200.0.0/24"]], true],
    ["a LAN routed behind a peer", "192.168.2.9", [["10.200.0.3/32", "192.168.2.0/24"]], true],
    ["an IPv6 tunnel address", "fd00::3", [["fd00::/64"]], true],
    ["an address outside", "198.51.100.7", [["10.200.0.0/24"]], false],
    ["anything, when the only wide prefix is a default route", "198.51.100.7", [["0.0.0.0/0", "::/0"]], false],
    ["another family", "10.200.0.3", [["fd00::/64"]], false],
  ];
  for (const [name, ip, ips, want] of cases) it(`${name}: ${want}`, () => assert.equal(insideTunnel({ ip, port: 51820 }, device(ips)), want));
});

// ---------------------------------------------------------------- messages

const watch = v1Proto.Registry.service.Watch;
const guardedWatch = guardedServices.v1.Watch as NonNullable<(typeof guardedServices.v1)["Watch"]>;
const guardedSeed = guardedServices.seed.GetEndpoint as NonNullable<(typeof guardedServices.seed)["GetEndpoint"]>;

function peerInfo(n: number, candidates = 1, paths = 1) {
  return {
    publicKey: key(n),
    endpoint: { ip: "203.0.113.9", port: 40000 + n },
    lastHandshakeUnixMs: 1_764_000_000_000,
    allowedIps: [`10.200.0.${n}/32`],
    rxBytes: 5,
    txBytes: 6,
    endpointRevision: 2,
    candidates: Array.from({ length: candidates }, (_, i) => ({ ip: `192.168.1.${i + 1}`, port: 51820 })),
    paths: Array.from({ length: paths }, () => ({ peerPublicKey: key(7), kind: "PATH_KIND_DIRECT" as const, sinceUnixMs: 1, endpoint: { ip: "203.0.113.8", port: 1 }, rttMs: 3 })),
  };
}
const snapshot = (peers: object[]) => watch.responseSerialize({ snapshot: { relay: true, registryPublicKey: key(9), peers } as never });

/** Raw protobuf: field `id` with wire type 2 and `body`. */
function len(id: number, body: Uint8Array): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((id << 3) | 2).bytes(body);
  return Buffer.from(w.finish());
}

describe("messageProblem and the guarded decoders", () => {
  it("takes an honest snapshot, and decodes only what the node reads (allowed IPs, for --auto-peers; no counters, nor paths' times and endpoints)", () => {
    const bytes = snapshot([peerInfo(1, 2, 3), peerInfo(2)]);
    assert.equal(messageProblem("wormhole.v1.WatchEvent", bytes), null);
    const event = guardedWatch.responseDeserialize(bytes) as { event: string; snapshot: { relay: boolean; registryPublicKey: string; peers: Array<Record<string, unknown>> } };
    assert.equal(event.event, "snapshot");
    assert.equal(event.snapshot.relay, true);
    assert.equal(event.snapshot.registryPublicKey, key(9));
    assert.deepEqual(event.snapshot.peers[0], {
      publicKey: key(1),
      endpoint: { ip: "203.0.113.9", port: 40001 },
      allowedIps: ["10.200.0.1/32"],
      candidates: [
        { ip: "192.168.1.1", port: 51820 },
        { ip: "192.168.1.2", port: 51820 },
      ],
      paths: Array.from({ length: 3 }, () => ({ peerPublicKey: key(7), kind: "PATH_KIND_DIRECT" })),
    });
  });

  it("takes change and removal events, and an honest seed reply", () => {
    assert.equal(messageProblem("wormhole.v1.WatchEvent", watch.responseSerialize({ changed: peerInfo(3) })), null);
    assert.equal(messageProblem("wormhole.v1.WatchEvent", watch.responseSerialize({ removedPublicKey: key(3) })), null);
    const seedBytes = seedProto.Registry.service.GetEndpoint.responseSerialize({
      deviceName: "wg0",
      deviceType: "Linux kernel",
      pubKey: key(9),
      Peers: [{ pubKey: key(1), lastHandshakeUnixTimestamp: 5, TransmitBytes: 1, ReceiveBytes: 2, AllowedIPs: ["10.0.0.1/32"], endpointIP: "203.0.113.1", endpointPort: 5 }],
    });
    assert.equal(messageProblem("wgSvc.proto.GetEndpointReply", seedBytes), null);
    assert.deepEqual((guardedSeed.responseDeserialize(seedBytes) as { Peers: unknown[] }).Peers, [{ pubKey: key(1), AllowedIPs: ["10.0.0.1/32"], endpointIP: "203.0.113.1", endpointPort: 5 }]);
  });

  it(`refuses more than ${MAX_VIEW_PEERS} peers before decoding any (4 MiB of empty peers would be ~900 MB of objects)`, () => {
    const emptyPeers = Buffer.alloc((MAX_VIEW_PEERS + 1) * 2);
    for (let i = 0; i < emptyPeers.length; i += 2) emptyPeers[i] = 0x12; // GetPeersResponse.peers = 2, length 0
    const bytes = len(1, emptyPeers);
    assert.match(messageProblem("wormhole.v1.WatchEvent", bytes) ?? "", new RegExp(`more than ${MAX_VIEW_PEERS} peers`));
    assert.throws(() => guardedWatch.responseDeserialize(bytes), /more than 100000 peers/);
    // One fewer is fine.
    assert.equal(messageProblem("wormhole.v1.WatchEvent", len(1, emptyPeers.subarray(2))), null);
  });

  it(`refuses more than ${MAX_PEER_PATHS} paths for one peer`, () => {
    assert.equal(messageProblem("wormhole.v1.WatchEvent", watch.responseSerialize({ changed: peerInfo(1, 0, MAX_PEER_PATHS) })), null);
    assert.match(messageProblem("wormhole.v1.WatchEvent", watch.responseSerialize({ changed: peerInfo(1, 0, MAX_PEER_PATHS + 1) })) ?? "", /more than 512 paths/);
  });

  it(`refuses more than ${MAX_PEER_CANDIDATES} candidates for one peer`, () => {
    assert.equal(messageProblem("wormhole.v1.WatchEvent", watch.responseSerialize({ changed: peerInfo(1, MAX_PEER_CANDIDATES) })), null);
    assert.match(messageProblem("wormhole.v1.WatchEvent", watch.responseSerialize({ changed: peerInfo(1, MAX_PEER_CANDIDATES + 1) })) ?? "", /more than 16 candidates/);
  });

  it("refuses a message that would decode to too many values, counting only fields the node reads", () => {
    const bytes = snapshot([peerInfo(1, 4, 0), peerInfo(2, 4, 0)]);
    // Per peer: the entry, key, endpoint + ip + port, one allowed IP, 4 × (candidate + ip + port) = 18; plus the snapshot, its key and relay.
    assert.equal(messageProblem("wormhole.v1.WatchEvent", bytes, 39), null);
    assert.match(messageProblem("wormhole.v1.WatchEvent", bytes, 38) ?? "", /more than 38 values/);
    // A path counts its entry, key and kind (3); its time, endpoint and RTT are skipped unread.
    const withPaths = snapshot([peerInfo(1, 4, 10), peerInfo(2, 4, 10)]);
    assert.equal(messageProblem("wormhole.v1.WatchEvent", withPaths, 39 + 60), null);
    assert.match(messageProblem("wormhole.v1.WatchEvent", withPaths, 38 + 60) ?? "", /more than 98 values/);
    assert.ok(MAX_DECODED_VALUES >= 10_000 * (3 + 2 + 3 * MAX_PEER_CANDIDATES), "10,000 peers with every candidate fit");
  });

  const malformed: Array<[string, Buffer, RegExp]> = [
    ["a truncated length", Buffer.from([0x0a, 0x05, 0x12]), /runs past the end/],
    ["a truncated varint", Buffer.from([0x0a, 0x80]), /ends inside a number/],
    ["an 11-byte varint", Buffer.from([0x20, ...Array(10).fill(0xff), 0x01]), /longer than 10 bytes/],
    ["a group", Buffer.from([0x0b, 0x0c]), /wire type 3/],
    ["wire type 7", Buffer.from([0x0f]), /wire type 7/],
    ["field number 0", Buffer.from([0x02, 0x00]), /field number 0/],
    ["the snapshot as a number", Buffer.from([0x08, 0x01]), /WatchEvent\.snapshot has wire type 0; expected 2/],
    ["a peer's key as a number", len(2, Buffer.from([0x08, 0x05])), /PeerInfo\.publicKey has wire type 0/],
    ["a port as a string", len(2, len(2, Buffer.from([0x12, 0x01, 0x35]))), /Endpoint\.port has wire type 2; expected 0/],
    ["a truncated fixed64 in a skipped field", len(2, Buffer.from([0x19, 1, 2, 3])), /ends inside a fixed-size number/],
  ];
  for (const [name, bytes, why] of malformed) {
    it(`refuses ${name}`, () => {
      const problem = messageProblem("wormhole.v1.WatchEvent", bytes);
      assert.match(problem ?? "(none)", why);
      assert.throws(() => guardedWatch.responseDeserialize(bytes), (e: Error) => e.message === problem);
    });
  }

  it("skips fields it does not read, of every wire type", () => {
    // PeerInfo with unknown fields 20 (varint), 21 (fixed64), 22 (bytes), 23 (fixed32), then its key.
    const w = protobuf.Writer.create();
    w.uint32((20 << 3) | 0).uint64(123456789);
    w.uint32((21 << 3) | 1).fixed64(1);
    w.uint32((22 << 3) | 2).bytes(Buffer.alloc(300, 7));
    w.uint32((23 << 3) | 5).fixed32(9);
    w.uint32((1 << 3) | 2).string(key(4));
    const bytes = len(2, w.finish());
    assert.equal(messageProblem("wormhole.v1.WatchEvent", bytes), null);
    assert.equal((guardedWatch.responseDeserialize(bytes) as { changed: { publicKey: string } }).changed.publicKey, key(4));
  });

  it("on arbitrary bytes never throws; what it lets through decodes within the limits (property)", () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      // Mutations of an honest event: most decode far enough to matter.
      fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.boolean()).map(([at, junk, cut]) => {
        const good = snapshot([peerInfo(1, 2, 1), peerInfo(2, 1, 0)]);
        const i = at % good.length;
        return cut ? good.subarray(0, i) : Buffer.concat([good.subarray(0, i), junk, good.subarray(i + junk.length)]);
      }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(bytes, (b) => {
        const problem = messageProblem("wormhole.v1.WatchEvent", b, 200);
        assert.ok(problem === null || problem.startsWith("registry sent a WatchEvent"), problem ?? "");
        if (problem !== null) return;
        accepted++;
        let event: { snapshot?: { peers?: Array<{ candidates?: unknown[] }> } | null; changed?: { candidates?: unknown[] } | null };
        try {
          event = guardedWatch.responseDeserialize(Buffer.from(b)) as typeof event;
        } catch {
          return; // protobufjs may still refuse (a bad UTF-8 length, say): the call fails cleanly
        }
        const peers = event.snapshot?.peers ?? [];
        assert.ok(peers.length <= 200);
        for (const p of [...peers, ...(event.changed ? [event.changed] : [])]) assert.ok((p.candidates?.length ?? 0) <= MAX_PEER_CANDIDATES);
      }),
      { numRuns: 3000 },
    );
    assert.ok(accepted > 100, `only ${accepted} accepted: the property tested little`);
  });
});

// ---------------------------------------------------------------- the source's handling

function warnings(): WarnSink & { records: Array<{ fields: Record<string, unknown>; message: string }> } {
  const records: Array<{ fields: Record<string, unknown>; message: string }> = [];
  return { records, warn: (fields, message) => records.push({ fields: fields as Record<string, unknown>, message }) };
}

describe("applyWatchEvent and viewFromSeedReply", () => {
  it("keep a peer with an unusable endpoint as known without one, and warn once per message with a count", () => {
    const log = warnings();
    const state: WatchState = { endpoints: new Map(), candidates: new Map(), allowedIps: new Map() };
    const peers = [
      { publicKey: key(1), endpoint: { ip: "127.0.0.1", port: 51820 }, candidates: [{ ip: "224.0.0.1", port: 1 }, { ip: "192.168.1.5", port: 51820 }] },
      { publicKey: key(2), endpoint: { ip: "203.0.113.2", port: 0 }, candidates: [] },
      { publicKey: key(3), endpoint: { ip: "203.0.113.3", port: 3 }, candidates: [] },
      { publicKey: "nope", endpoint: { ip: "203.0.113.4", port: 4 }, candidates: [] },
    ];
    assert.equal(applyWatchEvent(state, { event: "snapshot", snapshot: { relay: false, registryPublicKey: key(9), peers } } as never, log), true);
    assert.deepEqual([...state.endpoints], [
      [key(1), null],
      [key(2), null],
      [key(3), { ip: "203.0.113.3", port: 3 }],
    ]);
    assert.deepEqual(state.candidates.get(key(1)), [{ ip: "192.168.1.5", port: 51820 }]);
    assert.deepEqual(
      log.records.map((r) => [r.message, r.fields.count]),
      [
        ["registry sent peers whose public key is not a WireGuard key; ignoring them", 1],
        ["registry sent endpoints this node will not use; ignoring them", 3],
      ],
    );

    const seed = viewFromSeedReply({ Peers: [{ pubKey: key(1), endpointIP: "::1", endpointPort: 5 }, { pubKey: key(2), endpointIP: "198.51.100.2", endpointPort: 2 }] }, log);
    assert.deepEqual([...seed], [
      [key(1), null],
      [key(2), { ip: "198.51.100.2", port: 2 }],
    ]);
  });

  it(`never holds more than ${MAX_VIEW_PEERS} peers, however many changes arrive; known peers still change`, () => {
    const state: WatchState = { endpoints: new Map(), candidates: new Map(), allowedIps: new Map() };
    const log = warnings();
    const keyOf = (n: number) => {
      const b = Buffer.alloc(32);
      b.writeUInt32BE(n);
      return b.toString("base64");
    };
    for (let n = 0; n <= MAX_VIEW_PEERS; n++) applyWatchEvent(state, { event: "changed", changed: { publicKey: keyOf(n), endpoint: { ip: "203.0.113.1", port: 1 }, candidates: [] } } as never, log);
    assert.equal(state.endpoints.size, MAX_VIEW_PEERS);
    assert.equal(state.endpoints.has(keyOf(MAX_VIEW_PEERS)), false);
    applyWatchEvent(state, { event: "changed", changed: { publicKey: keyOf(7), endpoint: { ip: "203.0.113.7", port: 7 }, candidates: [] } } as never, log);
    assert.deepEqual(state.endpoints.get(keyOf(7)), { ip: "203.0.113.7", port: 7 });
    applyWatchEvent(state, { event: "removedPublicKey", removedPublicKey: keyOf(7) } as never, log);
    assert.equal(state.endpoints.size, MAX_VIEW_PEERS - 1);
  });

  it("read events of the wrong shape without throwing", () => {
    const state: WatchState = { endpoints: new Map(), candidates: new Map(), allowedIps: new Map() };
    for (const e of [null, undefined, 5, "x", {}, { event: "snapshot" }, { event: "snapshot", snapshot: { peers: 5 } }, { event: "snapshot", snapshot: { peers: [null, 5, { publicKey: 5 }] } }, { event: "changed", changed: { publicKey: key(1), endpoint: 5, candidates: "x" } }]) {
      assert.equal(typeof applyWatchEvent(state, e as never, warnings()), "boolean");
    }
    assert.deepEqual([...state.endpoints], [[key(1), null]]);
    for (const r of [null, undefined, {}, { Peers: 5 }, { Peers: [null, { pubKey: 5 }] }]) assert.deepEqual([...viewFromSeedReply(r as never, warnings())], []);
  });
});
