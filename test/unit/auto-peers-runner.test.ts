import assert from "node:assert/strict";
import { readdir, stat, writeFile } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { NodeAgent } from "../../src/node/agent.js";
import { EMPTY_RECORD, type NamedView } from "../../src/node/auto-peers.js";
import { loadRecord, recordFromJson, recordPath, recordToJson, saveRecord } from "../../src/node/auto-peers-record.js";
import { AutoPeers } from "../../src/node/auto-peers-runner.js";
import { runNode } from "../../src/node/run.js";
import type { RegistrySource, RegistryView } from "../../src/node/source.js";
import { FakeClock, systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { tempDir } from "./wg-fake-daemon.js";
import { quietAgent } from "../support/agent.js";
import { waitFor } from "../support/wait.js";

const SELF = key(1);
const REG = key(9);
const A = key(3);
const B = key(4);
const USER = key(5);
const PREFIX = "10.77.0.0/24";

const dirs: Array<{ remove(): Promise<void> }> = [];
after(async () => {
  for (const d of dirs) await d.remove();
});
async function dir(): Promise<string> {
  const d = await tempDir("wh-auto-");
  dirs.push(d);
  return d.dir;
}

function wgWith(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: SELF,
      peers: [
        { publicKey: REG, allowedIps: ["10.77.0.1/32"], endpoint: { ip: "203.0.113.1", port: 51820 }, persistentKeepaliveSec: 25 },
        { publicKey: USER, allowedIps: ["10.77.0.50/32"] },
      ],
    },
  ]);
}

function view(peers: Record<string, string[]>): RegistryView {
  return { endpoints: new Map(Object.keys(peers).map((k) => [k, null])), registryPublicKey: REG, candidates: new Map(), allowedIps: new Map(Object.entries(peers)), generation: 1, relay: false, via: "watch" };
}
const named = (v: RegistryView | null): NamedView[] => [{ name: "203.0.113.1", view: v }];

describe("the record of auto peers", () => {
  it("round-trips, is written with mode 0600 and leaves no temporary file", async () => {
    const d = await dir();
    const rec = { added: new Map([[A, { allowedIp: "10.77.0.10/32", addedAtMs: 5, absentSinceMs: null }]]), removed: new Map([[B, { atMs: 7, count: 2 }]]) };
    await saveRecord(d, "wg0", rec);
    assert.equal((await stat(recordPath(d, "wg0"))).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(d), ["auto-peers-wg0.json"]);
    const { logger } = captureLogger();
    assert.deepEqual(await loadRecord(d, "wg0", logger), rec);
  });

  it("no file: empty, nothing logged", async () => {
    const log = captureLogger();
    assert.deepEqual(await loadRecord(await dir(), "wg0", log.logger), EMPTY_RECORD);
    assert.equal(log.records.length, 0);
  });

  const corrupt: Array<[string, string]> = [
    ["not JSON", "{"],
    ["another version", JSON.stringify({ version: 2, iface: "wg0", added: [], removed: [] })],
    ["another interface", JSON.stringify({ version: 1, iface: "wg1", added: [], removed: [] })],
    ["a bad key", JSON.stringify({ version: 1, iface: "wg0", added: [{ publicKey: "nope", allowedIp: "10.77.0.10/32", addedAtMs: 0, absentSinceMs: null }], removed: [] })],
    ["a prefix not in canonical form", JSON.stringify({ version: 1, iface: "wg0", added: [{ publicKey: A, allowedIp: "10.77.0.10/24", addedAtMs: 0, absentSinceMs: null }], removed: [] })],
  ];
  for (const [what, text] of corrupt) {
    it(`corrupt (${what}): logged and treated as empty`, async () => {
      const d = await dir();
      await writeFile(recordPath(d, "wg0"), text);
      const log = captureLogger();
      assert.deepEqual(await loadRecord(d, "wg0", log.logger), EMPTY_RECORD);
      assert.match(log.text(), /the record of auto peers is corrupt: starting from none/);
    });
  }

  it("recordFromJson(recordToJson(r)) is r", () => {
    const rec = { added: new Map([[A, { allowedIp: "fd77::a/128", addedAtMs: 1, absentSinceMs: 2 }]]), removed: new Map() };
    assert.deepEqual(recordFromJson("wg0", recordToJson("wg0", rec)), rec);
  });
});

describe("AutoPeers", () => {
  const make = (wg: FakeWireGuard, recordDir: string, log = captureLogger()) => ({
    auto: new AutoPeers({ wg, prefix: PREFIX, recordDir, logger: log.logger, keepaliveSec: 25, graceMs: 1_000 }),
    log,
  });

  it("adds with the keepalive and writes the record first; logs a refusal once, naming registry and peer", async () => {
    const wg = wgWith();
    const d = await dir();
    const { auto, log } = make(wg, d);
    const v = view({ [A]: ["10.77.0.10/32"], [B]: ["10.77.0.50/32"], [REG]: ["10.77.0.1/32"] });
    const device = await wg.getDevice("wg0");
    assert.equal((await auto.pass("wg0", device, named(v), new Set([REG]), 0)).changed, true);
    assert.deepEqual([wg.peer("wg0", A)?.allowedIps, wg.peer("wg0", A)?.persistentKeepaliveSec], [["10.77.0.10/32"], 25]);
    assert.equal(wg.peer("wg0", B), undefined, "B collides with the user's peer");
    assert.deepEqual(wg.peer("wg0", USER)?.allowedIps, ["10.77.0.50/32"]);
    assert.deepEqual([...(await loadRecord(d, "wg0", log.logger)).added.keys()], [A]);
    assert.equal((await auto.pass("wg0", await wg.getDevice("wg0"), named(v), new Set([REG]), 10)).changed, false);
    const refusals = log.records.filter((r) => String(r.msg).startsWith("auto peer refused"));
    assert.equal(refusals.length, 1);
    assert.deepEqual([refusals[0]?.registry, refusals[0]?.peer, refusals[0]?.reason], ["203.0.113.1", B.slice(0, 8), "overlap"]);
  });

  it("after a restart (a new AutoPeers on the same record) removes only its own peer, after the grace time", async () => {
    const wg = wgWith();
    const d = await dir();
    const first = make(wg, d).auto;
    await first.pass("wg0", await wg.getDevice("wg0"), named(view({ [A]: ["10.77.0.10/32"] })), new Set([REG]), 0);
    // The agent is killed; another starts, and the registry lists no one any more.
    const { auto, log } = make(wg, d);
    const empty = named(view({}));
    assert.equal((await auto.pass("wg0", await wg.getDevice("wg0"), empty, new Set([REG]), 100)).changed, false);
    assert.equal((await auto.pass("wg0", await wg.getDevice("wg0"), named(null), new Set([REG]), 5_000)).changed, false, "no registry connected: nothing removed");
    assert.equal((await auto.pass("wg0", await wg.getDevice("wg0"), empty, new Set([REG]), 6_000)).changed, false);
    assert.equal((await auto.pass("wg0", await wg.getDevice("wg0"), empty, new Set([REG]), 7_000)).changed, true);
    assert.deepEqual((await wg.getDevice("wg0")).peers.map((p) => p.publicKey).sort(), [REG, USER].sort());
    assert.match(log.text(), /auto peer removed/);
    assert.equal((await loadRecord(d, "wg0", log.logger)).added.size, 0);
  });

  it("a record that cannot be written: nothing added, logged, never thrown", async () => {
    const wg = wgWith();
    const d = await dir();
    await writeFile(`${d}/file`, "");
    const { auto, log } = make(wg, `${d}/file/sub`);
    assert.equal((await auto.pass("wg0", await wg.getDevice("wg0"), named(view({ [A]: ["10.77.0.10/32"] })), new Set([REG]), 0)).changed, false);
    assert.equal(wg.peer("wg0", A), undefined);
    assert.match(log.text(), /auto peers: cannot add or remove peers now/);
  });

  it("WireGuard failing: logged, the next pass adds", async () => {
    const wg = wgWith();
    const { auto, log } = make(wg, await dir());
    const v = named(view({ [A]: ["10.77.0.10/32"] }));
    wg.failNext("failed", "updatePeers");
    assert.equal((await auto.pass("wg0", await wg.getDevice("wg0"), v, new Set([REG]), 0)).changed, true);
    assert.equal(wg.peer("wg0", A), undefined);
    assert.match(log.text(), /injected failed failure/);
    await auto.pass("wg0", await wg.getDevice("wg0"), v, new Set([REG]), 1);
    assert.ok(wg.peer("wg0", A));
  });
});

describe("the agent with --auto-peers", () => {
  it("asks the registry for every peer, adds the one inside the prefix, points it where the registry sees it, removes it after the grace time", async () => {
    const wg = wgWith();
    const log = captureLogger();
    const clock = new FakeClock(1_700_000_000_000);
    const v: RegistryView = { ...view({ [A]: ["10.77.0.10/32"] }), endpoints: new Map([[A, { ip: "203.0.113.7", port: 51820 }]]) };
    const interests: Array<readonly string[] | undefined> = [];
    let push: (view: RegistryView) => void = () => {};
    const source: RegistrySource = {
      start: (onView, interest) => {
        interests.push(interest);
        push = onView;
        onView(v);
      },
      report: async () => {},
      stop: () => {},
    };
    const autoPeers = new AutoPeers({ wg, prefix: PREFIX, recordDir: await dir(), logger: log.logger, keepaliveSec: 25, graceMs: 30_000 });
    const agent = new NodeAgent({ ...quietAgent(wg, source, clock, log.logger), autoPeers });
    agent.start();
    try {
      await waitFor("A added and pointed at", () => wg.peer("wg0", A)?.endpoint?.ip === "203.0.113.7" || undefined);
      assert.deepEqual(interests, [[]]);
      assert.deepEqual(wg.peer("wg0", USER)?.allowedIps, ["10.77.0.50/32"]);
      // A leaves the registry: the agent wakes itself when the grace time is over (its refresh is a minute away).
      push(view({}));
      await agent.settled();
      clock.advance(29_000);
      await agent.settled();
      assert.ok(wg.peer("wg0", A), "still there within the grace time");
      clock.advance(1_000);
      await waitFor("A removed", () => wg.peer("wg0", A) === undefined || undefined);
      assert.deepEqual(wg.peer("wg0", USER)?.allowedIps, ["10.77.0.50/32"]);
    } finally {
      await agent.stop();
    }
  });
});

describe("runNode --auto-peers start-up checks", () => {
  const silent: RegistrySource = { start: () => {}, report: async () => {}, stop: () => {} };
  const start = (iface: string | null, prefix: string) =>
    runNode(
      { addresses: ["203.0.113.1:1638"], token: "", iface, refreshMs: 60_000, keepaliveSec: 25, probeIntervalMs: 0, autoPeers: prefix, controlSocket: null },
      {
        wg: wgWith(),
        logger: captureLogger().logger,
        clock: systemClock,
        source: silent,
        prober: null,
        rttMeter: null,
        natProbe: null,
        routeCheck: async () => false,
        interfaces: () => ({ wg0: [{ address: "10.77.0.5", netmask: "255.255.255.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: false, cidr: "10.77.0.5/24" }] }),
      },
    );
  it("without -i: an error naming the value", async () => {
    await assert.rejects(start(null, PREFIX), /--auto-peers 10\.77\.0\.0\/24 needs -i\/--iface/);
  });
  it("a prefix none of the interface's addresses lies in: an error naming the value and the addresses", async () => {
    await assert.rejects(start("wg0", "10.78.0.0/24"), /--auto-peers 10\.78\.0\.0\/24 does not fit interface wg0: none of its addresses \(10\.77\.0\.5\)/);
  });
  it("the interface's own prefix: starts", async () => {
    const agent = await start("wg0", PREFIX);
    await agent.stop();
  });
});
