import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { capFor, EMPTY_RECORD, MAX_AUTO_PEERS, planAutoPeers, type AddedPeer, type AutoPeersInput, type AutoPeersRecord, type NamedView } from "../../src/node/auto-peers.js";
import type { RegistryView } from "../../src/node/source.js";
import type { WgDevice, WgPeer } from "../../src/wg/types.js";

const key = (): string => randomBytes(32).toString("base64");
const SELF = key();
const REG = key();
const REG2 = key();
const A = key();
const B = key();
const C = key();
const USER = key();
const PREFIX = "10.77.0.0/24";
const GRACE = 60_000;

function peer(publicKey: string, allowedIps: string[]): WgPeer {
  return { publicKey, endpoint: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps, persistentKeepaliveSec: 0, hasPresharedKey: false };
}

function device(...peers: WgPeer[]): WgDevice {
  return { name: "wg0", type: "userspace", publicKey: SELF, listenPort: 51820, peers: [peer(REG, ["10.77.0.1/32"]), ...peers] };
}

function view(peers: Record<string, string[]>, registryPublicKey = REG): RegistryView {
  return {
    endpoints: new Map(Object.keys(peers).map((k) => [k, null])),
    registryPublicKey,
    candidates: new Map(),
    allowedIps: new Map(Object.entries(peers)),
    generation: 1,
    relay: true,
    via: "watch",
  };
}

function record(added: Record<string, Partial<AddedPeer> & { allowedIp: string }>, removed: AutoPeersRecord["removed"] = new Map()): AutoPeersRecord {
  return { added: new Map(Object.entries(added).map(([k, v]) => [k, { addedAtMs: 0, absentSinceMs: null, ...v }])), removed };
}

function plan(over: Partial<AutoPeersInput> & { registries: NamedView[] }) {
  return planAutoPeers({ device: device(), prefix: PREFIX, registryKeys: new Set([REG]), record: EMPTY_RECORD, nowMs: 1_000_000, graceMs: GRACE, maxPeers: 100, ...over });
}

const reg = (v: RegistryView | null, name = "reg1"): NamedView => ({ name, view: v });

describe("planAutoPeers", () => {
  it("adds every single-host peer inside the prefix that the interface lacks, with that address only", () => {
    const p = plan({ registries: [reg(view({ [A]: ["10.77.0.10/32"], [B]: ["10.77.0.11/32", "192.168.9.0/24"], [REG]: ["10.77.0.1/32"] }))] });
    assert.deepEqual(
      p.add.map((a) => [a.publicKey, a.allowedIp, a.registries]),
      [
        [A, "10.77.0.10/32", ["reg1"]],
        [B, "10.77.0.11/32", ["reg1"]],
      ].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)),
    );
    assert.deepEqual([...p.record.added.keys()].sort(), [A, B].sort());
    assert.deepEqual(p.refusals, []);
  });

  it("ignores peers outside the prefix, wider than one host, the node itself and the registry", () => {
    const p = plan({ registries: [reg(view({ [A]: ["10.78.0.10/32"], [B]: ["10.77.0.0/25"], [SELF]: ["10.77.0.5/32"], [REG]: ["10.77.0.1/32"] }))] });
    assert.deepEqual(p.add, []);
    assert.deepEqual(p.refusals, []);
  });

  it("IPv6: a /128 inside an IPv6 prefix is added; an IPv4 address is not inside it", () => {
    const p = plan({ prefix: "fd77::/64", registries: [reg(view({ [A]: ["fd77::a/128"], [B]: ["10.77.0.11/32"] }))] });
    assert.deepEqual(p.add.map((a) => a.allowedIp), ["fd77::a/128"]);
  });

  it("never touches a peer the user configured, even one the registry lists inside the prefix", () => {
    const p = plan({ device: device(peer(A, ["10.77.0.99/32"])), registries: [reg(view({ [A]: ["10.77.0.10/32"] }))] });
    assert.deepEqual([p.add, p.remove, p.refusals], [[], [], []]);
    assert.equal(p.record.added.has(A), false);
  });

  it("refuses an address that overlaps a user's peer (a host or a wider route), naming registry and peer", () => {
    const p = plan({
      device: device(peer(USER, ["10.77.0.10/32"]), peer(C, ["10.77.0.128/25"])),
      registries: [reg(view({ [A]: ["10.77.0.10/32"], [B]: ["10.77.0.200/32"] }))],
    });
    assert.deepEqual(p.add, []);
    assert.deepEqual(
      p.refusals.map((r) => [r.registry, r.publicKey, r.reason]).sort(),
      [
        ["reg1", A, "overlap"],
        ["reg1", B, "overlap"],
      ].sort(),
    );
    assert.match(p.refusals.find((r) => r.publicKey === A)?.detail ?? "", /configured by the user/);
  });

  it("refuses the interface's own address (a registry cannot give a peer this node's address)", () => {
    const p = plan({ ownIps: ["10.77.0.5", "fe80::1"], registries: [reg(view({ [A]: ["10.77.0.5/32"] }))] });
    assert.deepEqual([p.add, p.refusals.map((r) => [r.publicKey, r.reason])], [[], [[A, "overlap"]]]);
    assert.match(p.refusals[0]?.detail ?? "", /own address/);
  });

  it("two registries naming different keys for one address: neither is added, each refusal names its registry", () => {
    const p = plan({ registries: [reg(view({ [A]: ["10.77.0.10/32"], [C]: ["10.77.0.12/32"] }), "reg1"), reg(view({ [B]: ["10.77.0.10/32"] }, REG2), "reg2")] });
    assert.deepEqual(p.add.map((a) => a.publicKey), [C]);
    assert.deepEqual(
      p.refusals.map((r) => [r.registry, r.publicKey, r.reason]).sort(),
      [
        ["reg1", A, "conflict"],
        ["reg2", B, "conflict"],
      ].sort(),
    );
  });

  it("two registries naming one key at different addresses: added at neither", () => {
    const p = plan({ registries: [reg(view({ [A]: ["10.77.0.10/32"] }), "reg1"), reg(view({ [A]: ["10.77.0.11/32"] }, REG2), "reg2")] });
    assert.deepEqual(p.add, []);
    assert.deepEqual(p.refusals.map((r) => [r.registry, r.reason]), [["reg1", "conflict"], ["reg2", "conflict"]]);
  });

  it("two registries agreeing: added once, both named", () => {
    const p = plan({ registries: [reg(view({ [A]: ["10.77.0.10/32"] }), "reg1"), reg(view({ [A]: ["10.77.0.10/32"] }, REG2), "reg2")], registryKeys: new Set([REG, REG2]) });
    assert.deepEqual(p.add.map((a) => a.registries), [["reg1", "reg2"]]);
  });

  it("one peer listed with several addresses inside the prefix is refused", () => {
    const p = plan({ registries: [reg(view({ [A]: ["10.77.0.10/32", "10.77.0.11/32"] }))] });
    assert.deepEqual([p.add, p.refusals.map((r) => r.reason)], [[], ["several-addresses"]]);
  });

  it("a second registry's key is never added", () => {
    const p = plan({ registries: [reg(view({ [REG2]: ["10.77.0.2/32"] }))], registryKeys: new Set([REG, REG2]) });
    assert.deepEqual(p.add, []);
  });

  it("caps the peers it adds, with one refusal for all that are left out", () => {
    const many = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [key(), [`10.77.0.${20 + i}/32`]]));
    const p = plan({ maxPeers: 3, device: device(peer(A, ["10.77.0.10/32"])), record: record({ [A]: { allowedIp: "10.77.0.10/32" } }), registries: [reg(view({ ...many, [A]: ["10.77.0.10/32"] }))] });
    assert.equal(p.add.length, 2, "one slot is taken by the peer added before");
    assert.equal(p.record.added.size, 3);
    assert.deepEqual(p.refusals.map((r) => r.reason), ["cap"]);
    assert.match(p.refusals[0]?.detail ?? "", /8 more not added/);
  });

  it("capFor: the prefix's size, at most MAX_AUTO_PEERS", () => {
    assert.deepEqual([capFor("10.77.0.0/30"), capFor("10.77.0.0/24"), capFor("10.0.0.0/8"), capFor("fd00::/64"), capFor("10.0.0.1/32")], [3, 255, MAX_AUTO_PEERS, MAX_AUTO_PEERS, 0]);
  });

  describe("removal", () => {
    const ours = (): Partial<AutoPeersInput> => ({ device: device(peer(A, ["10.77.0.10/32"])), record: record({ [A]: { allowedIp: "10.77.0.10/32" } }) });

    it("a peer we added, absent from every connected registry, stays during the grace time and goes after it", () => {
      const first = plan({ ...ours(), nowMs: 1_000, registries: [reg(view({}))] });
      assert.deepEqual(first.remove, []);
      assert.equal(first.record.added.get(A)?.absentSinceMs, 1_000);
      assert.equal(first.nextDueMs, 1_000 + GRACE, "a pass is asked for when the grace time ends");
      const during = plan({ ...ours(), record: first.record, nowMs: 1_000 + GRACE - 1, registries: [reg(view({}))] });
      assert.deepEqual(during.remove, []);
      const after = plan({ ...ours(), record: during.record, nowMs: 1_000 + GRACE, registries: [reg(view({}))] });
      assert.deepEqual(after.remove, [{ publicKey: A, allowedIp: "10.77.0.10/32", absentMs: GRACE }]);
      assert.equal(after.record.added.has(A), false);
      assert.equal(after.record.removed.get(A)?.count, 1);
    });

    it("listed again within the grace time: the clock of absence starts over", () => {
      const gone = plan({ ...ours(), nowMs: 1_000, registries: [reg(view({}))] });
      const back = plan({ ...ours(), record: gone.record, nowMs: 2_000, registries: [reg(view({ [A]: ["10.77.0.10/32"] }))] });
      assert.equal(back.record.added.get(A)?.absentSinceMs, null);
      const later = plan({ ...ours(), record: back.record, nowMs: 1_000 + GRACE, registries: [reg(view({}))] });
      assert.deepEqual(later.remove, []);
    });

    it("no registry connected: nothing is removed, however long", () => {
      const gone = plan({ ...ours(), nowMs: 1_000, registries: [reg(view({}))] });
      const p = plan({ ...ours(), record: gone.record, nowMs: 1_000 + 10 * GRACE, registries: [reg(null)] });
      assert.deepEqual(p.remove, []);
      assert.equal(p.record.added.get(A)?.absentSinceMs, null);
    });

    it("one registry disconnected, the other still lists it: kept; the connected one's silence alone decides", () => {
      const listing = plan({ ...ours(), nowMs: 1_000, registries: [reg(null, "reg1"), reg(view({ [A]: ["10.77.0.10/32"] }, REG2), "reg2")] });
      assert.equal(listing.record.added.get(A)?.absentSinceMs, null);
      const silent = plan({ ...ours(), record: { ...listing.record }, nowMs: 1_000, registries: [reg(null, "reg1"), reg(view({}, REG2), "reg2")] });
      const after = plan({ ...ours(), record: silent.record, nowMs: 1_000 + GRACE, registries: [reg(null, "reg1"), reg(view({}, REG2), "reg2")] });
      assert.deepEqual(after.remove.map((r) => r.publicKey), [A]);
    });

    it("never removes a peer not in the record (the user's), however long the registries are silent", () => {
      const p = plan({ device: device(peer(USER, ["10.77.0.50/32"])), record: EMPTY_RECORD, nowMs: 10 * GRACE, registries: [reg(view({}))] });
      assert.deepEqual(p.remove, []);
    });

    it("a recorded peer whose allowed IPs were changed leaves the record and is never removed", () => {
      const p = plan({ device: device(peer(A, ["10.77.0.10/32", "10.99.0.0/16"])), record: record({ [A]: { allowedIp: "10.77.0.10/32", absentSinceMs: 0 } }), nowMs: 10 * GRACE, registries: [reg(view({}))] });
      assert.deepEqual(p.remove, []);
      assert.equal(p.record.added.has(A), false);
      assert.match(p.forgotten[0]?.why ?? "", /allowed IPs were changed/);
    });

    it("a recorded peer no longer on the interface leaves the record (a restart after a crash keeps no orphan entry)", () => {
      const p = plan({ record: record({ [A]: { allowedIp: "10.77.0.10/32" } }), registries: [reg(view({}))] });
      assert.deepEqual([p.remove, [...p.record.added.keys()], p.forgotten.map((f) => f.publicKey)], [[], [], [A]]);
    });

    it("a recorded peer is never re-added over the user's: a user peer that took its key stays the user's", () => {
      const p = plan({ device: device(peer(A, ["10.77.0.99/32"])), record: record({ [A]: { allowedIp: "10.77.0.10/32" } }), registries: [reg(view({ [A]: ["10.77.0.10/32"] }))] });
      assert.deepEqual([p.add, p.remove], [[], []]);
      assert.equal(p.record.added.has(A), false);
    });
  });

  describe("churn damping", () => {
    it("the first return after a removal is added at once; after a second removal it waits the hold-down, doubling", () => {
      const removedOnce = new Map([[A, { atMs: 1_000, count: 1 }]]);
      const once = plan({ record: { added: new Map(), removed: removedOnce }, nowMs: 1_001, registries: [reg(view({ [A]: ["10.77.0.10/32"] }))] });
      assert.deepEqual(once.add.map((a) => a.publicKey), [A]);

      const removedTwice = new Map([[A, { atMs: 1_000, count: 2 }]]);
      const early = plan({ record: { added: new Map(), removed: removedTwice }, nowMs: 1_000 + GRACE - 1, registries: [reg(view({ [A]: ["10.77.0.10/32"] }))] });
      assert.deepEqual([early.add, early.refusals.map((r) => [r.registry, r.publicKey, r.reason])], [[], [["reg1", A, "damped"]]]);
      assert.equal(early.nextDueMs, 1_000 + GRACE);
      const due = plan({ record: { added: new Map(), removed: removedTwice }, nowMs: 1_000 + GRACE, registries: [reg(view({ [A]: ["10.77.0.10/32"] }))] });
      assert.deepEqual(due.add.map((a) => a.publicKey), [A]);

      const thrice = new Map([[A, { atMs: 1_000, count: 3 }]]);
      const stillEarly = plan({ record: { added: new Map(), removed: thrice }, nowMs: 1_000 + 2 * GRACE - 1, registries: [reg(view({ [A]: ["10.77.0.10/32"] }))] });
      assert.deepEqual(stillEarly.add, []);
    });

    it("a churning registry: add, leave past grace, back, leave again; the count grows and the hold-down holds it out", () => {
      let rec: AutoPeersRecord = EMPTY_RECORD;
      let dev = device();
      let now = 0;
      const listed = [reg(view({ [A]: ["10.77.0.10/32"] }))];
      const silent = [reg(view({}))];
      const apply = (p: ReturnType<typeof plan>): void => {
        rec = p.record;
        const removed = new Set(p.remove.map((r) => r.publicKey));
        dev = { ...dev, peers: [...dev.peers.filter((x) => !removed.has(x.publicKey)), ...p.add.map((a) => peer(a.publicKey, [a.allowedIp]))] };
      };
      const adds: number[] = [];
      for (let round = 0; round < 3; round++) {
        const a = plan({ device: dev, record: rec, nowMs: now, registries: listed });
        if (a.add.length > 0) adds.push(now);
        apply(a);
        now += 1;
        apply(plan({ device: dev, record: rec, nowMs: now, registries: silent }));
        now += GRACE;
        apply(plan({ device: dev, record: rec, nowMs: now, registries: silent }));
        now += 1;
      }
      // Added at once twice (first sight, first return), then held down after the second removal.
      assert.equal(adds.length, 2);
      assert.equal(rec.removed.get(A)?.count, 2);
    });
  });
});
