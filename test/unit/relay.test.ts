import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AppliedRecord } from "../../src/node/decide.js";
import { KICK_MS, LOOK_AGAIN_MS, nextTry, planRelay, QUIET_MS, RELAY_AFTER_MS, ROUND_MS, TRY_DIRECT_MS, type RelayEntry, type RelayInput } from "../../src/node/relay.js";
import type { Endpoint, WgDevice, WgPeer } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

const NOW = 1_000 * ROUND_MS + 1_234; // not on a round boundary
const REG = key(9);
const B = key(2);
const B_EP: Endpoint = { ip: "203.0.113.102", port: 40000 };
const RELAY_EP: Endpoint = { ip: "127.0.0.1", port: 45000 };

function peer(p: Partial<WgPeer> & { publicKey: string }): WgPeer {
  return { endpoint: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps: [], persistentKeepaliveSec: 0, hasPresharedKey: false, ...p };
}
function device(bPeer: Partial<WgPeer> = {}): WgDevice {
  return {
    name: "wg0",
    type: "userspace",
    publicKey: key(1),
    listenPort: 51820,
    peers: [
      peer({ publicKey: REG, endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["10.200.0.1/32"], lastHandshakeMs: NOW - 1000, persistentKeepaliveSec: 25 }),
      peer({ publicKey: B, endpoint: B_EP, allowedIps: ["10.200.0.3/32"], persistentKeepaliveSec: 25, ...bPeer }),
    ],
  };
}
const punched = (attempts: number, atMs: number): ReadonlyMap<string, AppliedRecord> => new Map([[B, { endpoint: B_EP, atMs, attempts }]]);
const input = (over: Partial<RelayInput>): RelayInput => ({
  device: device(),
  registryKeys: new Set([REG]),
  relayAvailable: true,
  state: new Map(),
  applied: punched(1, NOW - RELAY_AFTER_MS),
  targets: new Map([[B, [B_EP]]]),
  relayedKeyOf: (ep) => (ep?.ip === RELAY_EP.ip && ep.port === RELAY_EP.port ? B : null),
  nowMs: NOW,
  ...over,
});
const relayed = (over: Partial<RelayEntry> = {}): RelayEntry => ({ sinceMs: NOW - 60_000, phase: "relayed", atMs: NOW - 60_000, tries: 0, nextTryMs: NOW + 5_000, initiated: true, lead: B_EP, ...over });

describe("planRelay", () => {
  it("relays a peer whose punch got no handshake within RELAY_AFTER_MS, and schedules the first direct try after the quiet time", () => {
    const r = planRelay(input({}));
    // This end (key 1) sorts before the peer (key 2): it initiates, re-creating the peer.
    assert.deepEqual(
      r.decisions.map((d) => [d.publicKey, d.action, d.recreate]),
      [[B, "relay", true]],
    );
    assert.deepEqual(r.state.get(B), { sinceMs: NOW, phase: "relayed", atMs: NOW, tries: 0, nextTryMs: nextTry(NOW + QUIET_MS, 0), initiated: true, lead: B_EP });
    assert.equal(r.nextDueMs, NOW + LOOK_AGAIN_MS, "a look soon after, to see the relayed path");
    const later = planRelay(input({ state: r.state, nowMs: NOW + LOOK_AGAIN_MS, device: device({ endpoint: RELAY_EP, lastHandshakeMs: NOW + 100 }) }));
    assert.deepEqual(later.decisions, []);
    assert.equal(later.nextDueMs, nextTry(NOW + QUIET_MS, 0), "then nothing until the first direct try");
  });

  it("only the end with the lower key initiates; the other sets the endpoint and initiates itself only when nothing came within KICK_MS", () => {
    const higher = { ...device(), publicKey: key(3) };
    const r = planRelay(input({ device: higher }));
    assert.deepEqual(r.decisions.map((d) => [d.action, d.recreate]), [["relay", false]]);
    assert.equal(r.state.get(B)?.initiated, false);
    assert.equal(r.nextDueMs, NOW + KICK_MS);
    const answered = planRelay(input({ device: { ...higher, peers: [higher.peers[0] as WgPeer, peer({ publicKey: B, endpoint: RELAY_EP, lastHandshakeMs: NOW + 200 })] }, state: r.state, nowMs: NOW + KICK_MS }));
    assert.deepEqual(answered.decisions, [], "the initiation through the relay arrived: nothing to do");
    const silent = planRelay(input({ device: { ...higher, peers: [higher.peers[0] as WgPeer, peer({ publicKey: B, endpoint: RELAY_EP })] }, state: r.state, nowMs: NOW + KICK_MS }));
    assert.deepEqual(silent.decisions.map((d) => [d.action, d.recreate]), [["kick", true]]);
    assert.equal(silent.state.get(B)?.initiated, true);
  });

  const notYet: Array<[string, Partial<RelayInput>]> = [
    ["the punch is younger than RELAY_AFTER_MS", { applied: punched(1, NOW - RELAY_AFTER_MS + 1) }],
    ["the registry does not relay (or this node refuses)", { relayAvailable: false }],
    ["the peer has a working session", { device: device({ lastHandshakeMs: NOW - 1_000 }) }],
    ["this agent never punched the peer", { applied: new Map() }],
    ["the endpoint is no longer what was punched (WireGuard roamed)", { device: device({ endpoint: { ip: "203.0.113.9", port: 1 } }) }],
    ["the peer has LAN candidates still to try", { targets: new Map([[B, [{ ip: "192.168.1.11", port: 51820 }, B_EP]]]) }],
    ["the peer was heard from within RELAY_AFTER_MS (its handshake is under way)", { rxGrewAtMs: new Map([[B, NOW - 100]]) }],
  ];
  for (const [why, over] of notYet) {
    it(`does not relay when ${why}`, () => {
      const r = planRelay(input(over));
      assert.deepEqual(r.decisions, []);
      assert.equal(r.state.size, 0);
    });
  }

  it("never relays the registry's own peer", () => {
    const r = planRelay(input({ applied: new Map([[REG, { endpoint: { ip: "203.0.113.1", port: 51820 }, atMs: 0, attempts: 3 }]]), device: { ...device(), peers: [device().peers[0] as WgPeer] } }));
    assert.deepEqual(r.decisions, []);
  });

  it("a peer with a preshared key is relayed by setting the endpoint only (re-creating would lose the key)", () => {
    const r = planRelay(input({ device: device({ hasPresharedKey: true }) }));
    assert.equal(r.decisions[0]?.action, "relay");
    assert.equal(r.decisions[0]?.recreate, false);
  });

  it("adopts a peer that WireGuard moved onto our relay socket (the other end relays us)", () => {
    const r = planRelay(input({ applied: new Map(), device: device({ endpoint: RELAY_EP, lastHandshakeMs: NOW - 100 }) }));
    assert.deepEqual(r.decisions.map((d) => d.action), ["adopt"]);
    assert.equal(r.state.get(B)?.phase, "relayed");
  });

  it("tries direct at the scheduled time, at the first target, and comes back to the relay when that gets no handshake", () => {
    const at = planRelay(input({ state: new Map([[B, relayed({ nextTryMs: NOW })]]), device: device({ endpoint: RELAY_EP, lastHandshakeMs: NOW - 10_000 }) }));
    assert.deepEqual(at.decisions.map((d) => [d.action, d.endpoint, d.recreate]), [["try-direct", B_EP, true]]);
    assert.equal(at.state.get(B)?.phase, "trying");
    assert.equal(at.nextDueMs, NOW + KICK_MS);

    // No handshake KICK_MS into the try: sent once more, at the same place (rule 8); then nothing more until the try ends.
    const again = planRelay(input({ nowMs: NOW + KICK_MS, state: at.state, device: device({ endpoint: B_EP, lastHandshakeMs: 0 }) }));
    assert.deepEqual(again.decisions.map((d) => [d.action, d.endpoint, d.recreate]), [["try-direct", B_EP, true]]);
    assert.equal(again.nextDueMs, NOW + TRY_DIRECT_MS);
    const quiet = planRelay(input({ nowMs: NOW + KICK_MS + 100, state: again.state, device: device({ endpoint: B_EP, lastHandshakeMs: 0 }) }));
    assert.deepEqual(quiet.decisions, []);

    const later = NOW + TRY_DIRECT_MS;
    const back = planRelay(input({ nowMs: later, state: again.state, device: device({ endpoint: B_EP, lastHandshakeMs: 0 }) }));
    assert.deepEqual(back.decisions.map((d) => d.action), ["relay-again"]);
    assert.deepEqual(back.state.get(B), { sinceMs: NOW - 60_000, phase: "relayed", atMs: later, tries: 1, nextTryMs: nextTry(later + QUIET_MS, 1), initiated: true, lead: B_EP });
  });

  it("is direct again when a try gets a handshake", () => {
    const state = new Map([[B, relayed({ phase: "trying", atMs: NOW - 500 })]]);
    const r = planRelay(input({ state, device: device({ endpoint: B_EP, lastHandshakeMs: NOW - 100 }) }));
    assert.deepEqual(r.decisions.map((d) => d.action), ["direct-again"]);
    assert.equal(r.state.has(B), false);
  });

  it("is direct again when the peer reaches us directly while relayed (its try worked, and WireGuard roamed)", () => {
    const r = planRelay(input({ state: new Map([[B, relayed()]]), device: device({ endpoint: B_EP, lastHandshakeMs: NOW - 100 }) }));
    assert.deepEqual(r.decisions.map((d) => d.action), ["direct-again"]);
  });

  it("waits while relayed and working, until the next try", () => {
    const r = planRelay(input({ state: new Map([[B, relayed()]]), device: device({ endpoint: RELAY_EP, lastHandshakeMs: NOW - 100 }) }));
    assert.deepEqual(r.decisions, []);
    assert.equal(r.nextDueMs, NOW + 5_000);
  });

  describe("a new first place while relayed (rule 7)", () => {
    const B6: Endpoint = { ip: "2001:db8:2:1::10", port: 51820 };
    const onRelay = device({ endpoint: RELAY_EP, lastHandshakeMs: NOW - 100 });
    it("the peer reported its IPv6 address: tried there at once, long before the next round", () => {
      const r = planRelay(input({ state: new Map([[B, relayed()]]), device: onRelay, targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(r.decisions.map((d) => [d.action, d.endpoint, d.recreate]), [["try-direct", B6, true]]);
      assert.deepEqual(r.state.get(B), { ...relayed(), phase: "trying", atMs: NOW, lead: B6, initiated: false });
      assert.equal(r.nextDueMs, NOW + KICK_MS);
    });
    it("at an IPv6 place the end with the higher key re-creates the peer too (rule 9), and does not initiate again (rule 8 is the lower key's)", () => {
      const higher = { ...onRelay, publicKey: key(3) };
      const r = planRelay(input({ state: new Map([[B, relayed()]]), device: higher, targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(r.decisions.map((d) => [d.action, d.recreate]), [["try-direct", true]]);
      assert.equal(r.nextDueMs, NOW + LOOK_AGAIN_MS, "a look a second in (the try lasts TRY_DIRECT_MS)");
      const later = planRelay(input({ nowMs: NOW + KICK_MS, state: r.state, device: { ...higher, peers: [higher.peers[0] as WgPeer, peer({ publicKey: B, endpoint: B6 })] }, targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(later.decisions, []);
    });
    it("at an IPv4 place the end with the higher key only sets the endpoint (the agent pokes it), as before", () => {
      const higher = { ...onRelay, publicKey: key(3) };
      const r = planRelay(input({ state: new Map([[B, relayed({ nextTryMs: NOW })]]), device: higher }));
      assert.deepEqual(r.decisions.map((d) => [d.action, d.recreate]), [["try-direct", false]]);
    });
    it("a peer with a preshared key is never re-created, even at an IPv6 place", () => {
      const psk = device({ endpoint: RELAY_EP, lastHandshakeMs: NOW - 100, hasPresharedKey: true });
      const r = planRelay(input({ state: new Map([[B, relayed()]]), device: psk, targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(r.decisions.map((d) => [d.action, d.recreate]), [["try-direct", false]]);
    });
    it("that try failed: relayed again, and the same place is not tried again before the next round", () => {
      const tried = planRelay(input({ state: new Map([[B, relayed()]]), device: onRelay, targets: new Map([[B, [B6, B_EP]]]) }));
      const back = planRelay(input({ nowMs: NOW + TRY_DIRECT_MS, state: tried.state, device: device({ endpoint: B6 }), targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(back.decisions.map((d) => d.action), ["relay-again"]);
      const after = planRelay(input({ nowMs: NOW + TRY_DIRECT_MS + 1_000, state: back.state, device: onRelay, targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(after.decisions, []);
    });
    it("the same first place as when relayed: waits for the round", () => {
      const r = planRelay(input({ state: new Map([[B, relayed()]]), device: onRelay }));
      assert.deepEqual(r.decisions, []);
    });
    it("adopted before this end punched anywhere, with an IPv6 first place: tried there at once", () => {
      const adopted = planRelay(input({ applied: new Map(), device: device({ endpoint: RELAY_EP }), targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(adopted.decisions.map((d) => d.action), ["adopt"]);
      assert.equal(adopted.state.get(B)?.lead, null);
      const r = planRelay(input({ nowMs: NOW + 100, state: adopted.state, device: onRelay, targets: new Map([[B, [B6, B_EP]]]) }));
      assert.deepEqual(r.decisions.map((d) => [d.action, d.endpoint]), [["try-direct", B6]]);
      assert.deepEqual(r.state.get(B)?.lead, B6);
    });
    it("adopted before this end tried anything, a NATed peer at an IPv4 place: waits for the round (a try would only interrupt the relay)", () => {
      const r = planRelay(input({ state: new Map([[B, relayed({ lead: null })]]), device: onRelay }));
      assert.deepEqual(r.decisions, []);
    });
    it("adopted before this end tried anything, a public peer: tried at once, this end initiating whatever the keys", () => {
      const higher = { ...onRelay, publicKey: key(3) };
      const r = planRelay(input({ state: new Map([[B, relayed({ lead: null })]]), device: higher, publicPeers: new Set([B]) }));
      assert.deepEqual(r.decisions.map((d) => [d.action, d.endpoint, d.recreate]), [["try-direct", B_EP, true]]);
      const failed = planRelay(input({ nowMs: NOW + TRY_DIRECT_MS, state: r.state, publicPeers: new Set([B]), device: { ...higher, peers: [higher.peers[0] as WgPeer, peer({ publicKey: B, endpoint: B_EP })] } }));
      assert.deepEqual(failed.decisions.map((d) => d.action), ["relay-again"]);
      assert.deepEqual(failed.state.get(B)?.lead, B_EP, "tried once: the next try waits for the round");
    });
  });

  describe("a peer that cannot be punched (rule 10)", () => {
    const hopeless = new Set([B]);
    it("is relayed at once, before any punch", () => {
      const r = planRelay(input({ applied: new Map(), device: device({ endpoint: null }), cannotPunch: hopeless }));
      assert.deepEqual(r.decisions.map((d) => [d.action, d.recreate]), [["relay", true]]);
      assert.match(r.decisions[0]?.reason ?? "", /punching cannot work/);
    });
    it("is relayed at once after a first punch, without waiting RELAY_AFTER_MS", () => {
      const r = planRelay(input({ applied: punched(1, NOW - 10), cannotPunch: hopeless }));
      assert.deepEqual(r.decisions.map((d) => d.action), ["relay"]);
    });
    it("waits while it is heard from (its handshake is under way)", () => {
      const r = planRelay(input({ applied: new Map(), cannotPunch: hopeless, rxGrewAtMs: new Map([[B, NOW - 100]]) }));
      assert.deepEqual(r.decisions, []);
      assert.equal(r.nextDueMs, NOW - 100 + RELAY_AFTER_MS);
    });
    it("is not relayed while the registry does not relay, nor when the session works", () => {
      assert.deepEqual(planRelay(input({ applied: new Map(), cannotPunch: hopeless, relayAvailable: false })).decisions, []);
      assert.deepEqual(planRelay(input({ applied: new Map(), cannotPunch: hopeless, device: device({ lastHandshakeMs: NOW - 1_000 }) })).decisions, []);
    });
    it("without it, a peer never punched is not relayed", () => {
      assert.deepEqual(planRelay(input({ applied: new Map(), device: device({ endpoint: null }) })).decisions, []);
    });
  });

  it("hands relayed peers back when the registry stops relaying", () => {
    const r = planRelay(input({ relayAvailable: false, state: new Map([[B, relayed()]]), device: device({ endpoint: RELAY_EP, lastHandshakeMs: NOW - 100 }) }));
    assert.deepEqual(r.decisions.map((d) => d.action), ["unrelay"]);
    assert.equal(r.state.size, 0);
  });
});

describe("nextTry", () => {
  it("lands on wall-clock multiples of a round that doubles per failed try, up to 16 rounds", () => {
    assert.equal(nextTry(1, 0), ROUND_MS);
    assert.equal(nextTry(ROUND_MS, 0), ROUND_MS);
    assert.equal(nextTry(ROUND_MS + 1, 1), 2 * ROUND_MS);
    assert.equal(nextTry(1, 4), 16 * ROUND_MS);
    assert.equal(nextTry(1, 9), 16 * ROUND_MS);
    // A coarser grid is a subset of a finer one: two ends a try apart still meet.
    for (let t = 0; t < 4; t++) assert.equal(nextTry(nextTry(5 * ROUND_MS + 7, t + 1), t) , nextTry(5 * ROUND_MS + 7, t + 1));
  });
});
