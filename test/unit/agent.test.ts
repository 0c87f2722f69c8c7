/**
 * The node agent driven by a fake clock that fires its timers: punch retries,
 * the punches' limit and the refresh tick, with no real time passing (a fake
 * WireGuard, a registry that says one thing, no relay).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeAgent } from "../../src/node/agent.js";
import { MAX_PUNCH_ATTEMPTS, PUNCH_RETRY_MS } from "../../src/node/decide.js";
import type { RegistrySource, RegistryView } from "../../src/node/source.js";
import { FakeClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

const SELF = key(1);
const BOB = key(2);
const REGISTRY = key(9);
const BOB_EP = { ip: "203.0.113.2", port: 4000 };

function setup(refreshMs = 60_000) {
  const clock = new FakeClock();
  const wg = new FakeWireGuard([
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
  const view: RegistryView = { endpoints: new Map([[BOB, BOB_EP]]), candidates: new Map(), registryPublicKey: REGISTRY, relay: false, generation: 1, via: "watch" };
  let started: ((v: RegistryView) => void) | null = null;
  const source: RegistrySource = { start: (onView) => (started = onView), report: async () => {}, stop: () => {} };
  const agent = new NodeAgent({
    wg,
    source,
    iface: "wg0",
    refreshMs,
    clock,
    logger: captureLogger().logger,
    prober: null,
    probeIntervalMs: 0,
    interfaces: () => ({}),
    routeCheck: async () => false,
    natProbe: null,
  });
  const punches = () => wg.calls.filter((c) => c.updates.some((u) => u.publicKey === BOB && u.recreate)).length;
  /** Starts the agent and hands it the registry's view; resolves when its first pass is done. */
  const begin = async () => {
    agent.start();
    for (let i = 0; i < 100 && started === null; i++) await new Promise((r) => setImmediate(r));
    assert.ok(started, "the agent subscribed");
    (started as (v: RegistryView) => void)(view);
    await agent.reconcile();
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
