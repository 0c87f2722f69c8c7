/**
 * The end-to-end relay over real UDP on loopback, with fake WireGuards that
 * never handshake (so every pair "cannot punch"). Each node's "tunnel
 * address" is a loopback address of its own (127.0.0.2, 127.0.0.3), the
 * registry's is 127.0.0.1, and a plain UDP socket stands in for each node's
 * WireGuard at its listen port: what one WireGuard sends to its relay
 * endpoint for the other must come out at the other WireGuard, from the
 * other's relay endpoint for the first — unchanged, and through the registry.
 */
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { after, describe, it } from "node:test";
import type { NodeAgent } from "../../src/node/agent.js";
import { runNode } from "../../src/node/run.js";
import { runRegistry } from "../../src/registry/run.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import type { Endpoint } from "../../src/wg/types.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const ALICE = key(1);
const BOB = key(2);
const REGISTRY = key(9);
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A UDP socket on 127.0.0.1 standing in for a node's WireGuard; keeps what it receives. */
async function fakeWireGuardSocket(): Promise<{ socket: Socket; port: number; got: Array<{ data: string; from: number }> }> {
  const socket = createSocket("udp4");
  const got: Array<{ data: string; from: number }> = [];
  socket.on("message", (m, rinfo) => got.push({ data: m.toString(), from: rinfo.port }));
  await new Promise<void>((resolve) => socket.bind({ address: "127.0.0.1", port: 0 }, resolve));
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { socket, port: socket.address().port, got };
}

async function registry(relay = true) {
  const wg = new FakeWireGuard([
    {
      name: "wg0",
      publicKey: REGISTRY,
      peers: [
        { publicKey: ALICE, endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["127.0.0.2/32"] },
        { publicKey: BOB, endpoint: { ip: "198.51.100.2", port: 2 }, allowedIps: ["127.0.0.3/32"] },
      ],
    },
  ]);
  const log = captureLogger();
  const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: "t", pollIntervalMs: 20, relay }, { wg, logger: log.logger, relayAddresses: ["127.0.0.1"] });
  cleanups.push(() => reg.stop());
  return reg;
}

async function node(self: string, other: string, tunnelIp: string, port: number, wgPort: number, allowRelay = true, host = "127.0.0.1"): Promise<{ wg: FakeWireGuard; agent: NodeAgent }> {
  const wg = new FakeWireGuard([
    {
      name: "wg0",
      publicKey: self,
      listenPort: wgPort,
      peers: [
        // The registry's tunnel address is the host the node dials: provably the registry.
        { publicKey: REGISTRY, endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["127.0.0.1/32"], persistentKeepaliveSec: 25 },
        { publicKey: other, allowedIps: ["10.200.0.9/32"] },
      ],
    },
  ]);
  const agent = await runNode(
    { addresses: [`${host}:${port}`], token: "t", iface: "wg0", refreshMs: 200, keepaliveSec: 25, probeIntervalMs: 100, allowRelay },
    {
      wg,
      logger: captureLogger().logger,
      clock: systemClock,
      prober: null,
      interfaces: () => ({}),
      routeCheck: async () => true,
      relayBindAddress: tunnelIp,
      decideOptions: { punchRetryMs: 50 },
      relayTimings: { relayAfterMs: 100, quietMs: 600_000 },
    },
  );
  cleanups.push(() => agent.stop());
  return { wg, agent };
}

const onLoopback = (ep: Endpoint | null | undefined): ep is Endpoint => ep?.ip === "127.0.0.1";

/** Waits until the node points `peer` at a relay socket; returns that endpoint. */
async function relayEndpoint(wg: FakeWireGuard, peer: string): Promise<Endpoint> {
  const ep = await waitFor(`${peer.slice(0, 8)} relayed`, () => {
    const now = wg.peer("wg0", peer)?.endpoint;
    return onLoopback(now) ? now : null;
  });
  return ep as Endpoint;
}

describe("the end-to-end relay", () => {
  it("a pair that cannot punch is relayed within a few punch intervals, and packets pass unchanged both ways", async () => {
    const reg = await registry();
    const wa = await fakeWireGuardSocket();
    const wb = await fakeWireGuardSocket();
    const alice = await node(ALICE, BOB, "127.0.0.2", reg.port, wa.port);
    const bob = await node(BOB, ALICE, "127.0.0.3", reg.port, wb.port);
    const aToB = await relayEndpoint(alice.wg, BOB);
    const bToA = await relayEndpoint(bob.wg, ALICE);
    // Relaying re-creates the peer so that WireGuard initiates at once, with its own allowed IPs.
    const relayCall = alice.wg.calls.find((c) => c.updates.some((u) => u.publicKey === BOB && onLoopback(u.endpoint)));
    assert.deepEqual(relayCall?.updates.find((u) => u.publicKey === BOB)?.recreate, { allowedIps: ["10.200.0.9/32"] });

    wa.socket.send("ciphertext from alice", aToB.port, "127.0.0.1");
    await waitFor("Bob's WireGuard gets Alice's packet", () => wb.got.length > 0);
    assert.deepEqual(wb.got[0], { data: "ciphertext from alice", from: bToA.port }, "it arrives from Bob's relay endpoint for Alice, where his WireGuard answers");
    wb.socket.send("ciphertext from bob", bToA.port, "127.0.0.1");
    await waitFor("Alice's WireGuard gets Bob's answer", () => wa.got.length > 0);
    assert.deepEqual(wa.got[0], { data: "ciphertext from bob", from: aToB.port });
    assert.ok(reg.relay && reg.relay.core.stats.packets >= 2 && reg.relay.core.activePairs() === 1);
    // Nothing but endpoints and keepalives changed: allowed IPs never.
    for (const n of [alice, bob]) assert.ok(n.wg.calls.every((c) => c.updates.every((u) => u.allowedIps === undefined)));
  });

  it("a registry given by name is found among the peers by what the name resolves to", async () => {
    const reg = await registry();
    const wa = await fakeWireGuardSocket();
    const wb = await fakeWireGuardSocket();
    // localhost resolves to 127.0.0.1: the registry peer's tunnel address in these nodes' configs.
    const alice = await node(ALICE, BOB, "127.0.0.2", reg.port, wa.port, true, "localhost");
    await node(BOB, ALICE, "127.0.0.3", reg.port, wb.port, true, "localhost");
    await relayEndpoint(alice.wg, BOB);
    assert.ok((reg.relay?.core.relayingNodes() ?? 0) >= 2);
  });

  it("the registry refuses to relay to a node that runs --no-relay, and that node never relays", async () => {
    const reg = await registry();
    const wa = await fakeWireGuardSocket();
    const wb = await fakeWireGuardSocket();
    const alice = await node(ALICE, BOB, "127.0.0.2", reg.port, wa.port);
    const bob = await node(BOB, ALICE, "127.0.0.3", reg.port, wb.port, false);
    const aToB = await relayEndpoint(alice.wg, BOB);
    wa.socket.send("for bob", aToB.port, "127.0.0.1");
    await waitFor("the registry drops it", () => (reg.relay?.core.stats.dropped.destination_not_relaying ?? 0) > 0);
    assert.equal(reg.relay?.core.stats.packets, 0);
    assert.deepEqual(wb.got, []);
    assert.ok(bob.wg.calls.every((c) => c.updates.every((u) => !onLoopback(u.endpoint))), "Bob pointed a peer at a relay socket");
  });

  it("a registry run with --no-relay answers hellos but relays nothing, and its nodes keep punching", async () => {
    const reg = await registry(false);
    const wa = await fakeWireGuardSocket();
    const alice = await node(ALICE, BOB, "127.0.0.2", reg.port, wa.port);
    await waitFor("Alice punched Bob several times", () => alice.wg.calls.filter((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)).length >= 3);
    await waitFor("a hello answered", () => (reg.relay?.core.relayingNodes() ?? 0) >= 1);
    assert.ok(alice.wg.calls.every((c) => c.updates.every((u) => !onLoopback(u.endpoint))));
  });
});
