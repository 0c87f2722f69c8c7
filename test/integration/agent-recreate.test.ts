/**
 * A punch re-creates a WireGuard peer, which drops its session. The agent
 * decides on one read of the interface and writes a few milliseconds later:
 * a peer that handshook in between must keep its session.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { NodeAgent } from "../../src/node/agent.js";
import type { RegistrySource, RegistryView } from "../../src/node/source.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import type { WgDevice } from "../../src/wg/types.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const SELF = key(1);
const BOB = key(2);
const REGISTRY = key(9);
const BOB_EP = { ip: "203.0.113.2", port: 4000 };
const agents: NodeAgent[] = [];
after(async () => {
  for (const a of agents) await a.stop();
});

/** A registry that says one thing, once. */
function staticSource(view: Omit<RegistryView, "via" | "generation">): RegistrySource {
  return {
    start: (onView) => onView({ ...view, generation: 1, via: "watch" }),
    report: async () => {},
    stop: () => {},
  };
}

/** Counts reads; `beforeRead(n)` runs before read number n (from 1) is answered. */
class CountingWg extends FakeWireGuard {
  reads = 0;
  beforeRead: (n: number) => void = () => {};
  override async getDevice(name: string): Promise<WgDevice> {
    this.beforeRead(++this.reads);
    return super.getDevice(name);
  }
}

describe("re-creating a peer", () => {
  it("is skipped when the peer handshook between the read the decision was taken on and the write", async () => {
    const wg = new CountingWg([
      {
        name: "wg0",
        publicKey: SELF,
        listenPort: 51820,
        peers: [
          { publicKey: REGISTRY, endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["10.200.0.1/32"], persistentKeepaliveSec: 25 },
          { publicKey: BOB, allowedIps: ["10.200.0.2/32"] },
        ],
      },
    ]);
    // Read 1 is the start's (which peers to ask the registry about), read 2 the pass's (no session with
    // Bob: punch him), read 3 the check just before the write.
    wg.beforeRead = (n) => {
      if (n === 3) wg.setHandshake("wg0", BOB, Date.now());
    };
    const log = captureLogger();
    const agent = new NodeAgent({
      wg,
      source: staticSource({ endpoints: new Map([[BOB, BOB_EP]]), candidates: new Map(), registryPublicKey: REGISTRY, relay: false }),
      iface: "wg0",
      refreshMs: 60_000,
      clock: systemClock,
      logger: log.logger,
      prober: null,
      probeIntervalMs: 0,
      interfaces: () => ({}),
      routeCheck: async () => false,
    });
    agents.push(agent);
    agent.start();
    await waitFor("the agent to look again after skipping", () => wg.reads >= 4);
    await agent.reconcile();
    assert.ok(log.records.some((r) => String(r.msg).startsWith("not re-creating the peer: it handshook since the decision")));
    assert.ok(!wg.calls.some((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)), "Bob's fresh session was dropped");
    assert.ok((wg.peer("wg0", BOB)?.lastHandshakeMs ?? 0) > 0);
  });

  it("goes ahead when nothing happened in between (the control)", async () => {
    const wg = new CountingWg([
      {
        name: "wg0",
        publicKey: SELF,
        listenPort: 51820,
        peers: [
          { publicKey: REGISTRY, endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["10.200.0.1/32"], persistentKeepaliveSec: 25 },
          { publicKey: BOB, allowedIps: ["10.200.0.2/32"] },
        ],
      },
    ]);
    const agent = new NodeAgent({
      wg,
      source: staticSource({ endpoints: new Map([[BOB, BOB_EP]]), candidates: new Map(), registryPublicKey: REGISTRY, relay: false }),
      iface: "wg0",
      refreshMs: 60_000,
      clock: systemClock,
      logger: captureLogger().logger,
      prober: null,
      probeIntervalMs: 0,
      interfaces: () => ({}),
      routeCheck: async () => false,
    });
    agents.push(agent);
    agent.start();
    await waitFor("Bob punched", () => wg.calls.some((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)));
    assert.deepEqual(wg.peer("wg0", BOB)?.endpoint, BOB_EP);
  });
});
