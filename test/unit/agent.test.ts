/**
 * The node agent driven by a fake clock that fires its timers: punch retries,
 * the punches' limit and the refresh tick, with no real time passing (a fake
 * WireGuard, a registry that says one thing, no relay).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeAgent } from "../../src/node/agent.js";
import { MAX_PUNCH_ATTEMPTS, PUNCH_RETRY_MS } from "../../src/node/decide.js";
import { FakeClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { BOB, BOB_EP, nodeDevice, quietAgent, staticSource } from "../support/agent.js";
import { captureLogger } from "../support/logs.js";

function setup(refreshMs = 60_000) {
  const clock = new FakeClock();
  const wg = new FakeWireGuard(nodeDevice());
  const source = staticSource();
  const agent = new NodeAgent(quietAgent(wg, source, clock, captureLogger().logger, refreshMs));
  const punches = () => wg.calls.filter((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)).length;
  /** Starts the agent (it reads WireGuard, then subscribes and gets the registry's view); resolves when its first pass is done. */
  const begin = async () => {
    agent.start();
    for (let i = 0; i < 100 && wg.calls.length === 0; i++) await new Promise((r) => setImmediate(r));
    await agent.settled();
  };
  /** Moves the fake clock on and waits for the passes its timers started (and starts none itself). */
  const advance = async (ms: number) => {
    clock.advance(ms);
    await agent.settled();
  };
  return { clock, wg, agent, punches, begin, advance };
}

describe("NodeAgent on a fake clock", () => {
  it("punches at once, again every PUNCH_RETRY_MS without a handshake, MAX_PUNCH_ATTEMPTS times, then leaves it to WireGuard", async () => {
    const t = setup();
    await t.begin();
    assert.equal(t.punches(), 1);
    await t.advance(PUNCH_RETRY_MS - 1);
    assert.equal(t.punches(), 1, "not before the retry is due");
    for (let n = 2; n <= MAX_PUNCH_ATTEMPTS; n++) {
      await t.advance(1);
      assert.equal(t.punches(), n);
      await t.advance(PUNCH_RETRY_MS - 1);
    }
    await t.advance(10 * PUNCH_RETRY_MS);
    assert.equal(t.punches(), MAX_PUNCH_ATTEMPTS, "no punch beyond the limit");
    await t.agent.stop();
    assert.equal(t.clock.timers, 0, "stopping cancels every timer");
  });

  it("a handshake before the retry stops the punching", async () => {
    const t = setup();
    await t.begin();
    t.wg.setHandshake("wg0", BOB, t.clock.now() + 100);
    await t.advance(5 * PUNCH_RETRY_MS);
    assert.equal(t.punches(), 1);
    await t.agent.stop();
  });

  it("looks at WireGuard again every refresh interval, with nothing else due", async () => {
    const t = setup(15_000);
    await t.begin();
    t.wg.setHandshake("wg0", BOB, t.clock.now());
    await t.advance(PUNCH_RETRY_MS);
    const reads = () => t.wg.calls.length;
    const before = reads();
    // An endpoint the user set on a peer without a session: the next refresh pass acts on it.
    t.wg.setHandshake("wg0", BOB, 0);
    t.wg.setPeerEndpoint("wg0", BOB, { ip: "198.51.100.9", port: 1 });
    await t.advance(15_000 - PUNCH_RETRY_MS - 1);
    assert.equal(reads(), before, `nothing written before the tick: ${JSON.stringify(t.wg.calls.slice(before))} at ${t.clock.now()}`);
    await t.advance(1);
    assert.ok(reads() > before, "the refresh tick wrote the registry's endpoint");
    assert.deepEqual(t.wg.peer("wg0", BOB)?.endpoint, BOB_EP);
    await t.agent.stop();
  });
});
