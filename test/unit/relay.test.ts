import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { MAX_PUNCH_ATTEMPTS, type AppliedRecord } from "../../src/node/decide.js";
import { nextRound, planRelay, QUIET_MS, RELAY_AFTER_MS, restoreUpdates, ROUND_MS, type RelayEntry, type RelayInput } from "../../src/node/relay.js";
import { loadRelayState, relayStatePath, saveRelayState } from "../../src/node/relay-state.js";
import type { Endpoint, WgDevice, WgPeer } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

const NOW = 1_000 * ROUND_MS + 1_234; // not on a round boundary
const REG = key(9);
const B = key(2);
const B_EP: Endpoint = { ip: "203.0.113.102", port: 40000 };

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
  registryPublicKey: REG,
  relayAvailable: true,
  state: new Map(),
  applied: punched(MAX_PUNCH_ATTEMPTS, NOW - RELAY_AFTER_MS),
  registry: new Map([[B, B_EP]]),
  nowMs: NOW,
  ...over,
});
const quietEntry = (over: Partial<RelayEntry> = {}): RelayEntry => ({
  allowedIps: ["10.200.0.3/32"],
  sinceMs: NOW - 60_000,
  phase: "quiet",
  atMs: NOW - 60_000,
  nextPunchMs: NOW,
  ...over,
});

describe("planRelay", () => {
  it("relays a peer whose last punch got no handshake: the registry peer takes its addresses, the direct peer goes quiet", () => {
    const r = planRelay(input({}));
    assert.deepEqual(r.updates, [
      { publicKey: REG, allowedIps: ["10.200.0.1/32", "10.200.0.3/32"] },
      { publicKey: B, persistentKeepaliveSec: 0, recreate: { allowedIps: [] } },
    ]);
    assert.deepEqual(r.state.get(B), { allowedIps: ["10.200.0.3/32"], sinceMs: NOW, phase: "quiet", atMs: NOW, nextPunchMs: nextRound(NOW + QUIET_MS) });
    assert.equal(r.decisions[0]?.action, "relay");
    assert.equal((r.state.get(B)?.nextPunchMs ?? 0) % ROUND_MS, 0, "punch retries on a round boundary");
  });

  const nothing: Array<[string, Partial<RelayInput>]> = [
    ["the registry does not relay", { relayAvailable: false }],
    ["the punches are not all spent", { applied: punched(MAX_PUNCH_ATTEMPTS - 1, NOW - RELAY_AFTER_MS) }],
    ["the last punch is recent", { applied: punched(MAX_PUNCH_ATTEMPTS, NOW - RELAY_AFTER_MS + 1) }],
    ["we never punched it", { applied: new Map() }],
    ["it works", { device: device({ lastHandshakeMs: NOW - 1000 }) }],
    ["it has a preshared key", { device: device({ hasPresharedKey: true }) }],
    ["the registry's key is unknown", { registryPublicKey: "" }],
    ["WireGuard roamed it elsewhere", { device: device({ endpoint: { ip: "198.51.100.1", port: 1 } }) }],
    ["the peer is reaching us (a handshake under way)", { rxGrewAtMs: new Map([[B, NOW - 1_000]]) }],
  ];
  for (const [why, over] of nothing) {
    it(`does not relay when ${why}`, () => {
      const r = planRelay(input(over));
      assert.deepEqual(r.updates, []);
      assert.equal(r.state.size, 0);
    });
  }

  it("a quiet relayed peer is punched again at its round, toward the registry's endpoint, keeping its addresses on the registry", () => {
    const r = planRelay(input({ device: device({ endpoint: null, persistentKeepaliveSec: 0 }), state: new Map([[B, quietEntry()]]) }));
    assert.deepEqual(r.updates, [{ publicKey: B, endpoint: B_EP, persistentKeepaliveSec: 25, recreate: { allowedIps: [] } }]);
    assert.equal(r.state.get(B)?.phase, "punching");
    assert.equal(r.nextDueMs, NOW + RELAY_AFTER_MS);
  });

  it("a quiet relayed peer before its round: nothing, and a wake-up at the round", () => {
    const r = planRelay(input({ state: new Map([[B, quietEntry({ nextPunchMs: NOW + 5_000 })]]) }));
    assert.deepEqual(r.updates, []);
    assert.equal(r.nextDueMs, NOW + 5_000);
  });

  it("a punch while relayed that gets no handshake goes quiet again until the next round", () => {
    const r = planRelay(input({ state: new Map([[B, quietEntry({ phase: "punching", atMs: NOW - RELAY_AFTER_MS })]]) }));
    assert.deepEqual(r.updates, [{ publicKey: B, persistentKeepaliveSec: 0, recreate: { allowedIps: [] } }]);
    assert.equal(r.state.get(B)?.phase, "quiet");
    assert.equal(r.state.get(B)?.nextPunchMs, nextRound(NOW + QUIET_MS));
  });

  it("a direct handshake while relayed gives the addresses back", () => {
    const r = planRelay(input({ device: device({ lastHandshakeMs: NOW - 500 }), state: new Map([[B, quietEntry({ phase: "punching", atMs: NOW - 1000 })]]) }));
    assert.deepEqual(r.updates, [{ publicKey: B, allowedIps: ["10.200.0.3/32"] }]);
    assert.equal(r.state.size, 0);
    assert.equal(r.decisions[0]?.action, "direct-again");
  });

  it("a registry that stopped relaying: addresses go back", () => {
    const r = planRelay(input({ relayAvailable: false, state: new Map([[B, quietEntry({ nextPunchMs: NOW + 1 })]]) }));
    assert.deepEqual(r.updates, [{ publicKey: B, allowedIps: ["10.200.0.3/32"] }]);
    assert.equal(r.decisions[0]?.action, "unrelay");
  });

  it("restoreUpdates gives every relayed peer its own addresses", () => {
    assert.deepEqual(restoreUpdates(new Map([[B, quietEntry()]])), [{ publicKey: B, allowedIps: ["10.200.0.3/32"] }]);
  });
});

describe("relay state file", () => {
  const dir = mkdtempSync(join(tmpdir(), "wormhole-relay-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("round-trips, is private, and disappears when nothing is relayed", async () => {
    await saveRelayState(dir, "wg0", new Map([[B, quietEntry()]]));
    assert.equal(statSync(relayStatePath(dir, "wg0")).mode & 0o777, 0o600);
    assert.deepEqual(await loadRelayState(dir, "wg0"), new Map([[B, quietEntry()]]));
    await saveRelayState(dir, "wg0", new Map());
    assert.deepEqual(await loadRelayState(dir, "wg0"), new Map());
    assert.throws(() => readFileSync(relayStatePath(dir, "wg0")));
  });

  it("a damaged file is an error naming it", async () => {
    writeFileSync(relayStatePath(dir, "wg1"), "{ not json");
    await assert.rejects(loadRelayState(dir, "wg1"), new RegExp(`relay state \`${relayStatePath(dir, "wg1").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}' is damaged`));
  });
});
