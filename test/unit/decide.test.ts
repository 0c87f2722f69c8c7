import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide, DEFAULT_KEEPALIVE_SEC, HEALTHY_HANDSHAKE_MS, type Verdict } from "../../src/node/decide.js";
import type { Endpoint, PeerUpdate, WgDevice, WgPeer } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const A: Endpoint = { ip: "198.51.100.7", port: 40001 };
const B: Endpoint = { ip: "198.51.100.7", port: 40002 };
const V6: Endpoint = { ip: "2001:db8::7", port: 51820 };

function peer(p: Partial<WgPeer>): WgPeer {
  return {
    publicKey: key(1),
    endpoint: null,
    lastHandshakeMs: 0,
    rxBytes: 0,
    txBytes: 0,
    allowedIps: ["10.200.0.2/32"],
    persistentKeepaliveSec: 0,
    hasPresharedKey: false,
    ...p,
  };
}

function device(...peers: WgPeer[]): WgDevice {
  return { name: "wg0", type: "userspace", publicKey: key(99), listenPort: 51820, peers };
}

interface Case {
  name: string;
  peer: Partial<WgPeer>;
  registry: Endpoint | null | "absent";
  applied?: Endpoint;
  verdict: Verdict;
  update: PeerUpdate | null;
}

const recent = NOW - 10_000;
const stale = NOW - HEALTHY_HANDSHAKE_MS - 1;

const cases: Case[] = [
  { name: "registry does not know the peer", peer: {}, registry: "absent", verdict: "unknown", update: null },
  { name: "registry knows the peer without endpoint", peer: { endpoint: A }, registry: null, verdict: "unknown", update: null },
  {
    name: "no local endpoint: take the registry's, with the default keepalive",
    peer: {},
    registry: A,
    verdict: "set",
    update: { publicKey: key(1), endpoint: A, persistentKeepaliveSec: DEFAULT_KEEPALIVE_SEC },
  },
  {
    name: "user's keepalive is kept",
    peer: { persistentKeepaliveSec: 10 },
    registry: A,
    verdict: "set",
    update: { publicKey: key(1), endpoint: A },
  },
  {
    name: "same endpoint, keepalive set: nothing to do",
    peer: { endpoint: A, persistentKeepaliveSec: 25 },
    registry: A,
    verdict: "unchanged",
    update: null,
  },
  {
    name: "same endpoint, no keepalive: add the keepalive only",
    peer: { endpoint: A },
    registry: A,
    verdict: "keepalive",
    update: { publicKey: key(1), persistentKeepaliveSec: DEFAULT_KEEPALIVE_SEC },
  },
  {
    name: "same endpoint written differently (IPv6 case) counts as the same",
    peer: { endpoint: { ip: "2001:DB8::7", port: 51820 }, persistentKeepaliveSec: 25 },
    registry: V6,
    verdict: "unchanged",
    update: null,
  },
  {
    name: "working tunnel on an endpoint WireGuard found itself is not broken",
    peer: { endpoint: B, lastHandshakeMs: recent, persistentKeepaliveSec: 25 },
    registry: A,
    verdict: "keep-working",
    update: null,
  },
  {
    name: "working tunnel on an endpoint we wrote, registry moved: follow the registry",
    peer: { endpoint: B, lastHandshakeMs: recent, persistentKeepaliveSec: 25 },
    registry: A,
    applied: B,
    verdict: "set",
    update: { publicKey: key(1), endpoint: A },
  },
  {
    name: "working tunnel, we wrote something else earlier, WireGuard roamed since: keep",
    peer: { endpoint: B, lastHandshakeMs: recent, persistentKeepaliveSec: 25 },
    registry: A,
    applied: V6,
    verdict: "keep-working",
    update: null,
  },
  {
    name: "stale handshake on a different endpoint: try the registry's",
    peer: { endpoint: B, lastHandshakeMs: stale, persistentKeepaliveSec: 25 },
    registry: A,
    verdict: "set",
    update: { publicKey: key(1), endpoint: A },
  },
  {
    name: "handshake exactly at the limit is stale",
    peer: { endpoint: B, lastHandshakeMs: NOW - HEALTHY_HANDSHAKE_MS, persistentKeepaliveSec: 25 },
    registry: A,
    verdict: "set",
    update: { publicKey: key(1), endpoint: A },
  },
  {
    name: "never handshook on a different endpoint: try the registry's",
    peer: { endpoint: B, persistentKeepaliveSec: 25 },
    registry: A,
    verdict: "set",
    update: { publicKey: key(1), endpoint: A },
  },
];

describe("decide", () => {
  for (const c of cases) {
    it(c.name, () => {
      const registry = new Map<string, Endpoint | null>();
      if (c.registry !== "absent") registry.set(key(1), c.registry);
      const applied = new Map<string, Endpoint>();
      if (c.applied) applied.set(key(1), c.applied);
      const { updates, decisions } = decide({ device: device(peer(c.peer)), registry, applied, nowMs: NOW });
      assert.equal(decisions.length, 1);
      assert.equal(decisions[0]?.verdict, c.verdict, decisions[0]?.reason);
      assert.deepEqual(updates, c.update ? [c.update] : []);
    });
  }

  it("decides each peer on its own and never touches peers the registry lacks", () => {
    const registry = new Map<string, Endpoint | null>([
      [key(1), A],
      [key(3), V6],
    ]);
    const dev = device(peer({ publicKey: key(1) }), peer({ publicKey: key(2), endpoint: B }), peer({ publicKey: key(3) }));
    const { updates } = decide({ device: dev, registry, applied: new Map(), nowMs: NOW });
    assert.deepEqual(
      updates.map((u) => [u.publicKey, u.endpoint]),
      [
        [key(1), A],
        [key(3), V6],
      ],
    );
  });

  it("only ever changes endpoint and keepalive", () => {
    const registry = new Map<string, Endpoint | null>([[key(1), A]]);
    const { updates } = decide({ device: device(peer({})), registry, applied: new Map(), nowMs: NOW });
    for (const u of updates) {
      assert.deepEqual(Object.keys(u).sort(), ["endpoint", "persistentKeepaliveSec", "publicKey"]);
    }
  });

  it("uses the configured keepalive and health window", () => {
    const registry = new Map<string, Endpoint | null>([[key(1), A]]);
    const p = peer({ endpoint: B, lastHandshakeMs: NOW - 20_000 });
    const strict = decide({ device: device(p), registry, applied: new Map(), nowMs: NOW, options: { healthyHandshakeMs: 15_000, defaultKeepaliveSec: 5 } });
    assert.deepEqual(strict.updates, [{ publicKey: key(1), endpoint: A, persistentKeepaliveSec: 5 }]);
  });
});
