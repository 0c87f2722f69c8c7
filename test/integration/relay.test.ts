/**
 * Relay fallback with fake WireGuards that never complete a handshake: the
 * nodes move each other's addresses to the registry peer, give them back on
 * stop, and a node that did not stop cleanly repairs that at its next start.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { NodeAgent } from "../../src/node/agent.js";
import { relayStatePath, saveRelayState } from "../../src/node/relay-state.js";
import { runNode } from "../../src/node/run.js";
import { runRegistry } from "../../src/registry/run.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const ALICE = key(1);
const BOB = key(2);
const REGISTRY = key(9);
const dir = mkdtempSync(join(tmpdir(), "wormhole-relay-it-"));
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

function aliceWg(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: ALICE,
      listenPort: 51820,
      peers: [
        // The registry peer's endpoint is the address the node dials (127.0.0.1): provably the registry.
        { publicKey: REGISTRY, endpoint: { ip: "127.0.0.1", port: 51820 }, allowedIps: ["10.200.0.1/32"], persistentKeepaliveSec: 25 },
        { publicKey: BOB, allowedIps: ["10.200.0.3/32", "192.168.2.0/24"] },
      ],
    },
  ]);
}

async function start(wg: FakeWireGuard, port: number, stateDir: string, allowRelay = true): Promise<NodeAgent> {
  const agent = await runNode(
    { address: `127.0.0.1:${port}`, token: "t", iface: "wg0", refreshMs: 100, keepaliveSec: 25, probeIntervalMs: 0, stateDir, allowRelay },
    {
      wg,
      logger: captureLogger().logger,
      clock: systemClock,
      prober: null,
      interfaces: () => ({}),
      decideOptions: { punchRetryMs: 50 },
      relayTimings: { relayAfterMs: 100, quietMs: 60_000, roundMs: 1_000 },
    },
  );
  return agent;
}

/** A registry (with --relay unless told otherwise) whose interface has Alice and Bob at public endpoints. */
async function relayingRegistry(relay = true) {
  const regWg = new FakeWireGuard([
    {
      name: "wg0",
      publicKey: REGISTRY,
      peers: [
        { publicKey: ALICE, endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["10.200.0.2/32"] },
        { publicKey: BOB, endpoint: { ip: "198.51.100.2", port: 2 }, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
  const reg = await runRegistry(
    { address: "127.0.0.1:0", iface: "wg0", token: "t", pollIntervalMs: 20, relay },
    { wg: regWg, logger: captureLogger().logger, forwardingProblem: async () => null },
  );
  cleanups.push(() => reg.stop());
  return reg;
}

/** Waits out three punches at Bob and a little more, then checks no allowed IP was ever moved. */
async function assertNeverRelays(wg: FakeWireGuard): Promise<void> {
  await waitFor("three punches", () => wg.calls.filter((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)).length >= 3);
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(wg.peer("wg0", REGISTRY)?.allowedIps, ["10.200.0.1/32"]);
  assert.ok(wg.calls.every((c) => c.updates.every((u) => u.allowedIps === undefined)));
}

describe("relay through the registry", () => {
  it("a pair that cannot punch is relayed, and the addresses go back on stop", async () => {
    const reg = await relayingRegistry();
    const wg = aliceWg();
    const agent = await start(wg, reg.port, dir);
    cleanups.push(() => agent.stop());

    await waitFor("Bob's addresses on the registry peer", () => wg.peer("wg0", REGISTRY)?.allowedIps.includes("10.200.0.3/32"));
    assert.deepEqual(wg.peer("wg0", REGISTRY)?.allowedIps, ["10.200.0.1/32", "10.200.0.3/32", "192.168.2.0/24"]);
    assert.deepEqual(wg.peer("wg0", BOB)?.allowedIps, []);
    assert.equal(wg.peer("wg0", BOB)?.persistentKeepaliveSec, 0, "the direct peer is quiet while relayed");
    await waitFor("the relay written down for crash repair", () => existsSync(relayStatePath(dir, "wg0")));

    await agent.stop();
    assert.deepEqual(wg.peer("wg0", BOB)?.allowedIps, ["10.200.0.3/32", "192.168.2.0/24"]);
    assert.deepEqual(wg.peer("wg0", REGISTRY)?.allowedIps, ["10.200.0.1/32"]);
    assert.equal(existsSync(relayStatePath(dir, "wg0")), false);
  });

  it("a node whose peer reports relaying it punches afresh, though its old session looked fine, and relays too when that gets no handshake", async () => {
    const reg = await relayingRegistry();
    const wg = aliceWg();
    // Alice's session with Bob handshook 20 s ago: to her it works, so she leaves it alone.
    // (This fake WireGuard never handshakes again: a punch gets no answer.)
    wg.setPeerEndpoint("wg0", BOB, { ip: "198.51.100.2", port: 2 });
    wg.setHandshake("wg0", BOB, Date.now() - 20_000);
    const agent = await start(wg, reg.port, mkdtempSync(join(dir, "follow-")));
    cleanups.push(() => agent.stop());
    // Passes run every 100 ms (and on each view): give it several.
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(wg.peer("wg0", REGISTRY)?.allowedIps, ["10.200.0.1/32"], "nothing relayed while the session looks fine");

    // Bob's agent gave up on the direct path and relays Alice (his report, as the registry takes it from his tunnel address).
    reg.table.report(BOB, { candidates: [], paths: [{ peerPublicKey: ALICE, kind: "relayed", sinceMs: Date.now(), endpoint: null }], atMs: Date.now() });
    const callsBefore = wg.calls.length;
    await waitFor("Bob's addresses on the registry peer", () => wg.peer("wg0", REGISTRY)?.allowedIps.includes("10.200.0.3/32"), 3_000);
    assert.deepEqual(wg.peer("wg0", BOB)?.allowedIps, []);
    const after = wg.calls.slice(callsBefore).flatMap((c) => c.updates.filter((u) => u.publicKey === BOB));
    assert.deepEqual(after[0], { publicKey: BOB, endpoint: { ip: "198.51.100.2", port: 2 }, persistentKeepaliveSec: 25, recreate: { allowedIps: ["10.200.0.3/32", "192.168.2.0/24"] } }, "a fresh punch first");
  });

  it("a node the user did not allow to relay never relays, though the registry offers it", async () => {
    const reg = await relayingRegistry();
    const wg = aliceWg();
    const agent = await start(wg, reg.port, dir, false);
    cleanups.push(() => agent.stop());
    await assertNeverRelays(wg);
  });

  it("a registry without --relay: nothing is relayed", async () => {
    const reg = await relayingRegistry(false);
    const wg = aliceWg();
    const agent = await start(wg, reg.port, dir);
    cleanups.push(() => agent.stop());
    await assertNeverRelays(wg);
  });

  it("after an unclean stop, the next start gives the addresses back before anything else", async () => {
    const crashDir = mkdtempSync(join(dir, "crash-"));
    const wg = aliceWg();
    // What a node that died while relaying leaves behind.
    await wg.updatePeers("wg0", [
      { publicKey: REGISTRY, allowedIps: ["10.200.0.1/32", "10.200.0.3/32", "192.168.2.0/24"] },
      { publicKey: BOB, persistentKeepaliveSec: 0, recreate: { allowedIps: [] } },
    ]);
    await saveRelayState(crashDir, "wg0", new Map([[BOB, { allowedIps: ["10.200.0.3/32", "192.168.2.0/24"], sinceMs: 1, phase: "quiet", atMs: 1, nextPunchMs: 2 }]]));
    const regWg = new FakeWireGuard([{ name: "wg0", publicKey: REGISTRY, peers: [{ publicKey: BOB, endpoint: { ip: "198.51.100.2", port: 2 }, allowedIps: ["10.200.0.3/32"] }] }]);
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: "t", pollIntervalMs: 20 }, { wg: regWg, logger: captureLogger().logger });
    cleanups.push(() => reg.stop());
    const agent = await start(wg, reg.port, crashDir);
    cleanups.push(() => agent.stop());
    await waitFor("Bob's addresses back", () => wg.peer("wg0", BOB)?.allowedIps.length === 2);
    assert.deepEqual(wg.peer("wg0", REGISTRY)?.allowedIps, ["10.200.0.1/32"]);
    await waitFor("the state file gone once repaired", () => !existsSync(relayStatePath(crashDir, "wg0")));
  });
});
