/**
 * The registry's Watch fan-out (src/registry/watch-hub.ts) over real gRPC on 127.0.0.1:
 * events serialized once for all streams, the snapshot once per table state, a stream that falls
 * too far behind ended with RESOURCE_EXHAUSTED, and joins held back while too many snapshots are
 * in flight. A "stalled" watcher is a raw HTTP/2 client that advertises a zero flow-control
 * window, so the registry can send it nothing until the test opens the window.
 */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { bindServer, createRegistryServer, type WatchLimits } from "../../src/registry/server.js";
import { v1Proto, type WatchEvent__Output } from "../../src/rpc/proto.js";
import { key } from "../support/keys.js";
import { threePeerTable } from "../support/registry.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "fanout-token";
const watchMethod = v1Proto.Registry.service.Watch;

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A registry whose table is refreshed only by the test (no poll timer). */
async function startRegistry(watch?: WatchLimits) {
  const { wg, log, table } = await threePeerTable();
  const server = createRegistryServer({ table, token: TOKEN, logger: log.logger, ...(watch ? { watch } : {}) });
  const port = await bindServer(server, "127.0.0.1:0");
  cleanups.push(() => server.forceShutdown());
  const joined = () => log.records.filter((r) => r.msg === "watcher joined").length;
  return { wg, table, port, log, joined };
}

function grpcWatcher(port: number, peerPublicKeys: string[] = [], options: grpc.ChannelOptions = {}) {
  const client = new v1Proto.Registry(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${TOKEN}`);
  const call = client.Watch({ publicKey: "", peerPublicKeys }, md);
  const events: WatchEvent__Output[] = [];
  const state: { error: grpc.ServiceError | null } = { error: null };
  call.on("data", (e: WatchEvent__Output) => events.push(e));
  call.on("error", (e: grpc.ServiceError) => (state.error = e));
  const close = () => {
    call.cancel();
    client.close();
  };
  cleanups.push(close);
  /** A GetPeers answered on this watcher's connection: whatever the registry wrote to the watcher before, it has received. */
  const roundTrip = () =>
    new Promise<void>((resolve, reject) => client.GetPeers({}, md, (err) => (err ? reject(err) : resolve())));
  return { events, state, close, roundTrip };
}

/** A Watch on raw HTTP/2 with a zero window: nothing reaches it until release(). On `session`, when given. */
function stalledWatcher(port: number, shared?: http2.ClientHttp2Session) {
  const session = shared ?? http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 0 } });
  if (!shared) session.on("error", () => {});
  const req = session.request({
    ":method": "POST",
    ":path": "/wormhole.v1.Registry/Watch",
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${TOKEN}`,
  });
  req.on("error", () => {});
  req.end(Buffer.alloc(5)); // an empty WatchRequest
  const chunks: Buffer[] = [];
  const state: { status: string | null } = { status: null };
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("trailers", (t: http2.IncomingHttpHeaders) => (state.status = String(t["grpc-status"])));
  const close = () => {
    req.close(http2.constants.NGHTTP2_CANCEL);
    session.destroy();
  };
  cleanups.push(close);
  return {
    state,
    close,
    release: () => session.settings({ initialWindowSize: 1 << 20 }),
    /** The gRPC messages received so far. */
    messages(): Buffer[] {
      const all = Buffer.concat(chunks);
      const out: Buffer[] = [];
      for (let at = 0; at + 5 <= all.length; ) {
        const n = all.readUInt32BE(at + 1);
        out.push(all.subarray(at + 5, at + 5 + n));
        at += 5 + n;
      }
      return out;
    },
  };
}

async function moveEndpoint(r: Awaited<ReturnType<typeof startRegistry>>, peer: number, port: number): Promise<void> {
  r.wg.setPeerEndpoint("wg0", key(peer), { ip: "198.51.100.7", port });
  await r.table.refresh();
}

describe("registry Watch fan-out", () => {
  it("serializes the snapshot once per table state and each change once for all watchers", async () => {
    const r = await startRegistry();
    const original = watchMethod.responseSerialize;
    let encoded = 0;
    watchMethod.responseSerialize = (value) => {
      encoded++;
      return original(value);
    };
    try {
      const watchers = Array.from({ length: 20 }, () => grpcWatcher(r.port));
      await waitFor("20 snapshots", () => watchers.every((w) => w.events.length === 1));
      for (const w of watchers) {
        assert.equal(w.events[0]?.event, "snapshot");
        assert.equal(w.events[0]?.snapshot?.peers.length, 3);
        assert.equal(w.events[0]?.snapshot?.registryPublicKey, key(99));
      }
      assert.equal(encoded, 1, "one snapshot encoding for 20 watchers");

      await moveEndpoint(r, 2, 50000);
      await waitFor("the change on every stream", () => watchers.every((w) => w.events.length === 2));
      for (const w of watchers) {
        const changed = w.events[1]?.changed;
        assert.equal(changed?.publicKey, key(2));
        assert.deepEqual(changed?.endpoint, { ip: "198.51.100.7", port: 50000 });
        assert.equal(Number(changed?.endpointRevision), 2);
      }
      assert.equal(encoded, 2, "one encoding of the change for 20 watchers");

      r.wg.removePeer("wg0", key(3));
      await r.table.refresh();
      await waitFor("the removal on every stream", () => watchers.every((w) => w.events.length === 3));
      for (const w of watchers) assert.equal(w.events[2]?.removedPublicKey, key(3));

      // A watcher joining now gets the new state in its snapshot.
      const late = grpcWatcher(r.port);
      await waitFor("late snapshot", () => late.events.length === 1);
      const peers = late.events[0]?.snapshot?.peers ?? [];
      assert.deepEqual(peers.map((p) => p.publicKey).sort(), [key(1), key(2)].sort());
      assert.equal(peers.find((p) => p.publicKey === key(2))?.endpoint?.port, 50000);
    } finally {
      watchMethod.responseSerialize = original;
    }
  });

  it("ends a watcher that falls too far behind with RESOURCE_EXHAUSTED; the others get every event", async () => {
    const r = await startRegistry({ backlogBytes: 2000 });
    const stalled = stalledWatcher(r.port);
    const normal = grpcWatcher(r.port);
    await waitFor("both watchers joined", () => r.joined() === 2);
    await waitFor("normal snapshot", () => normal.events.length === 1);

    // One change per "poll", each read by the normal watcher before the next (as across real polls).
    for (let i = 0; i < 40; i++) {
      await moveEndpoint(r, 1, 5000 + i);
      await waitFor(`change ${i} on the normal watcher (error: ${normal.state.error?.message})`, () => normal.events.length === i + 2);
    }
    assert.deepEqual(
      normal.events.slice(1).map((e) => e.changed?.endpoint?.port),
      Array.from({ length: 40 }, (_, i) => 5000 + i),
    );
    assert.equal(normal.state.error, null);
    const warning = r.log.records.find((rec) => String(rec.msg).startsWith("dropped Watch streams too far behind"));
    assert.equal(warning?.dropped, 1);

    // Once it reads again, the stalled watcher gets what was queued before the drop, then the status.
    stalled.release();
    await waitFor("the stalled watcher's status", () => stalled.state.status !== null);
    assert.equal(stalled.state.status, String(grpc.status.RESOURCE_EXHAUSTED));
    const messages = stalled.messages();
    assert.equal(messages[0]?.[0], 0x0a, "first message is the snapshot");
    const changes = messages.slice(1).map((m) => watchMethod.responseDeserialize(m));
    assert.ok(changes.length > 0 && changes.length < 40, `${changes.length} changes before the drop`);
    assert.ok(changes.reduce((n, _, i) => n + (messages[i + 1]?.length ?? 0), 0) <= 2000);
    assert.deepEqual(
      changes.map((e) => e.changed?.endpoint?.port),
      Array.from({ length: changes.length }, (_, i) => 5000 + i),
    );
  });

  it("holds joins back while the snapshot budget is used, and lets them go when it frees", async () => {
    const r = await startRegistry({ snapshotBytesInFlight: 1 });
    const stalled = stalledWatcher(r.port); // its snapshot can never leave: the budget stays used
    await waitFor("stalled joined", () => r.joined() === 1);
    const waiting = grpcWatcher(r.port);
    await waitFor("second joined", () => r.joined() === 2);
    await waiting.roundTrip();
    assert.equal(waiting.events.length, 0, "no snapshot while the budget is used");
    await moveEndpoint(r, 3, 6000); // a change while waiting: not sent as a delta ...
    await waiting.roundTrip();
    assert.equal(waiting.events.length, 0);

    stalled.close();
    await waitFor("snapshot after the budget freed", () => waiting.events.length === 1);
    // ... but in the snapshot it gets once its turn comes.
    assert.equal(waiting.events[0]?.event, "snapshot");
    assert.equal(waiting.events[0]?.snapshot?.peers.find((p) => p.publicKey === key(3))?.endpoint?.port, 6000);
    await moveEndpoint(r, 3, 6001);
    await waitFor("later change as a delta", () => waiting.events.length === 2);
    assert.equal(waiting.events[1]?.changed?.endpoint?.port, 6001);
  });

  it("stops listening to the table when the last watcher leaves", async () => {
    const r = await startRegistry();
    const a = grpcWatcher(r.port);
    const b = grpcWatcher(r.port);
    await waitFor("snapshots", () => a.events.length === 1 && b.events.length === 1);
    assert.equal(r.table.subscriberCount, 1, "one table subscription for all watchers");
    a.close();
    b.close();
    await waitFor("no subscription left", () => r.table.subscriberCount === 0);
    const c = grpcWatcher(r.port);
    await waitFor("a new watcher still works", () => c.events.length === 1);
    await moveEndpoint(r, 1, 7000);
    await waitFor("change", () => c.events.length === 2);
  });

  it("one connection's unread Watch streams hold one snapshot of the budget: another connection's watcher gets its own at once", async () => {
    const probe = await startRegistry();
    const first = grpcWatcher(probe.port);
    await waitFor("a snapshot to size the budget", () => first.events.length === 1);
    const size = watchMethod.responseSerialize(first.events[0] as never).length;

    // Room for three snapshots: before, the first three unread streams of one connection took it all.
    const r = await startRegistry({ snapshotBytesInFlight: 3 * size + 10 });
    const sessions = [0, 1].map(() => http2.connect(`http://127.0.0.1:${r.port}`, { settings: { initialWindowSize: 0 } }));
    for (const session of sessions) {
      session.on("error", () => {});
      cleanups.push(() => session.destroy());
    }
    for (let i = 0; i < 40; i++) stalledWatcher(r.port, sessions[i % 2]);
    await waitFor("40 unread watchers joined", () => r.joined() === 40);
    const legit = grpcWatcher(r.port, [], { "grpc.use_local_subchannel_pool": 1 });
    await waitFor("the other connection's snapshot", () => legit.events.length === 1);
    assert.equal(legit.events[0]?.event, "snapshot");
  });

  it("ends a watcher that does not take its snapshot within snapshotTimeoutMs, freeing the budget for the next", async () => {
    const r = await startRegistry({ snapshotBytesInFlight: 1, snapshotTimeoutMs: 300 });
    const stalled = stalledWatcher(r.port);
    await waitFor("stalled joined", () => r.joined() === 1);
    const waiting = grpcWatcher(r.port);
    await waitFor("the waiting watcher's snapshot once the stalled one is dropped", () => waiting.events.length === 1);
    assert.ok(r.log.records.some((rec) => String(rec.msg).includes("did not take its snapshot within 300 ms")));
    stalled.release();
    await waitFor("the stalled watcher's status", () => stalled.state.status !== null);
    assert.equal(stalled.state.status, String(grpc.status.RESOURCE_EXHAUSTED));
  });

  it("a watcher of some keys gets only those peers, in its snapshot and as they change, appear or go", async () => {
    const r = await startRegistry();
    const some = grpcWatcher(r.port, [key(1), key(7)]);
    const all = grpcWatcher(r.port);
    await waitFor("snapshots", () => some.events.length === 1 && all.events.length === 1);
    assert.deepEqual(some.events[0]?.snapshot?.peers.map((p) => p.publicKey), [key(1)]);
    assert.equal(some.events[0]?.snapshot?.registryPublicKey, key(99));
    assert.equal(all.events[0]?.snapshot?.peers.length, 3);

    await moveEndpoint(r, 2, 51000); // not asked for
    await moveEndpoint(r, 1, 51001);
    r.wg.addPeer("wg0", { publicKey: key(7), endpoint: { ip: "203.0.113.7", port: 7 }, allowedIps: ["10.0.0.7/32"] });
    await r.table.refresh();
    r.wg.removePeer("wg0", key(3)); // not asked for
    r.wg.removePeer("wg0", key(1));
    await r.table.refresh();
    await waitFor("every event on the full watcher", () => all.events.length === 6);
    await waitFor("three events on the filtered one", () => some.events.length >= 4);
    const seen = some.events.slice(1).map((e) => e.changed?.publicKey ?? `-${e.removedPublicKey}`);
    assert.deepEqual(seen, [key(1), key(7), `-${key(1)}`]);
  });

  it("refuses a Watch that asks for something that is not a key", async () => {
    const r = await startRegistry();
    const w = grpcWatcher(r.port, [key(1), "not-a-key"]);
    await waitFor("the refusal", () => w.state.error !== null);
    assert.equal(w.state.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(w.state.error?.details ?? "", /not a WireGuard key: `not-a-key'/);
  });
});
