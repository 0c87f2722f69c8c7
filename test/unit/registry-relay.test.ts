import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IdentityIndex } from "../../src/registry/identity.js";
import { ByteBucket, HELLO_TTL_MS, PAIR_IDLE_MS, RelayCore, type RelayDrop } from "../../src/registry/relay.js";
import type { PeerMap, RegistryPeer } from "../../src/registry/view.js";
import { decode, encode } from "../../src/relay/wire.js";
import { FakeClock } from "../../src/util/clock.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

const A = key(1);
const B = key(2);
const C = key(3);
const A_IP = { address: "10.200.0.2", port: 40001 };
const B_IP = { address: "10.200.0.3", port: 40002 };
const C_IP = { address: "10.200.0.4", port: 40003 };

function peers(): PeerMap {
  const p = (publicKey: string, ip: string): RegistryPeer => ({ publicKey, endpoint: null, lastHandshakeMs: 0, allowedIps: [`${ip}/32`], rxBytes: 0, txBytes: 0, endpointRevision: 0 }) as unknown as RegistryPeer;
  return new Map([
    [A, p(A, A_IP.address)],
    [B, p(B, B_IP.address)],
    [C, p(C, C_IP.address)],
  ]);
}

function core(over: { enabled?: boolean; pairBytesPerSec?: number; totalBytesPerSec?: number } = {}) {
  const clock = new FakeClock();
  const map = peers();
  const table = { peers: map, identity: new IdentityIndex(map) };
  const relay = new RelayCore({ table, enabled: over.enabled ?? true, clock, logger: captureLogger().logger, ...over });
  return { relay, clock };
}

const hello = (accepts = true) => encode({ type: "hello", acceptsRelay: accepts });
const to = (k: string, payload = "ciphertext") => encode({ type: "to", key: k, payload: Buffer.from(payload) });

function dropped(relay: RelayCore): Partial<Record<RelayDrop, number>> {
  return Object.fromEntries(Object.entries(relay.stats.dropped).filter(([, n]) => n > 0));
}

describe("the registry's relay", () => {
  it("answers a peer's hello with a welcome to where it came from, saying whether it relays", () => {
    for (const enabled of [true, false]) {
      const { relay } = core({ enabled });
      const out = relay.handle(hello(), A_IP);
      assert.deepEqual({ ...out, bytes: decode(out?.bytes as Buffer) }, { bytes: { type: "welcome", relays: enabled }, ...A_IP });
    }
  });

  it("hands a packet to its destination's hello address, naming the sender, unchanged", () => {
    const { relay } = core();
    relay.handle(hello(), A_IP);
    relay.handle(hello(), B_IP);
    const out = relay.handle(to(B, "wireguard bytes"), A_IP);
    assert.equal(out?.address, B_IP.address);
    assert.equal(out?.port, B_IP.port);
    const m = decode(out?.bytes as Buffer);
    assert.equal(m?.type, "from");
    assert.equal(m && "key" in m ? m.key : null, A);
    assert.equal(m && "payload" in m ? m.payload.toString() : null, "wireguard bytes");
    assert.deepEqual(relay.stats, { packets: 1, bytes: 15, dropped: relay.stats.dropped });
    assert.equal(relay.activePairs(), 1);
  });

  const refusals: Array<[string, (r: RelayCore, c: FakeClock) => ReturnType<RelayCore["handle"]>, RelayDrop]> = [
    ["a sender that is no peer's tunnel address", (r) => r.handle(hello(), { address: "203.0.113.9", port: 1 }), "unidentified"],
    ["bytes that are no relay datagram", (r) => r.handle(Buffer.from("GET / HTTP/1.1"), A_IP), "malformed"],
    ["a 'from' sent to the registry", (r) => r.handle(encode({ type: "from", key: B, payload: Buffer.alloc(1) }), A_IP), "malformed"],
    ["a destination that is not a peer", (r) => {
      r.handle(hello(), A_IP);
      return r.handle(to(key(40)), A_IP);
    }, "unknown_destination"],
    ["the sender itself as destination", (r) => {
      r.handle(hello(), A_IP);
      return r.handle(to(A), A_IP);
    }, "unknown_destination"],
    ["a sender that never said hello", (r) => {
      r.handle(hello(), B_IP);
      return r.handle(to(B), A_IP);
    }, "sender_not_relaying"],
    ["a destination that never said hello", (r) => {
      r.handle(hello(), A_IP);
      return r.handle(to(B), A_IP);
    }, "destination_not_relaying"],
    ["a destination that refuses relaying (--no-relay)", (r) => {
      r.handle(hello(), A_IP);
      r.handle(hello(false), B_IP);
      return r.handle(to(B), A_IP);
    }, "destination_not_relaying"],
    [
      "a destination whose last hello is older than HELLO_TTL_MS",
      (r, c) => {
        r.handle(hello(), B_IP);
        c.advance(HELLO_TTL_MS);
        r.handle(hello(), A_IP);
        return r.handle(to(B), A_IP);
      },
      "destination_not_relaying",
    ],
  ];
  for (const [what, act, reason] of refusals) {
    it(`drops ${what} (${reason})`, () => {
      const { relay, clock } = core();
      assert.equal(act(relay, clock), null);
      assert.deepEqual(dropped(relay), { [reason]: 1 });
      assert.equal(relay.stats.packets, 0);
    });
  }

  it("relays nothing when off (--no-relay), though it answers hellos", () => {
    const { relay } = core({ enabled: false });
    relay.handle(hello(), A_IP);
    relay.handle(hello(), B_IP);
    assert.equal(relay.handle(to(B), A_IP), null);
    assert.deepEqual(dropped(relay), { off: 1 });
  });

  it("caps each pair's bytes per second (both directions together) without starving another pair", () => {
    const { relay, clock } = core({ pairBytesPerSec: 100_000 });
    for (const ip of [A_IP, B_IP, C_IP]) relay.handle(hello(), ip);
    const big = "x".repeat(1_000);
    let passed = 0;
    for (let i = 0; i < 200; i++) if (relay.handle(to(i % 2 ? A : B, big), i % 2 ? B_IP : A_IP)) passed++;
    // The burst is 65,536 bytes or one second's worth: 100 KB of 1,036-byte datagrams.
    assert.equal(passed, Math.floor(100_000 / 1_036));
    assert.ok(relay.handle(to(C, big), A_IP), "another pair has its own budget");
    clock.advance(500);
    assert.ok(relay.handle(to(B, big), A_IP), "half a second refills half the budget");
    assert.ok((relay.stats.dropped.rate_limited ?? 0) > 0);
  });

  it("forgets hellos and idle pairs (memory bounded by the peers)", () => {
    const { relay, clock } = core();
    relay.handle(hello(), A_IP);
    relay.handle(hello(), B_IP);
    relay.handle(to(B), A_IP);
    assert.equal(relay.relayingNodes(), 2);
    clock.advance(PAIR_IDLE_MS);
    relay.prune();
    assert.equal(relay.activePairs(), 0);
    assert.equal(relay.relayingNodes(), 0);
  });
});

describe("ByteBucket", () => {
  it("allows a burst of one second (at least 64 KiB), then the rate; 0 means no limit", () => {
    const b = new ByteBucket(1_000, 0);
    assert.equal(b.take(65_536, 0), true);
    assert.equal(b.take(1, 0), false);
    assert.equal(b.take(1_000, 1_000), true);
    const free = new ByteBucket(0, 0);
    assert.equal(free.take(10_000_000, 0), true);
  });
});
