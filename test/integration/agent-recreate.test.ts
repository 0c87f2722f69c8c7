/**
 * A punch re-creates a WireGuard peer, which drops its session. The agent
 * decides on one read of the interface and writes a few milliseconds later:
 * a peer that handshook in between must keep its session.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { NodeAgent } from "../../src/node/agent.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import type { WgDevice } from "../../src/wg/types.js";
import { BOB, BOB_EP, nodeDevice, quietAgent, staticSource } from "../support/agent.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const agents: NodeAgent[] = [];
after(async () => {
  for (const a of agents) await a.stop();
});

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
    const wg = new CountingWg(nodeDevice());
    // Read 1 is the start's (which peers to ask the registry about), read 2 the pass's (no session with
    // Bob: punch him), read 3 the check just before the write.
    wg.beforeRead = (n) => {
      if (n === 3) wg.setHandshake("wg0", BOB, Date.now());
    };
    const log = captureLogger();
    const agent = new NodeAgent(quietAgent(wg, staticSource(), systemClock, log.logger));
    agents.push(agent);
    agent.start();
    await waitFor("the agent to look again after skipping", () => wg.reads >= 4);
    await agent.reconcile();
    assert.ok(log.records.some((r) => String(r.msg).startsWith("not re-creating the peer: it handshook since the decision")));
    assert.ok(!wg.calls.some((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)), "Bob's fresh session was dropped");
    assert.ok((wg.peer("wg0", BOB)?.lastHandshakeMs ?? 0) > 0);
  });

  it("goes ahead when nothing happened in between (the control)", async () => {
    const wg = new CountingWg(nodeDevice());
    const agent = new NodeAgent(quietAgent(wg, staticSource(), systemClock, captureLogger().logger));
    agents.push(agent);
    agent.start();
    await waitFor("Bob punched", () => wg.calls.some((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)));
    assert.deepEqual(wg.peer("wg0", BOB)?.endpoint, BOB_EP);
  });
});
