/**
 * Registries: which local peer is which registry (proven, never on a
 * registry's word alone), reports to each, and dialling a registry again
 * when it answers hellos. Fake sources, a fake clock, no network.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AppliedRecord } from "../../src/node/decide.js";
import { RECONNECT_GAP_MS, Registries, type RegistryRef } from "../../src/node/registries.js";
import { ReportError, type NodeReportMessage, type RegistryHealth, type RegistrySource, type RegistryView } from "../../src/node/source.js";
import { FakeClock } from "../../src/util/clock.js";
import type { PathState } from "../../src/util/path.js";
import type { WgDevice, WgPeer } from "../../src/wg/types.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

const SELF = key(1);
const BOB = key(2);
const REG1 = key(8);
const REG2 = key(9);

function peer(publicKey: string, allowedIps: string[], endpoint: { ip: string; port: number } | null = null): WgPeer {
  return { publicKey, endpoint, allowedIps, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, persistentKeepaliveSec: 25, hasPresharedKey: false };
}

const DEVICE: WgDevice = {
  name: "wg0",
  type: "userspace",
  publicKey: SELF,
  listenPort: 51820,
  peers: [peer(REG1, ["10.200.0.1/32"], { ip: "203.0.113.1", port: 51820 }), peer(REG2, ["10.200.0.2/32"], { ip: "203.0.113.3", port: 51820 }), peer(BOB, ["10.200.0.10/32"])],
};

/** A registry the test speaks for: it says views, counts reports and reconnects, and answers reports as told. */
function fakeSource(health: RegistryHealth = "connected") {
  let listener: ((view: RegistryView) => void) | null = null;
  const state = { health, reconnects: 0, reports: [] as NodeReportMessage[], answer: null as Error | null, tunnel: null as string | null };
  const source: RegistrySource = {
    start: (onView) => {
      listener = onView;
    },
    report: async (m) => {
      state.reports.push(m);
      if (state.answer) throw state.answer;
    },
    useTunnel: (host) => {
      state.tunnel = host;
    },
    reconnect: () => {
      state.reconnects += 1;
    },
    health: () => state.health,
    stop: () => {},
  };
  return { source, state, say: (v: RegistryView) => listener?.(v) };
}

function view(registryPublicKey: string, generation = 1): RegistryView {
  return { endpoints: new Map([[BOB, { ip: "198.51.100.7", port: 4000 }]]), candidates: new Map(), registryPublicKey, relay: true, generation, via: "watch" };
}

function setup(refs: (a: ReturnType<typeof fakeSource>, b: ReturnType<typeof fakeSource>) => RegistryRef[], routed = true) {
  const clock = new FakeClock();
  const log = captureLogger();
  const a = fakeSource();
  const b = fakeSource();
  let changes = 0;
  const registries = new Registries({ refs: refs(a, b), clock, logger: log.logger, routeCheck: async () => routed, onChange: () => changes++ });
  registries.start([]);
  return { clock, log, a, b, registries, changes: () => changes };
}

const both = (a: ReturnType<typeof fakeSource>, b: ReturnType<typeof fakeSource>): RegistryRef[] => [
  { name: "203.0.113.1:1638", source: a.source, host: "203.0.113.1", ips: ["203.0.113.1"], port: 1638 },
  { name: "reg2.example:1638", source: b.source, host: "reg2.example", ips: ["203.0.113.3"], port: 1638 },
];

const tick = () => new Promise((r) => setImmediate(r));

describe("Registries: which peer is which registry", () => {
  it("each registry's peer is proven by the address dialled (the endpoint the user configured); watch and reports move to its tunnel address", async () => {
    const t = setup(both);
    t.a.say(view(REG1));
    t.b.say(view(REG2));
    const proven = t.registries.prove("wg0", DEVICE, new Map());
    assert.deepEqual(Object.fromEntries(proven), {
      "203.0.113.1:1638": { publicKey: REG1, tunnelIp: "10.200.0.1" },
      "reg2.example:1638": { publicKey: REG2, tunnelIp: "10.200.0.2" },
    });
    assert.deepEqual([...t.registries.keysOn("wg0", DEVICE)].sort(), [REG1, REG2].sort());
    await tick();
    assert.equal(t.a.state.tunnel, "10.200.0.1");
    assert.equal(t.b.state.tunnel, "10.200.0.2");
    assert.equal(t.registries.firstProvenHost("wg0"), "203.0.113.1");
  });

  it("an endpoint this agent wrote proves nothing, nor does a registry naming a peer at another address (warned once)", () => {
    const t = setup(both);
    // The second registry names Bob as itself; Bob is at no address of that registry's.
    t.b.say(view(BOB));
    t.a.say(view(REG1));
    const applied = new Map<string, AppliedRecord>([[REG1, { endpoint: { ip: "203.0.113.1", port: 51820 }, atMs: 0, attempts: 1 }]]);
    assert.equal(t.registries.prove("wg0", DEVICE, applied).size, 0);
    t.registries.prove("wg0", DEVICE, applied);
    const warned = t.log.records.filter((r) => String(r.msg).includes("neither at the registry's address")).map((r) => r.registry);
    assert.deepEqual(warned, ["203.0.113.1:1638", "reg2.example:1638"], "once per registry, not once per pass");
  });

  it("a proven peer stays proven whatever the registry says later", () => {
    const t = setup(both);
    t.a.say(view(REG1));
    t.registries.prove("wg0", DEVICE, new Map());
    t.a.say(view(BOB, 2));
    assert.equal(t.registries.prove("wg0", DEVICE, new Map()).get("203.0.113.1:1638")?.publicKey, REG1);
  });
});

describe("Registries: reports", () => {
  const paths: Map<string, PathState> = new Map([[BOB, { peerPublicKey: BOB, kind: "direct", sinceMs: 0, endpoint: null }]]);

  it("go to every registry that names a peer of ours as itself; again only when they change or a registry's connection is new", async () => {
    const t = setup(both);
    t.a.say(view(REG1));
    t.b.say(view(REG2));
    t.registries.report("wg0", DEVICE, [], paths);
    t.registries.report("wg0", DEVICE, [], paths);
    assert.equal(t.a.state.reports.length, 1);
    assert.equal(t.b.state.reports.length, 1);
    t.b.say(view(REG2, 2));
    t.registries.report("wg0", DEVICE, [], paths);
    assert.equal(t.a.state.reports.length, 1, "nothing new for the first");
    assert.equal(t.b.state.reports.length, 2, "the second reconnected: it may have lost what it knew");
  });

  it("a refusal is logged once and not retried on this connection; a failure is retried at the next pass", async () => {
    const t = setup(both);
    t.a.say(view(REG1));
    t.b.say(view(REG2));
    t.a.state.answer = new ReportError("not a peer of this registry", true);
    t.b.state.answer = new ReportError("deadline exceeded", false);
    for (let i = 0; i < 3; i++) {
      t.registries.report("wg0", DEVICE, [], paths);
      await tick();
    }
    assert.equal(t.a.state.reports.length, 1);
    assert.equal(t.b.state.reports.length, 3);
    assert.equal(t.log.records.filter((r) => String(r.msg).includes("does not take reports") && r.registry === "203.0.113.1:1638").length, 1);
  });
});

describe("Registries: dialling again a registry that answers hellos", () => {
  it("only when its watch is down and it answers, at most every RECONNECT_GAP_MS", () => {
    const t = setup(both);
    t.a.state.health = "unreachable";
    const answering = new Set<string>();
    t.registries.reconnectAnswering((n) => answering.has(n));
    assert.equal(t.a.state.reconnects, 0, "not while it does not answer");
    answering.add("203.0.113.1:1638").add("reg2.example:1638");
    t.registries.reconnectAnswering((n) => answering.has(n));
    assert.equal(t.a.state.reconnects, 1);
    assert.equal(t.b.state.reconnects, 0, "a connected registry is left alone");
    t.clock.advance(RECONNECT_GAP_MS - 1);
    t.registries.reconnectAnswering((n) => answering.has(n));
    assert.equal(t.a.state.reconnects, 1);
    t.clock.advance(1);
    t.registries.reconnectAnswering((n) => answering.has(n));
    assert.equal(t.a.state.reconnects, 2);
  });

  it("status names each registry with its state", () => {
    const t = setup(both);
    t.a.say(view(REG1));
    t.registries.prove("wg0", DEVICE, new Map());
    t.b.state.health = "unreachable";
    assert.deepEqual(
      t.registries.status(
        (n) => n === "203.0.113.1:1638",
        () => false,
      ),
      [
        { name: "203.0.113.1:1638", health: "connected", publicKey: REG1, answering: true, relays: false, lastViewMs: t.clock.now() },
        { name: "reg2.example:1638", health: "unreachable", publicKey: null, answering: false, relays: false, lastViewMs: null },
      ],
    );
  });
});

describe("Registries: disagreements", () => {
  it("are logged once per peer and pair of values, and forgotten when the registries agree again", () => {
    const t = setup(both);
    const at = (port: number): RegistryView => ({ ...view(REG1), endpoints: new Map([[BOB, { ip: "198.51.100.7", port }]]) });
    const logged = () => t.log.records.filter((r) => String(r.msg).includes("registries disagree")).length;
    t.a.say(at(4000));
    t.b.say({ ...at(4001), registryPublicKey: REG2 });
    t.b.say({ ...at(4001), registryPublicKey: REG2 });
    assert.equal(logged(), 1);
    t.b.say({ ...at(4000), registryPublicKey: REG2 });
    t.b.say({ ...at(4001), registryPublicKey: REG2 });
    assert.equal(logged(), 2, "a disagreement that comes back after they agreed is logged again");
  });
});
