import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { relayedPairs } from "../../src/registry/metrics.js";
import { statusPageHostAllowed } from "../../src/registry/http.js";
import { seedProto } from "../../src/rpc/proto.js";
import { PeerTable } from "../../src/registry/table.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { captureLogger } from "../support/logs.js";
import { diffPeers, nextPeerMap, seedReply, type PeerMap } from "../../src/registry/view.js";
import type { PathKind, PathState } from "../../src/util/path.js";
import type { WgDevice, WgPeer } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

function peer(n: number, p: Partial<WgPeer> = {}): WgPeer {
  return {
    publicKey: key(n),
    endpoint: null,
    lastHandshakeMs: 0,
    rxBytes: 0,
    txBytes: 0,
    allowedIps: [`10.200.0.${n}/32`],
    persistentKeepaliveSec: 0,
    hasPresharedKey: false,
    ...p,
  };
}

describe("seedReply", () => {
  it("fills the seed's fields the way the seed did", () => {
    const device: WgDevice = {
      name: "wg0",
      type: "kernel",
      publicKey: key(9),
      listenPort: 51820,
      peers: [
        peer(1, { endpoint: { ip: "198.51.100.1", port: 4000 }, lastHandshakeMs: 1_700_000_000_999, rxBytes: 10, txBytes: 20 }),
        peer(2, { endpoint: { ip: "2001:db8::2", port: 51820 }, allowedIps: ["10.200.0.2/32", "fd00::2/128"] }),
      ],
    };
    assert.deepEqual(seedReply(device), {
      deviceName: "wg0",
      deviceType: "Linux kernel",
      pubKey: key(9),
      Peers: [
        { pubKey: key(1), lastHandshakeUnixTimestamp: 1_700_000_000, TransmitBytes: 20, ReceiveBytes: 10, AllowedIPs: ["10.200.0.1/32"], endpointIP: "198.51.100.1", endpointPort: 4000 },
        { pubKey: key(2), AllowedIPs: ["10.200.0.2/32", "fd00::2/128"], endpointIP: "2001:db8::2", endpointPort: 51820 },
      ],
    });
  });

  it("says userspace for a userspace device and leaves a missing endpoint out", () => {
    const reply = seedReply({ name: "wg1", type: "userspace", publicKey: key(9), listenPort: 1, peers: [peer(1)] });
    assert.equal(reply.deviceType, "userspace");
    assert.equal(reply.Peers?.[0]?.endpointIP, undefined);
    assert.equal(reply.Peers?.[0]?.endpointPort, undefined);
  });

  it("puts no zero value on the wire, as the seed's Go protobuf did", () => {
    const bytes = seedProto.Registry.service.GetEndpoint.responseSerialize(
      seedReply({ name: "wg1", type: "userspace", publicKey: key(9), listenPort: 1, peers: [peer(1, { allowedIps: [] })] }),
    );
    const decodedPeer = Buffer.concat([Buffer.from([0x12, 44]), Buffer.from(key(1))]); // field 2 (pubKey), and nothing else
    assert.ok(bytes.subarray(bytes.length - decodedPeer.length - 2).equals(Buffer.concat([Buffer.from([0x22, decodedPeer.length]), decodedPeer])));
  });
});

describe("nextPeerMap and diffPeers", () => {
  it("reports new peers, moved endpoints, changed allowed IPs and removals; not handshakes or counters", () => {
    const first = nextPeerMap(new Map(), [peer(1), peer(2, { endpoint: { ip: "198.51.100.2", port: 1 } }), peer(3)]);
    assert.deepEqual(
      diffPeers(new Map(), first).changed.map((p) => p.publicKey),
      [key(1), key(2), key(3)],
    );
    const second = nextPeerMap(first, [
      peer(1, { lastHandshakeMs: 5, rxBytes: 100 }),
      peer(2, { endpoint: { ip: "198.51.100.2", port: 2 } }),
      peer(4, { allowedIps: ["10.200.0.44/32"] }),
    ]);
    const d = diffPeers(first, second);
    assert.deepEqual(
      d.changed.map((p) => p.publicKey),
      [key(2), key(4)],
    );
    assert.deepEqual(d.removed, [key(3)]);
    assert.equal(second.get(key(1))?.endpointRevision, 1);
    assert.equal(second.get(key(2))?.endpointRevision, 2);
    const third = nextPeerMap(second, [peer(1, { allowedIps: ["10.200.0.1/32", "10.200.1.0/24"] }), peer(2, { endpoint: { ip: "198.51.100.2", port: 2 } }), peer(4, { allowedIps: ["10.200.0.44/32"] })]);
    assert.deepEqual(
      diffPeers(second, third).changed.map((p) => p.publicKey),
      [key(1)],
    );
  });
});

describe("relayedPairs (the metric)", () => {
  const A = key(1);
  const B = key(2);
  const C = key(3);
  const path = (peer: string, kind: PathKind) => ({ peerPublicKey: peer, kind, sinceMs: 0, endpoint: null });
  const table = (reports: Record<string, PathState[]>, peers = [A, B, C]) => ({
    peers: new Map(peers.map((k) => [k, {}])) as unknown as PeerMap,
    reportOf: (k: string) => (reports[k] ? { candidates: [], paths: reports[k], atMs: 0 } : undefined),
  });
  const cases: Array<[string, Record<string, PathState[]>, number, string[]?]> = [
    ["no reports", {}, 0],
    ["direct paths are not counted", { [A]: [path(B, "direct")], [B]: [path(A, "lan")] }, 0],
    ["one end says relayed", { [A]: [path(B, "relayed")] }, 1],
    ["both ends say relayed: one pair", { [A]: [path(B, "relayed")], [B]: [path(A, "relayed")] }, 1],
    ["two pairs", { [A]: [path(B, "relayed"), path(C, "relayed")], [C]: [path(A, "direct")] }, 2],
    ["a pair with a peer that is gone is not counted", { [A]: [path(C, "relayed")] }, 0, [A, B]],
  ];
  for (const [name, reports, want, peers] of cases) it(name, () => assert.equal(relayedPairs(table(reports, peers)), want));
});

describe("PeerTable.report: what Watch hears of", () => {
  it("a report whose candidates changed; not one whose paths changed (Watch carries none)", async () => {
    const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9), peers: [{ publicKey: key(1), allowedIps: ["10.200.0.2/32"] }, { publicKey: key(2), allowedIps: ["10.200.0.3/32"] }] }]);
    const table = new PeerTable({ wg, iface: "wg0", pollIntervalMs: 60_000, logger: captureLogger().logger });
    await table.start();
    try {
      let events = 0;
      table.subscribe(() => events++);
      const cand = [{ ip: "192.168.1.2", port: 51820 }];
      const path = (kind: PathKind, sinceMs = 0) => ({ peerPublicKey: key(2), kind, sinceMs, endpoint: null });
      const other = [{ ip: "192.168.1.3", port: 51820 }];
      const steps: Array<[string, typeof cand, PathState[], number]> = [
        ["the first report", cand, [path("direct")], 1],
        ["the same again", cand, [path("direct")], 1],
        ["direct -> relayed: served by GetPeers only", cand, [path("relayed")], 1],
        ["relayed -> down, since another time: still GetPeers only", cand, [path("down", 5)], 1],
        ["another candidate: watchers must hear it", other, [path("down", 5)], 2],
      ];
      for (const [name, candidates, paths, want] of steps) {
        table.report(key(1), { candidates, paths, atMs: 0 });
        assert.equal(events, want, name);
      }
    } finally {
      table.stop();
    }
  });
});

describe("statusPageHostAllowed", () => {
  const cases: Array<[string | undefined, boolean]> = [
    [undefined, true],
    ["127.0.0.1", true],
    ["127.0.0.1:9638", true],
    ["[::1]:9638", true],
    ["[::1]", true],
    ["localhost:9638", true],
    ["LOCALHOST", true],
    ["10.200.0.1:9638", true],
    ["rebind.attacker.example", false],
    ["rebind.attacker.example:9638", false],
    ["localhost.attacker.example", false],
    ["", false],
    [":9638", false],
    ["[not-an-ip]:1", false],
  ];
  for (const [host, want] of cases) it(`${JSON.stringify(host)} -> ${want}`, () => assert.equal(statusPageHostAllowed(host), want));
});
