import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  PUBLIC_DEFER_MS,
  cannotPunch,
  decide,
  DEFAULT_KEEPALIVE_SEC,
  HEALTHY_HANDSHAKE_MS,
  HEARING_GRACE_MS,
  MAX_PUNCH_ATTEMPTS,
  pathOf,
  rxGrowth,
  targetsFor,
  PUNCH_RETRY_MS,
  type AppliedRecord,
  type DecideOptions,
  type Verdict,
} from "../../src/node/decide.js";
import type { Endpoint, PeerUpdate, WgDevice, WgPeer } from "../../src/wg/types.js";
import { FakeClock } from "../../src/util/clock.js";
import { key } from "../support/keys.js";
import { formatEndpoint } from "../../src/wg/endpoint.js";

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const A: Endpoint = { ip: "198.51.100.7", port: 40001 };
const B: Endpoint = { ip: "198.51.100.7", port: 40002 };
const V6: Endpoint = { ip: "2001:db8::7", port: 51820 };
const ALLOWED = ["10.200.0.2/32"];

function peer(p: Partial<WgPeer>): WgPeer {
  return {
    publicKey: key(1),
    endpoint: null,
    lastHandshakeMs: 0,
    rxBytes: 0,
    txBytes: 0,
    allowedIps: ALLOWED,
    persistentKeepaliveSec: 0,
    hasPresharedKey: false,
    ...p,
  };
}

function baseDevice(...peers: WgPeer[]): WgDevice {
  return { name: "wg0", type: "userspace", publicKey: key(99), listenPort: 51820, peers };
}
const device = baseDevice;

const punch = (to: Endpoint, keepalive = DEFAULT_KEEPALIVE_SEC): PeerUpdate => ({
  publicKey: key(1),
  endpoint: to,
  persistentKeepaliveSec: keepalive,
  recreate: { allowedIps: ALLOWED },
});

interface Case {
  name: string;
  peer: Partial<WgPeer>;
  registry: Endpoint | null | "absent";
  applied?: AppliedRecord;
  selfMoved?: boolean;
  rxGrewAtMs?: number;
  options?: DecideOptions;
  verdict: Verdict;
  update: PeerUpdate | null;
  /** The record kept for the peer after this pass (absent: none written). */
  record?: AppliedRecord;
  nextDueMs?: number | null;
}

const recent = NOW - 10_000;
const stale = NOW - HEALTHY_HANDSHAKE_MS - 1;
const mine = (endpoint: Endpoint, attempts = 1, atMs = NOW - 5_000): AppliedRecord => ({ endpoint, atMs, attempts });

const cases: Case[] = [
  { name: "registry does not know the peer", peer: {}, registry: "absent", verdict: "unknown", update: null },

  { name: "registry knows the peer without endpoint", peer: { endpoint: A }, registry: null, verdict: "unknown", update: null },
  {
    name: "no local endpoint: punch the registry's, with the default keepalive",
    peer: {},
    registry: A,
    verdict: "punch",
    update: punch(A),
    record: { endpoint: A, atMs: NOW, attempts: 1, lead: A },
    nextDueMs: NOW + PUNCH_RETRY_MS,
  },
  {
    name: "a punch keeps the user's keepalive",
    peer: { persistentKeepaliveSec: 10 },
    registry: A,
    verdict: "punch",
    update: punch(A, 10),
  },
  {
    name: "a peer with a preshared key is never re-created: endpoint and keepalive only",
    peer: { hasPresharedKey: true },
    registry: A,
    verdict: "set",
    update: { publicKey: key(1), endpoint: A, persistentKeepaliveSec: DEFAULT_KEEPALIVE_SEC },
    record: { endpoint: A, atMs: NOW, attempts: 0, lead: A },
    nextDueMs: null,
  },
  {
    name: "punching turned off: endpoint only, the user's keepalive kept",
    peer: { persistentKeepaliveSec: 10 },
    registry: A,
    options: { recreate: false },
    verdict: "set",
    update: { publicKey: key(1), endpoint: A },
  },
  {
    name: "same endpoint, keepalive set, not ours: nothing to do",
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
    applied: mine(B),
    verdict: "punch",
    update: punch(A, 25),
  },
  {
    name: "working tunnel, we wrote something else earlier, WireGuard roamed since: keep",
    peer: { endpoint: B, lastHandshakeMs: recent, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(V6),
    verdict: "keep-working",
    update: null,
  },
  {
    name: "stale handshake on a different endpoint: punch the registry's",
    peer: { endpoint: B, lastHandshakeMs: stale, persistentKeepaliveSec: 25 },
    registry: A,
    verdict: "punch",
    update: punch(A, 25),
  },
  {
    name: "handshake exactly at the limit is stale",
    peer: { endpoint: B, lastHandshakeMs: NOW - HEALTHY_HANDSHAKE_MS, persistentKeepaliveSec: 25 },
    registry: A,
    verdict: "punch",
    update: punch(A, 25),
  },
  {
    name: "our punch got no handshake within the retry time: punch again",
    peer: { endpoint: A, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, 1, NOW - PUNCH_RETRY_MS),
    verdict: "repunch",
    update: punch(A, 25),
    record: { endpoint: A, atMs: NOW, attempts: 2, lead: A },
    nextDueMs: NOW + PUNCH_RETRY_MS,
  },
  {
    name: "our punch is younger than the retry time: wait, and say when to look again",
    peer: { endpoint: A, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, 1, NOW - 200),
    verdict: "unchanged",
    update: null,
    nextDueMs: NOW - 200 + PUNCH_RETRY_MS,
  },
  {
    name: "the last punch attempt is not followed by another",
    peer: { endpoint: A, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, MAX_PUNCH_ATTEMPTS - 1, NOW - 2 * PUNCH_RETRY_MS),
    verdict: "repunch",
    update: punch(A, 25),
    record: { endpoint: A, atMs: NOW, attempts: MAX_PUNCH_ATTEMPTS, lead: A },
    nextDueMs: null,
  },
  {
    name: "after the last attempt, WireGuard's own retries carry on",
    peer: { endpoint: A, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, MAX_PUNCH_ATTEMPTS, NOW - 60_000),
    verdict: "unchanged",
    update: null,
    nextDueMs: null,
  },
  {
    name: "the peer reached us from elsewhere since our punch (WireGuard roamed): do not kill its handshake",
    peer: { endpoint: B, rxBytes: 148, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, 1, NOW - PUNCH_RETRY_MS),
    rxGrewAtMs: NOW - 300,
    verdict: "hearing",
    update: null,
    nextDueMs: NOW - 300 + HEARING_GRACE_MS,
  },
  {
    name: "first sight: the peer is answering a handshake we did not start; do not punch over it",
    peer: { endpoint: B, rxBytes: 148 },
    registry: A,
    rxGrewAtMs: NOW,
    verdict: "hearing",
    update: null,
  },
  {
    name: "hearing from the peer without a handshake for longer than the grace: punch again",
    peer: { endpoint: A, rxBytes: 148, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, 1, NOW - HEARING_GRACE_MS),
    rxGrewAtMs: NOW - HEARING_GRACE_MS,
    verdict: "repunch",
    update: punch(A, 25),
  },
  {
    name: "our own mapping moved: punch even while hearing (the peer hears a dead mapping)",
    peer: { endpoint: A, rxBytes: 148, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, 3, NOW - 60_000),
    rxGrewAtMs: NOW - 100,
    selfMoved: true,
    verdict: "repunch",
    update: punch(A, 25),
  },
  {
    name: "a punch that worked is left alone",
    peer: { endpoint: A, lastHandshakeMs: recent, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, 1, NOW - 5_000),
    verdict: "unchanged",
    update: null,
  },
  {
    name: "this node's own mapping moved: punch a working peer we punched before",
    peer: { endpoint: A, lastHandshakeMs: recent, persistentKeepaliveSec: 25 },
    registry: A,
    applied: mine(A, MAX_PUNCH_ATTEMPTS, NOW - 60_000),
    selfMoved: true,
    verdict: "repunch",
    update: punch(A, 25),
  },
  {
    name: "this node's own mapping moved: an endpoint we did not write is not touched",
    peer: { endpoint: A, lastHandshakeMs: recent, persistentKeepaliveSec: 25 },
    registry: A,
    selfMoved: true,
    verdict: "unchanged",
    update: null,
  },
];

describe("rxGrowth", () => {
  const p = (rxBytes: number, lastHandshakeMs = 0) => peer({ rxBytes, lastHandshakeMs });
  it("first sight: growth now only for a peer that never handshook and has received something", () => {
    assert.equal(rxGrowth(undefined, p(0), NOW).grewAtMs, -Infinity);
    assert.equal(rxGrowth(undefined, p(92), NOW).grewAtMs, NOW);
    assert.equal(rxGrowth(undefined, p(92, NOW - 1000), NOW).grewAtMs, -Infinity);
  });
  it("later: growth when the counter rises, or restarts from a reset; unchanged otherwise", () => {
    const s0 = { rxBytes: 100, grewAtMs: NOW - 9_000 };
    assert.equal(rxGrowth(s0, p(100), NOW).grewAtMs, NOW - 9_000);
    assert.equal(rxGrowth(s0, p(148), NOW).grewAtMs, NOW);
    assert.equal(rxGrowth(s0, p(0), NOW).grewAtMs, NOW - 9_000, "a reset to zero is no news");
    assert.equal(rxGrowth({ rxBytes: 0, grewAtMs: -Infinity }, p(92), NOW).grewAtMs, NOW);
    assert.equal(rxGrowth(s0, p(40), NOW).grewAtMs, NOW, "reset then received: news");
  });
});

describe("decide", () => {
  for (const c of cases) {
    it(c.name, () => {
      const registry = new Map<string, Endpoint | null>();
      if (c.registry !== "absent") registry.set(key(1), c.registry);
      const applied = new Map<string, AppliedRecord>();
      if (c.applied) applied.set(key(1), c.applied);
      const rxGrewAtMs = new Map(c.rxGrewAtMs === undefined ? [] : [[key(1), c.rxGrewAtMs]]);
      const result = decide({ device: device(peer(c.peer)), registry, applied, nowMs: NOW, selfMoved: c.selfMoved ?? false, rxGrewAtMs, ...(c.options ? { options: c.options } : {}) });
      assert.equal(result.decisions.length, 1);
      assert.equal(result.decisions[0]?.verdict, c.verdict, result.decisions[0]?.reason);
      assert.deepEqual(result.updates, c.update ? [c.update] : []);
      if (c.record !== undefined) assert.deepEqual(result.applied.get(key(1)), c.record);
      if (!c.update?.endpoint) assert.equal(result.applied.size, 0, "nothing written, nothing recorded");
      if (c.nextDueMs !== undefined) assert.equal(result.nextDueMs, c.nextDueMs);
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

  it("only ever changes endpoint and keepalive, and re-creates with the peer's own allowed IPs", () => {
    const registry = new Map<string, Endpoint | null>([[key(1), A]]);
    const allowed = ["10.200.0.2/32", "fd00::2/128", "192.168.50.0/24"];
    const { updates } = decide({ device: device(peer({ allowedIps: allowed })), registry, applied: new Map(), nowMs: NOW });
    for (const u of updates) {
      assert.deepEqual(Object.keys(u).sort(), ["endpoint", "persistentKeepaliveSec", "publicKey", "recreate"]);
      assert.deepEqual(u.recreate?.allowedIps, allowed);
    }
  });

  it("uses the configured keepalive and health window", () => {
    const registry = new Map<string, Endpoint | null>([[key(1), A]]);
    const p = peer({ endpoint: B, lastHandshakeMs: NOW - 20_000 });
    const strict = decide({ device: device(p), registry, applied: new Map(), nowMs: NOW, options: { healthyHandshakeMs: 15_000, defaultKeepaliveSec: 5 } });
    assert.deepEqual(strict.updates, [punch(A, 5)]);
  });

  it("a punch that never gets through is tried MAX_PUNCH_ATTEMPTS times, then left to WireGuard (fake clock)", () => {
    const clock = new FakeClock(NOW);
    const registry = new Map<string, Endpoint | null>([[key(1), A]]);
    const applied = new Map<string, AppliedRecord>();
    let current: WgPeer = peer({});
    let punches = 0;
    for (let step = 0; step < 40; step++) {
      const r = decide({ device: device(current), registry, applied, nowMs: clock.now() });
      for (const [k, v] of r.applied) applied.set(k, v);
      for (const u of r.updates) {
        if (u.recreate) punches += 1;
        current = { ...current, endpoint: u.endpoint ?? current.endpoint, persistentKeepaliveSec: u.persistentKeepaliveSec ?? current.persistentKeepaliveSec };
      }
      clock.advance(250);
    }
    assert.equal(punches, MAX_PUNCH_ATTEMPTS);
  });
});

describe("decide: peers behind our own NAT", () => {
  /** This end's key sorts before the peer's: it initiates on the LAN (rule 9). */
  const device = (...peers: WgPeer[]): WgDevice => ({ ...baseDevice(...peers), publicKey: key(0) });
  const LAN: Endpoint = { ip: "192.168.1.11", port: 51820 };
  const SELF: Endpoint = { ip: A.ip, port: 40009 }; // same public address as A
  const base = { registry: new Map<string, Endpoint | null>([[key(1), A]]), candidates: new Map([[key(1), [LAN]]]), nowMs: NOW };

  it("targetsFor: LAN candidates first only when the public address is ours", () => {
    assert.deepEqual(targetsFor(A, [LAN], SELF), [LAN, A]);
    assert.deepEqual(targetsFor(A, [LAN], { ip: "203.0.113.9", port: 1 }), [A]);
    assert.deepEqual(targetsFor(A, [], SELF), [A]);
    assert.deepEqual(targetsFor(A, [LAN, LAN, A], SELF), [LAN, A]);
    assert.deepEqual(targetsFor(A, [LAN], null), [A]);
  });

  it("punches the LAN candidate first, then moves to the public mapping when it gets no answer", () => {
    const first = decide({ ...base, device: device(peer({})), applied: new Map(), selfEndpoint: SELF });
    assert.deepEqual(first.updates, [punch(LAN)]);
    const applied = new Map(first.applied);
    const later = decide({
      ...base,
      nowMs: NOW + PUNCH_RETRY_MS,
      device: device(peer({ endpoint: LAN, persistentKeepaliveSec: 25 })),
      applied,
      selfEndpoint: SELF,
    });
    assert.equal(later.decisions[0]?.verdict, "repunch");
    assert.deepEqual(later.updates, [punch(A, 25)]);
  });

  it("candidates that arrive after the first punch at the public mapping are punched at once, not a retry interval later", () => {
    const r = decide({
      ...base,
      nowMs: NOW + 50,
      device: device(peer({ endpoint: A, persistentKeepaliveSec: 25 })),
      applied: new Map([[key(1), { endpoint: A, atMs: NOW, attempts: 1, lead: A }]]),
      selfEndpoint: SELF,
    });
    assert.equal(r.decisions[0]?.verdict, "punch");
    assert.deepEqual(r.updates, [punch(LAN, 25)]);
    assert.deepEqual(r.applied.get(key(1)), { endpoint: LAN, atMs: NOW + 50, attempts: 1, lead: LAN });
    // Without candidates, the same state only waits for the retry.
    const alone = decide({ ...base, candidates: new Map(), nowMs: NOW + 50, device: device(peer({ endpoint: A, persistentKeepaliveSec: 25 })), applied: new Map([[key(1), { endpoint: A, atMs: NOW, attempts: 1, lead: A }]]), selfEndpoint: SELF });
    assert.deepEqual(alone.updates, []);
  });

  it("the end with the higher key does not initiate on the LAN at once: it points the peer there and waits (rule 9)", () => {
    const r = decide({ ...base, device: { ...baseDevice(peer({})), publicKey: key(2) }, applied: new Map(), selfEndpoint: SELF });
    assert.equal(r.decisions[0]?.verdict, "set");
    assert.deepEqual(r.updates, [{ publicKey: key(1), endpoint: LAN, persistentKeepaliveSec: DEFAULT_KEEPALIVE_SEC }]);
    assert.equal(r.applied.get(key(1))?.deferred, true);
  });

  it("a working LAN path stays, even when the public mapping moves", () => {
    const r = decide({
      ...base,
      registry: new Map([[key(1), { ip: A.ip, port: 1 }]]),
      device: device(peer({ endpoint: LAN, lastHandshakeMs: NOW - 1_000, persistentKeepaliveSec: 25 })),
      applied: new Map([[key(1), { endpoint: LAN, atMs: NOW - 60_000, attempts: 1 }]]),
      selfEndpoint: SELF,
      selfMoved: true,
    });
    assert.equal(r.decisions[0]?.verdict, "unchanged");
    assert.deepEqual(r.updates, []);
  });

  it("pathOf: down without a session, lan at a candidate, direct otherwise", () => {
    assert.equal(pathOf(peer({ endpoint: LAN }), [LAN], NOW), "down");
    assert.equal(pathOf(peer({ endpoint: LAN, lastHandshakeMs: NOW - 1 }), [LAN], NOW), "lan");
    assert.equal(pathOf(peer({ endpoint: A, lastHandshakeMs: NOW - 1 }), [LAN], NOW), "direct");
    assert.equal(pathOf(peer({ endpoint: A, lastHandshakeMs: NOW - HEALTHY_HANDSHAKE_MS }), [], NOW), "down");
    // A public host reports its own public address as a candidate: reaching it there is direct.
    assert.equal(pathOf(peer({ endpoint: A, lastHandshakeMs: NOW - 1 }), [A], NOW), "direct");
  });
});

describe("decide: IPv6 candidates (rules 7 and 8)", () => {
  /** The peer's public IPv4 mapping (the registry's endpoint), its global IPv6 address, and candidates never to try. */
  const P4: Endpoint = { ip: "203.0.113.104", port: 40001 };
  const P6: Endpoint = { ip: "2001:db8:4:1::10", port: 51820 };
  const P6B: Endpoint = { ip: "2001:db8:4:1::99", port: 51820 };
  const ULA: Endpoint = { ip: "fd12:3456::10", port: 51820 };
  const LINK: Endpoint = { ip: "fe80::10", port: 51820 };
  const LAN: Endpoint = { ip: "192.168.4.10", port: 51820 };
  const SELF: Endpoint = { ip: "203.0.113.103", port: 40009 };
  const SAME_NAT: Endpoint = { ip: P4.ip, port: 40009 };

  const order: Array<{ name: string; candidates: Endpoint[]; self: Endpoint | null; selfIpv6: boolean; registry?: Endpoint; want: Endpoint[] }> = [
    { name: "both ends have IPv6: the peer's IPv6 address, then its IPv4 mapping", candidates: [P6], self: SELF, selfIpv6: true, want: [P6, P4] },
    { name: "this node has no IPv6: the IPv4 mapping only", candidates: [P6], self: SELF, selfIpv6: false, want: [P4] },
    { name: "this node has IPv6 and the peer reported none: the IPv4 mapping only", candidates: [], self: SELF, selfIpv6: true, want: [P4] },
    { name: "a ULA candidate is never tried", candidates: [ULA], self: SELF, selfIpv6: true, want: [P4] },
    { name: "a link-local candidate is never tried", candidates: [LINK], self: SELF, selfIpv6: true, want: [P4] },
    { name: "ULA and link-local are never tried even behind the same NAT", candidates: [ULA, LINK, LAN], self: SAME_NAT, selfIpv6: true, want: [LAN, P4] },
    { name: "behind the same NAT: LAN first, then IPv6, then the mapping", candidates: [P6, LAN], self: SAME_NAT, selfIpv6: true, want: [LAN, P6, P4] },
    { name: "behind the same NAT without IPv6 here: LAN, then the mapping", candidates: [P6, LAN], self: SAME_NAT, selfIpv6: false, want: [LAN, P4] },
    { name: "a private IPv4 candidate is not tried across NATs, IPv6 or not", candidates: [LAN, P6], self: SELF, selfIpv6: true, want: [P6, P4] },
    { name: "several IPv6 addresses: each, in the peer's order", candidates: [P6, P6B], self: SELF, selfIpv6: true, want: [P6, P6B, P4] },
    { name: "an IPv6-only peer (the registry sees it at its IPv6 address): tried once there", candidates: [P6], self: SELF, selfIpv6: true, registry: P6, want: [P6] },
    { name: "not knowing our own mapping: IPv6 still first", candidates: [P6], self: null, selfIpv6: true, want: [P6, P4] },
  ];
  for (const c of order) {
    it(`targetsFor: ${c.name}`, () => assert.deepEqual(targetsFor(c.registry ?? P4, c.candidates, c.self, c.selfIpv6), c.want));
  }

  const punchAt = (to: Endpoint) => punch(to, 25);
  const cases: Array<{
    name: string;
    peer: Partial<WgPeer>;
    candidates: Endpoint[];
    selfIpv6: boolean;
    applied?: AppliedRecord;
    rxGrewAtMs?: number;
    verdict: Verdict;
    update: PeerUpdate | null;
    record?: AppliedRecord;
  }> = [
    {
      name: "no endpoint yet and both ends have IPv6: the first punch goes to the peer's IPv6 address",
      peer: { persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      verdict: "punch",
      update: punchAt(P6),
      record: { endpoint: P6, atMs: NOW, attempts: 1, lead: P6 },
    },
    {
      name: "no handshake at IPv6 within the retry time: the next punch goes to the IPv4 mapping, still led by IPv6",
      peer: { endpoint: P6, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      applied: { endpoint: P6, atMs: NOW - PUNCH_RETRY_MS, attempts: 1, lead: P6 },
      verdict: "repunch",
      update: punchAt(P4),
      record: { endpoint: P4, atMs: NOW, attempts: 2, lead: P6 },
    },
    {
      name: "the IPv4 punch led by IPv6 gets no answer: back to IPv6, not started over",
      peer: { endpoint: P4, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      applied: { endpoint: P4, atMs: NOW - PUNCH_RETRY_MS, attempts: 2, lead: P6 },
      verdict: "repunch",
      update: punchAt(P6),
      record: { endpoint: P6, atMs: NOW, attempts: 3, lead: P6 },
    },
    {
      name: "the peer's IPv6 address arrives after every IPv4 punch failed: punching starts over at IPv6",
      peer: { endpoint: P4, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      applied: { endpoint: P4, atMs: NOW - 5_000, attempts: MAX_PUNCH_ATTEMPTS, lead: P4 },
      verdict: "punch",
      update: punchAt(P6),
      record: { endpoint: P6, atMs: NOW, attempts: 1, lead: P6 },
    },
    {
      name: "the peer's IPv6 address arrives, but this node has none: nothing new to try",
      peer: { endpoint: P4, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: false,
      applied: { endpoint: P4, atMs: NOW - 5_000, attempts: MAX_PUNCH_ATTEMPTS, lead: P4 },
      verdict: "unchanged",
      update: null,
    },
    {
      name: "a working IPv4 path written by us is not moved to IPv6",
      peer: { endpoint: P4, lastHandshakeMs: NOW - 1_000, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      applied: { endpoint: P4, atMs: NOW - 60_000, attempts: 1, lead: P4 },
      verdict: "unchanged",
      update: null,
    },
    {
      name: "a working IPv4 path the user set is not moved to IPv6",
      peer: { endpoint: P4, lastHandshakeMs: NOW - 1_000, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      verdict: "unchanged",
      update: null,
    },
    {
      name: "the peer is reaching us: its handshake is not killed for the new IPv6 address",
      peer: { endpoint: P4, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      applied: { endpoint: P4, atMs: NOW - 5_000, attempts: MAX_PUNCH_ATTEMPTS, lead: P4 },
      rxGrewAtMs: NOW - 1_000,
      verdict: "hearing",
      update: null,
    },
    {
      name: "an agent restarted: the peer sits at its IPv4 mapping without a handshake, not written by us: IPv6 first",
      peer: { endpoint: P4, lastHandshakeMs: NOW - HEALTHY_HANDSHAKE_MS - 1, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      verdict: "punch",
      update: punchAt(P6),
      record: { endpoint: P6, atMs: NOW, attempts: 1, lead: P6 },
    },
    {
      name: "a record from a relay's direct try (no lead) is not started over",
      peer: { endpoint: P4, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      applied: { endpoint: P4, atMs: NOW - 5_000, attempts: MAX_PUNCH_ATTEMPTS },
      verdict: "unchanged",
      update: null,
    },
    {
      name: "a peer with a preshared key gets the IPv6 address set, never re-created",
      peer: { endpoint: P4, hasPresharedKey: true, persistentKeepaliveSec: 25 },
      candidates: [P6],
      selfIpv6: true,
      verdict: "set",
      update: { publicKey: key(1), endpoint: P6 },
      record: { endpoint: P6, atMs: NOW, attempts: 0, lead: P6 },
    },
    {
      name: "only a ULA candidate: the IPv4 mapping is punched, the ULA never written",
      peer: { persistentKeepaliveSec: 25 },
      candidates: [ULA],
      selfIpv6: true,
      verdict: "punch",
      update: punchAt(P4),
      record: { endpoint: P4, atMs: NOW, attempts: 1, lead: P4 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = decide({
        device: device(peer(c.peer)),
        registry: new Map([[key(1), P4]]),
        candidates: new Map([[key(1), c.candidates]]),
        selfEndpoint: SELF,
        selfIpv6: c.selfIpv6,
        applied: new Map(c.applied ? [[key(1), c.applied]] : []),
        rxGrewAtMs: new Map(c.rxGrewAtMs === undefined ? [] : [[key(1), c.rxGrewAtMs]]),
        nowMs: NOW,
      });
      assert.equal(r.decisions[0]?.verdict, c.verdict, r.decisions[0]?.reason);
      assert.deepEqual(r.updates, c.update ? [c.update] : []);
      if (c.record) assert.deepEqual(r.applied.get(key(1)), c.record);
      else assert.equal(r.applied.size, 0, "nothing written, nothing recorded");
    });
  }

  it("punches in order on a fake clock: IPv4 until the peer's IPv6 address arrives, then IPv6, IPv4, IPv6, then nothing", () => {
    const clock = new FakeClock(NOW);
    const applied = new Map<string, AppliedRecord>();
    let current: WgPeer = peer({});
    const punches: Array<[string, number]> = [];
    for (let step = 0; step < 40; step++) {
      const t = clock.now() - NOW;
      // The peer's agent starts (and reports its candidates) 1.5 s after ours.
      const candidates = new Map([[key(1), t >= 1_500 ? [P6] : []]]);
      const r = decide({ device: device(current), registry: new Map([[key(1), P4]]), candidates, selfEndpoint: SELF, selfIpv6: true, applied, nowMs: clock.now() });
      for (const [k, v] of r.applied) applied.set(k, v);
      for (const u of r.updates) {
        if (u.recreate && u.endpoint) punches.push([formatEndpoint(u.endpoint), t]);
        current = { ...current, endpoint: u.endpoint ?? current.endpoint, persistentKeepaliveSec: u.persistentKeepaliveSec ?? current.persistentKeepaliveSec };
      }
      clock.advance(250);
    }
    const v4 = formatEndpoint(P4);
    const v6 = formatEndpoint(P6);
    assert.deepEqual(punches, [
      [v4, 0],
      [v4, 1_000],
      [v6, 1_500],
      [v4, 2_500],
      [v6, 3_500],
    ]);
  });

  it("pathOf: a session at the peer's IPv6 candidate is direct, not lan", () => {
    assert.equal(pathOf(peer({ endpoint: P6, lastHandshakeMs: NOW - 1 }), [LAN, P6], NOW), "direct");
    assert.equal(pathOf(peer({ endpoint: LAN, lastHandshakeMs: NOW - 1 }), [LAN, P6], NOW), "lan");
    assert.equal(pathOf(peer({ endpoint: ULA, lastHandshakeMs: NOW - 1 }), [ULA], NOW), "lan");
  });
});

describe("cannotPunch (relay rule 10)", () => {
  const P4: Endpoint = { ip: "203.0.113.104", port: 40001 };
  const LAN: Endpoint = { ip: "192.168.4.10", port: 51820 };
  const PUBLIC: Endpoint = { ip: "203.0.113.104", port: 51820 };
  const P6: Endpoint = { ip: "2001:db8:4:1::10", port: 51820 };
  const cases: Array<[string, boolean, Endpoint | null, Endpoint[], Endpoint[], boolean]> = [
    ["our NAT maps per destination, the peer is behind a NAT, nowhere else to try", true, P4, [LAN], [P4], true],
    ["our NAT maps per destination, but the peer is public (its own address is where the registry sees it)", true, P4, [PUBLIC], [P4], false],
    ["our NAT maps per destination, but the peer has an IPv6 place for us", true, P4, [LAN, P6], [P6, P4], false],
    ["our NAT maps per destination, but the peer is behind our NAT (its LAN address first)", true, P4, [LAN], [LAN, P4], false],
    ["our NAT maps per destination, but the peer reported nothing (a seed node, or not started): not judged", true, P4, [], [P4], false],
    ["our NAT does not map per destination (or the probe did not tell)", false, P4, [LAN], [P4], false],
    ["the registry has no endpoint for the peer", true, null, [LAN], [], false],
  ];
  for (const [name, self, registry, candidates, targets, want] of cases) it(name, () => assert.equal(cannotPunch(self, registry, candidates, targets), want));
});

describe("decide: a node without NAT lets the peer punch first (rule 9)", () => {
  const registry = new Map<string, Endpoint | null>([[key(1), A]]);
  it("points the peer at its endpoint without re-creating it, and punches only PUBLIC_DEFER_MS later without a handshake", () => {
    const first = decide({ device: device(peer({})), registry, applied: new Map(), nowMs: NOW, selfPublic: true });
    assert.equal(first.decisions[0]?.verdict, "set");
    assert.deepEqual(first.updates, [{ publicKey: key(1), endpoint: A, persistentKeepaliveSec: DEFAULT_KEEPALIVE_SEC }]);
    assert.deepEqual(first.applied.get(key(1)), { endpoint: A, atMs: NOW, attempts: 0, lead: A, deferred: true });
    assert.equal(first.nextDueMs, NOW + PUBLIC_DEFER_MS);
    const applied = new Map(first.applied);
    const waiting = decide({ device: device(peer({ endpoint: A, persistentKeepaliveSec: 25 })), registry, applied, nowMs: NOW + PUBLIC_DEFER_MS - 1, selfPublic: true });
    assert.deepEqual(waiting.updates, []);
    const late = decide({ device: device(peer({ endpoint: A, persistentKeepaliveSec: 25 })), registry, applied, nowMs: NOW + PUBLIC_DEFER_MS, selfPublic: true });
    assert.equal(late.decisions[0]?.verdict, "punch");
    assert.deepEqual(late.updates, [punch(A, 25)]);
    assert.equal(late.applied.get(key(1))?.attempts, 1);
  });
  it("with the peer's initiation arrived in the meantime (a handshake), nothing more", () => {
    const applied = new Map([[key(1), { endpoint: A, atMs: NOW - PUBLIC_DEFER_MS, attempts: 0, lead: A, deferred: true }]]);
    const r = decide({ device: device(peer({ endpoint: A, persistentKeepaliveSec: 25, lastHandshakeMs: NOW - 100 })), registry, applied, nowMs: NOW, selfPublic: true });
    assert.deepEqual(r.updates, []);
  });
  it("a node behind NAT punches at once, as before", () => {
    const r = decide({ device: device(peer({})), registry, applied: new Map(), nowMs: NOW, selfPublic: false });
    assert.deepEqual(r.updates, [punch(A)]);
  });
});
