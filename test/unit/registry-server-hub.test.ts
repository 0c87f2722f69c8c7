/**
 * The registry's Watch fan-out (src/registry/watch-hub.ts) and pre-encoded
 * replies (src/registry/replies.ts), without gRPC: each watcher is a fake
 * stream whose writes the test sees, and whose bytes "HTTP/2 takes" only when
 * the test calls their callbacks. The table is a real PeerTable over a fake
 * WireGuard, read only when the test says.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Encoded, encodeWatchEvent, seedService, snapshotEvent, v1Service } from "../../src/registry/replies.js";
import { type WatchCall, WatchHub, type WatchLimits } from "../../src/registry/watch-hub.js";
import { seedProto, v1Proto, type WatchEvent__Output } from "../../src/rpc/proto.js";
import { key } from "../support/keys.js";
import { threePeerTable } from "../support/registry.js";

const watchMethod = v1Proto.Registry.service.Watch;

/** A Watch stream: what was written to it, in order, and the errors it was ended with. */
class FakeStream extends EventEmitter {
  readonly writes: Array<{ event: Encoded; taken: () => void }> = [];
  readonly errors: Array<{ code?: number; details?: string }> = [];
  constructor() {
    super();
    this.on("error", (e: { code?: number; details?: string }) => this.errors.push(e));
  }
  write(event: unknown, taken: () => void): boolean {
    assert.ok(event instanceof Encoded, "the hub writes pre-encoded events");
    this.writes.push({ event, taken });
    return true;
  }
  /** What was written, decoded. */
  get events(): WatchEvent__Output[] {
    return this.writes.map((w) => watchMethod.responseDeserialize(w.event.bytes) as WatchEvent__Output);
  }
  /** HTTP/2 takes everything written so far. */
  takeAll(): void {
    for (const w of this.writes) w.taken();
  }
  get call(): WatchCall {
    return this as unknown as WatchCall;
  }
}

async function setup(limits: WatchLimits = {}, relay = false) {
  const { wg, log, table } = await threePeerTable();
  const hub = new WatchHub(table, log.logger, limits, relay);
  const join = (from: string, keys: number[] | null = null) => {
    const s = new FakeStream();
    hub.join(s.call, from, keys === null ? null : new Set(keys.map(key)));
    return s;
  };
  /** Moves peer `n` to `port` and lets the table see it. */
  const move = async (n: number, port: number) => {
    wg.setPeerEndpoint("wg0", key(n), { ip: "203.0.113.1", port });
    await table.refresh();
  };
  return { wg, table, hub, log, join, move };
}

const peerKeys = (e: WatchEvent__Output | undefined) => e?.snapshot?.peers.map((p) => p.publicKey);

describe("Watch hub: fan-out", () => {
  it("sends each watcher a snapshot of what it asked for, then the changes of those peers only, each change encoded once for all", async () => {
    const t = await setup({}, true);
    const all1 = t.join("10.0.0.1:1");
    const all2 = t.join("10.0.0.2:1");
    const one = t.join("10.0.0.3:1", [3, 1, 7]);
    const two = t.join("10.0.0.4:1", [2]);
    assert.deepEqual(peerKeys(all1.events[0]), [key(1), key(2), key(3)]);
    assert.equal(all1.events[0]?.snapshot?.relay, true);
    assert.equal(all1.events[0]?.snapshot?.registryPublicKey, key(99));
    assert.equal(all1.writes[0]?.event, all2.writes[0]?.event, "the full snapshot is encoded once for both");
    assert.deepEqual(peerKeys(one.events[0]), [key(3), key(1)], "in the order asked, unknown keys left out");
    assert.deepEqual(peerKeys(two.events[0]), [key(2)]);

    await t.move(1, 50001);
    for (const s of [all1, all2, one]) {
      assert.equal(s.events.length, 2);
      assert.equal(s.events[1]?.changed?.endpoint?.port, 50001);
    }
    assert.equal(all1.writes[1]?.event, one.writes[1]?.event, "one encoding for every watcher of the change");
    assert.equal(two.events.length, 1, "not told of a peer it did not ask for");

    t.wg.removePeer("wg0", key(2));
    await t.table.refresh();
    assert.equal(all1.events.at(-1)?.removedPublicKey, key(2));
    assert.equal(two.events.at(-1)?.removedPublicKey, key(2));
    assert.equal(one.events.length, 2);
  });

  it("encodes the full snapshot again once the table changed", async () => {
    const t = await setup();
    const first = t.join("10.0.0.1:1");
    first.takeAll();
    await t.move(1, 50001);
    const second = t.join("10.0.0.2:1");
    assert.notEqual(second.writes[0]?.event, first.writes[0]?.event);
    assert.equal(second.events[0]?.snapshot?.peers.find((p) => p.publicKey === key(1))?.endpoint?.port, 50001);
  });

  it("follows the table while someone watches, and lets go of it when the last watcher leaves", async () => {
    const t = await setup();
    assert.equal(t.table.subscriberCount, 0);
    const a = t.join("10.0.0.1:1");
    const b = t.join("10.0.0.2:1", [1]);
    assert.equal(t.table.subscriberCount, 1, "one subscription for all watchers");
    a.emit("cancelled");
    assert.equal(t.table.subscriberCount, 1);
    b.emit("close");
    assert.equal(t.table.subscriberCount, 0);
    await t.move(1, 50001);
    assert.equal(a.writes.length + b.writes.length, 2, "no change after leaving");
    const c = t.join("10.0.0.3:1");
    assert.equal(t.table.subscriberCount, 1, "a new watcher follows the table again");
    await t.move(1, 50002);
    assert.equal(c.events.at(-1)?.changed?.endpoint?.port, 50002);
  });
});

describe("Watch hub: bounds", () => {
  it("holds back a snapshot beyond the in-flight budget until one is taken; a watcher waiting hears no change first", async () => {
    const t = await setup({ snapshotBytesInFlight: 1 }); // one snapshot at a time
    const a = t.join("10.0.0.1:1");
    const b = t.join("10.0.0.2:1");
    assert.equal(a.writes.length, 1);
    assert.equal(b.writes.length, 0, "waits for the budget");
    await t.move(1, 50001);
    assert.equal(b.writes.length, 0, "no change before its snapshot");
    a.takeAll();
    assert.equal(b.writes.length, 1);
    assert.equal(b.events[0]?.snapshot?.peers.find((p) => p.publicKey === key(1))?.endpoint?.port, 50001, "its snapshot has the change");
  });

  it("sends one snapshot at a time per connection, letting other connections pass", async () => {
    const t = await setup();
    const a1 = t.join("10.0.0.1:1");
    const a2 = t.join("10.0.0.1:1");
    const b = t.join("10.0.0.2:1");
    assert.deepEqual([a1.writes.length, a2.writes.length, b.writes.length], [1, 0, 1]);
    a1.takeAll();
    assert.equal(a2.writes.length, 1);
  });

  it("a watcher that leaves gives its share of the budget back", async () => {
    const t = await setup({ snapshotBytesInFlight: 1 });
    const a = t.join("10.0.0.1:1");
    const b = t.join("10.0.0.2:1");
    a.emit("cancelled");
    assert.equal(b.writes.length, 1);
  });

  it("ends a watcher that falls too far behind with RESOURCE_EXHAUSTED, and keeps the one that keeps up", async () => {
    const t = await setup({ backlogBytes: 1 }); // as much behind as its snapshot
    const slow = t.join("10.0.0.1:1");
    const quick = t.join("10.0.0.2:1");
    slow.takeAll();
    quick.takeAll();
    const snapshotSize = slow.writes[0]!.event.bytes.length;
    let port = 50000;
    while (slow.errors.length === 0) {
      await t.move(1 + (port % 3), ++port);
      quick.takeAll();
      assert.ok(port < 50100, "the slow watcher is ended");
    }
    const behind = slow.writes.slice(1).reduce((n, w) => n + w.event.bytes.length, 0);
    assert.ok(behind <= snapshotSize, `held at most its snapshot's size behind (${behind} of ${snapshotSize} bytes)`);
    assert.equal(slow.errors[0]?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(String(slow.errors[0]?.details), /fell more than \d+ bytes behind; subscribe again/);
    assert.equal(quick.errors.length, 0);
    assert.ok(t.log.records.some((r) => String(r.msg).includes("dropped Watch streams too far behind") && r.dropped === 1));
    const writes = slow.writes.length;
    await t.move(1, 1);
    assert.equal(slow.writes.length, writes, "nothing more to the ended watcher");
    assert.equal(quick.events.at(-1)?.changed?.endpoint?.port, 1);
  });
});

describe("pre-encoded replies", () => {
  it("the services pass Encoded bytes through and serialize plain messages as usual", () => {
    const bytes = Buffer.from([1, 2, 3]);
    for (const method of [v1Service.Watch, v1Service.GetPeers, seedService.GetEndpoint]) {
      assert.equal(method?.responseSerialize(new Encoded(bytes)), bytes);
    }
    const event = { removedPublicKey: key(1) };
    assert.deepEqual(v1Service.Watch?.responseSerialize(event), watchMethod.responseSerialize(event));
    const reply = { Peers: [], pubKey: key(9) };
    assert.deepEqual(seedService.GetEndpoint?.responseSerialize(reply), seedProto.Registry.service.GetEndpoint.responseSerialize(reply));
    assert.equal(v1Service.Report?.responseSerialize, v1Proto.Registry.service.Report.responseSerialize, "other methods untouched");
    assert.deepEqual(watchMethod.responseDeserialize(encodeWatchEvent(event).bytes), { removedPublicKey: key(1), event: "removedPublicKey" });
  });

  it("a snapshot event lists the peers asked for, in the order asked, or every peer", async () => {
    const t = await setup();
    assert.deepEqual(
      snapshotEvent(t.table, false, "none").snapshot?.peers?.map((p) => p.publicKey),
      [key(1), key(2), key(3)],
    );
    const some = snapshotEvent(t.table, true, "none", new Set([key(3), key(8), key(2)]));
    assert.deepEqual(
      some.snapshot?.peers?.map((p) => p.publicKey),
      [key(3), key(2)],
    );
    assert.equal(some.snapshot?.relay, true);
  });
});
