import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { FakeWireGuard, WgError } from "../../src/wg/index.js";

const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
const K3 = randomBytes(32).toString("base64");

function make(): FakeWireGuard {
  return new FakeWireGuard([
    { name: "wg1", publicKey: K3, listenPort: 51820, peers: [{ publicKey: K1, allowedIps: ["10.0.0.1/32"] }, { publicKey: K2 }] },
    { name: "wg0" },
  ]);
}

describe("FakeWireGuard", () => {
  it("lists and returns devices with defaults filled in", async () => {
    const wg = make();
    assert.deepEqual(await wg.listDevices(), ["wg0", "wg1"]);
    assert.deepEqual(await wg.getDevice("wg0"), { name: "wg0", type: "userspace", publicKey: "", listenPort: 0, peers: [] });
    const d = await wg.getDevice("wg1");
    assert.deepEqual(d.peers[0], { publicKey: K1, endpoint: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps: ["10.0.0.1/32"], persistentKeepaliveSec: 0, hasPresharedKey: false });
  });

  it("returns copies: what a caller holds does not change later", async () => {
    const wg = make();
    const before = await wg.getDevice("wg1");
    wg.setPeerEndpoint("wg1", K1, { ip: "192.168.1.1", port: 1 });
    assert.equal(before.peers[0]?.endpoint, null);
    (before.peers[0]?.allowedIps as string[] | undefined)?.push("10.9.9.9/32");
    assert.deepEqual((await wg.getDevice("wg1")).peers[0]?.allowedIps, ["10.0.0.1/32"]);
  });

  it("updatePeers changes only existing peers, only what is set, and logs every call", async () => {
    const wg = make();
    await wg.updatePeers("wg1", [
      { publicKey: K1, endpoint: { ip: "2001:DB8::1", port: 4500 } },
      { publicKey: K3, endpoint: { ip: "10.0.0.3", port: 3 } }, // not a peer: skipped, not created
      { publicKey: K2, persistentKeepaliveSec: 25 },
    ]);
    const d = await wg.getDevice("wg1");
    assert.deepEqual(d.peers.map((p) => p.publicKey), [K1, K2]);
    assert.deepEqual(d.peers[0]?.endpoint, { ip: "2001:db8::1", port: 4500 });
    assert.equal(d.peers[0]?.persistentKeepaliveSec, 0);
    assert.equal(d.peers[1]?.endpoint, null);
    assert.equal(d.peers[1]?.persistentKeepaliveSec, 25);
    assert.equal(wg.calls.length, 1);
    assert.equal(wg.calls[0]?.device, "wg1");
    assert.equal(wg.calls[0]?.failed, false);
    assert.equal(wg.calls[0]?.updates.length, 3);
  });

  it("unknown device: not-found listing what exists; logged as failed", async () => {
    const wg = make();
    await assert.rejects(wg.getDevice("wg7"), { name: "WgError", code: "not-found", message: "WireGuard interface `wg7' not found (existing: wg0, wg1)" });
    await assert.rejects(wg.updatePeers("wg7", [{ publicKey: K1, persistentKeepaliveSec: 1 }]), { code: "not-found" });
    assert.deepEqual(wg.calls.map((c) => [c.device, c.failed]), [["wg7", true]]);
  });

  it("failNext fails the next call (of a method, or any), once", async () => {
    const wg = make();
    wg.failNext("permission", "updatePeers");
    await wg.getDevice("wg1"); // other methods unaffected
    await assert.rejects(wg.updatePeers("wg1", [{ publicKey: K1, persistentKeepaliveSec: 5 }]), (e: unknown) => e instanceof WgError && e.code === "permission");
    assert.equal((await wg.getDevice("wg1")).peers[0]?.persistentKeepaliveSec, 0, "a failed call changes nothing");
    await wg.updatePeers("wg1", [{ publicKey: K1, persistentKeepaliveSec: 5 }]);
    assert.deepEqual(wg.calls.map((c) => c.failed), [true, false]);

    const custom = new Error("socket on fire");
    wg.failNext(custom);
    await assert.rejects(wg.listDevices(), custom);
    assert.deepEqual(await wg.listDevices(), ["wg0", "wg1"]);
  });

  it("test setup: add/remove peers and devices, set handshake and endpoint", async () => {
    const wg = make();
    wg.addPeer("wg0", { publicKey: K1, lastHandshakeMs: 5 });
    assert.throws(() => wg.addPeer("wg0", { publicKey: K1 }), /already/);
    assert.throws(() => wg.addPeer("wg0", { publicKey: "nope" }), TypeError);
    wg.setHandshake("wg0", K1, 1234);
    wg.setPeerEndpoint("wg0", K1, { ip: "::ffff:10.0.0.1", port: 9 });
    assert.deepEqual(wg.peer("wg0", K1)?.endpoint, { ip: "10.0.0.1", port: 9 });
    assert.equal(wg.peer("wg0", K1)?.lastHandshakeMs, 1234);
    wg.setPeerEndpoint("wg0", K1, null);
    assert.equal(wg.peer("wg0", K1)?.endpoint, null);
    assert.throws(() => wg.setHandshake("wg0", K2, 1), /no peer/);
    wg.removePeer("wg0", K1);
    assert.equal(wg.peer("wg0", K1), undefined);
    wg.removeDevice("wg0");
    assert.deepEqual(await wg.listDevices(), ["wg1"]);
  });

  it("refuses invalid updates like the real backends", async () => {
    const wg = make();
    await assert.rejects(wg.updatePeers("wg1", [{ publicKey: K1, endpoint: { ip: "1.2.3.4", port: 70000 } }]), TypeError);
    assert.equal((await wg.getDevice("wg1")).peers[0]?.endpoint, null);
    assert.equal(wg.calls[0]?.failed, true);
  });

  it("recreate resets the session and counters and takes the given allowed IPs", async () => {
    const wg = make();
    wg.addPeer("wg0", { publicKey: K1, lastHandshakeMs: 5, rxBytes: 9, txBytes: 9, allowedIps: ["10.0.0.9/32"], persistentKeepaliveSec: 3 });
    await wg.updatePeers("wg0", [{ publicKey: K1, endpoint: { ip: "192.0.2.1", port: 1 }, persistentKeepaliveSec: 25, recreate: { allowedIps: ["10.0.0.9/32"] } }]);
    const p = wg.peer("wg0", K1);
    assert.deepEqual(
      [p?.lastHandshakeMs, p?.rxBytes, p?.txBytes, p?.endpoint, p?.persistentKeepaliveSec, p?.allowedIps],
      [0, 0, 0, { ip: "192.0.2.1", port: 1 }, 25, ["10.0.0.9/32"]],
    );
    assert.deepEqual(wg.calls.at(-1)?.updates[0]?.recreate, { allowedIps: ["10.0.0.9/32"] });
  });

  it("add creates a missing peer with exactly its allowed IPs and never changes one that exists; remove removes", async () => {
    const wg = make();
    await wg.updatePeers("wg1", [
      { publicKey: K3, persistentKeepaliveSec: 25, add: { allowedIps: ["10.0.0.3/32"] } },
      { publicKey: K1, persistentKeepaliveSec: 25, add: { allowedIps: ["10.0.0.7/32"] } },
    ]);
    assert.deepEqual([wg.peer("wg1", K3)?.allowedIps, wg.peer("wg1", K3)?.persistentKeepaliveSec], [["10.0.0.3/32"], 25]);
    assert.deepEqual([wg.peer("wg1", K1)?.allowedIps, wg.peer("wg1", K1)?.persistentKeepaliveSec], [["10.0.0.1/32"], 0]);
    await wg.updatePeers("wg1", [{ publicKey: K2, remove: true }, { publicKey: K2, remove: true }]);
    assert.equal(wg.peer("wg1", K2), undefined);
    await assert.rejects(wg.updatePeers("wg1", [{ publicKey: K1, remove: true, endpoint: { ip: "192.0.2.1", port: 1 } }]), TypeError);
    assert.ok(wg.peer("wg1", K1));
  });
});
