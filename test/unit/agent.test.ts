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
import type { NodeReportMessage, RegistrySource, RegistryView } from "../../src/node/source.js";
import type { Endpoint } from "../../src/wg/types.js";
import { BOB, BOB_EP, BOB_VIEW, nodeDevice, quietAgent, staticSource } from "../support/agent.js";
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

describe("NodeAgent with two registries", () => {
  /** A registry the test speaks for: `say(view)` hands the agent a new view; it counts reports. */
  function pushSource() {
    let listener: ((view: RegistryView) => void) | null = null;
    const reports: NodeReportMessage[] = [];
    const source: RegistrySource = {
      start: (onView) => {
        listener = onView;
      },
      report: async (m) => {
        reports.push(m);
      },
      stop: () => {},
    };
    return { source, reports, started: () => listener !== null, say: (view: RegistryView) => listener?.(view) };
  }
  const view = (generation: number, bob: Endpoint): RegistryView => ({ ...BOB_VIEW, endpoints: new Map([[BOB, bob]]), generation });

  async function setup() {
    const clock = new FakeClock();
    const wg = new FakeWireGuard(nodeDevice());
    const r1 = pushSource();
    const r2 = pushSource();
    const options = quietAgent(wg, r1.source, clock, captureLogger().logger);
    const agent = new NodeAgent({
      ...options,
      registries: [
        // The registry's peer is proven by its endpoint (203.0.113.1); both registries name it as themselves here.
        { name: "r1:1638", source: r1.source, host: "203.0.113.1", ips: ["203.0.113.1"], port: 1638 },
        { name: "r2:1638", source: r2.source, host: "198.51.100.1", ips: ["198.51.100.1"], port: 1638 },
      ],
    });
    agent.start();
    // The agent reads WireGuard (the keys to ask for), then subscribes to both.
    for (let i = 0; i < 100 && !(r1.started() && r2.started()); i++) await new Promise((r) => setImmediate(r));
    assert.ok(r1.started() && r2.started(), "the agent subscribes to every registry");
    const endpointOfBob = async () => (await wg.getDevice("wg0")).peers.find((p) => p.publicKey === BOB)?.endpoint ?? null;
    return { clock, wg, agent, r1, r2, endpointOfBob };
  }

  it("a new endpoint that only the second registry reports (the first is silent) is written, and reports go to both", async () => {
    const t = await setup();
    t.r1.say(view(1, BOB_EP));
    t.r2.say(view(1, BOB_EP));
    await t.agent.settled();
    assert.deepEqual(await t.endpointOfBob(), BOB_EP);
    const moved = { ip: BOB_EP.ip, port: BOB_EP.port + 1 };
    t.clock.advance(1_000);
    t.r2.say(view(1, moved));
    await t.agent.settled();
    assert.deepEqual(await t.endpointOfBob(), moved);
    assert.ok(t.r1.reports.length > 0 && t.r2.reports.length > 0, "both registries get the node's report");
    // The first comes back (a new snapshot, with what it had): the live news stands.
    t.r1.say(view(2, BOB_EP));
    await t.agent.settled();
    assert.deepEqual(await t.endpointOfBob(), moved);
    await t.agent.stop();
  });

  it("status names both registries", async () => {
    const t = await setup();
    t.r1.say(view(1, BOB_EP));
    await t.agent.settled();
    const s = await t.agent.status();
    assert.deepEqual(
      s.registries?.map((r) => [r.name, r.lastViewMs !== null]),
      [
        ["r1:1638", true],
        ["r2:1638", false],
      ],
    );
    await t.agent.stop();
  });
});
