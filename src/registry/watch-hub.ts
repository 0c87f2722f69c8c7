/**
 * The Watch fan-out: who watches what, their snapshots (within a budget of
 * bytes in flight) and the change events each is sent (within a backlog).
 */
import * as grpc from "@grpc/grpc-js";
import type { V1Handlers, WatchEvent } from "../rpc/proto.js";
import type { Logger } from "../util/log.js";
import type { WgDevice } from "../wg/types.js";
import { encodeWatchEvent, type Encoded, snapshotEvent } from "./replies.js";
import type { PeerTable } from "./table.js";
import { peerInfo, type PeerChanges, type PeerMap } from "./view.js";

export interface WatchLimits {
  /**
   * A watcher whose stream holds more than this many bytes of change events
   * not yet taken by HTTP/2 (or its snapshot's size, when that is more),
   * beyond its snapshot if that is still waiting too, is ended with
   * RESOURCE_EXHAUSTED: the node resubscribes and starts again from a fresh
   * snapshot, which costs no more than the deltas it missed.
   * Default 1 MiB.
   */
  readonly backlogBytes?: number;
  /**
   * Snapshot bytes being sent to joining watchers at once, all connections
   * together. A watcher joining beyond that waits for its snapshot (and hears
   * no change before it); one snapshot is always allowed, and each connection
   * has at most one snapshot in flight, so no connection's streams can take
   * the budget from others. Bounds memory when thousands of nodes (re)connect
   * together. Default 16 MiB.
   */
  readonly snapshotBytesInFlight?: number;
  /**
   * A watcher whose snapshot HTTP/2 has not taken this long after it was
   * written is ended with RESOURCE_EXHAUSTED, freeing its share of the budget:
   * the longest a client that does not read can keep others' snapshots
   * waiting. Default 20 s (a 1 MB snapshot at 400 kbit/s).
   */
  readonly snapshotTimeoutMs?: number;
}

export type WatchCall = Parameters<V1Handlers["Watch"]>[0];

interface Watcher {
  readonly call: WatchCall;
  readonly from: string;
  /** The peers it asked for; null: every peer. */
  readonly keys: ReadonlySet<string> | null;
  state: "waiting" | "live" | "gone";
  /** Bytes of its snapshot not yet taken by HTTP/2 (counted in the in-flight budget); 0 once sent. */
  snapshotBytes: number;
  /** Bytes written to it (snapshot and change events) and not yet taken by HTTP/2. */
  backlogBytes: number;
  /** The size of its snapshot: a burst of changes may be as big (every peer moved at once). */
  snapshotSize: number;
  stall: NodeJS.Timeout | null;
}

function send(call: WatchCall, event: Encoded, written: () => void): void {
  // v1Service's Watch serializer passes the bytes through.
  call.write(event as unknown as WatchEvent, written);
}

/**
 * Fans Watch events out. Each change event is serialized once and the same
 * bytes go to every stream that wants it: the watchers of every peer, and
 * those that asked for that peer's key (found by key, so a change costs work
 * for its interested watchers only). The full snapshot is serialized once per
 * state of the table (10,000 peers take ~80 ms to encode); a filtered one
 * per watcher, in time proportional to its keys. Memory is bounded per
 * stream (backlog, snapshot included) and for joins (snapshots in flight:
 * one per connection at a time, each taken within snapshotTimeoutMs).
 */
export class WatchHub {
  private readonly waiting = new Set<Watcher>();
  private readonly everything = new Set<Watcher>();
  private readonly byKey = new Map<string, Set<Watcher>>();
  private live = 0;
  /** Snapshots in flight per connection (grpc-js peer string: address and port). */
  private readonly connectionsSending = new Map<string, number>();
  private snapshotsInFlight = 0;
  private cached: { peers: PeerMap; device: WgDevice | null; event: Encoded } | null = null;
  private unsubscribe: (() => void) | null = null;
  private pumping = false;
  private readonly backlogLimit: number;
  private readonly inFlightLimit: number;
  private readonly snapshotTimeoutMs: number;

  constructor(
    private readonly table: PeerTable,
    private readonly logger: Logger,
    limits: WatchLimits = {},
    private readonly relay = false,
  ) {
    this.backlogLimit = limits.backlogBytes ?? 1024 * 1024;
    this.inFlightLimit = limits.snapshotBytesInFlight ?? 16 * 1024 * 1024;
    this.snapshotTimeoutMs = limits.snapshotTimeoutMs ?? 20_000;
  }

  /** Adds a watcher of `keys` (null: every peer); its snapshot comes when the budget allows. */
  join(call: WatchCall, from: string, keys: ReadonlySet<string> | null): void {
    const w: Watcher = { call, from, keys, state: "waiting", snapshotBytes: 0, backlogBytes: 0, snapshotSize: 0, stall: null };
    const leave = () => this.leave(w);
    call.on("cancelled", leave);
    call.on("close", leave);
    call.on("error", leave);
    this.waiting.add(w);
    this.unsubscribe ??= this.table.subscribe((changes) => this.publish(changes));
    this.pump();
  }

  private snapshotOf(keys: ReadonlySet<string> | null): Encoded {
    if (keys !== null) return encodeWatchEvent(snapshotEvent(this.table, this.relay, "none", keys));
    const peers = this.table.peers;
    const device = this.table.current;
    if (this.cached === null || this.cached.peers !== peers || this.cached.device !== device) {
      this.cached = { peers, device, event: encodeWatchEvent(snapshotEvent(this.table, this.relay, "none")) };
    }
    return this.cached.event;
  }

  /**
   * Sends snapshots to waiting watchers, in order of joining, while the
   * in-flight budget allows; a watcher whose connection already has a
   * snapshot in flight waits for it, and lets those behind it pass.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (const w of this.waiting) {
        if ((this.connectionsSending.get(w.from) ?? 0) > 0) continue;
        const snapshot = this.snapshotOf(w.keys);
        const size = snapshot.bytes.length;
        if (this.snapshotsInFlight > 0 && this.snapshotsInFlight + size > this.inFlightLimit) return;
        this.waiting.delete(w);
        w.state = "live";
        w.snapshotBytes = size;
        w.backlogBytes = size;
        w.snapshotSize = size;
        this.snapshotsInFlight += size;
        this.connectionsSending.set(w.from, (this.connectionsSending.get(w.from) ?? 0) + 1);
        this.index(w);
        w.stall = setTimeout(() => this.drop(w, `this watcher did not take its snapshot within ${this.snapshotTimeoutMs} ms`), this.snapshotTimeoutMs);
        w.stall.unref?.();
        send(w.call, snapshot, () => this.snapshotSent(w));
      }
    } finally {
      this.pumping = false;
    }
  }

  private index(w: Watcher): void {
    this.live++;
    if (w.keys === null) {
      this.everything.add(w);
      return;
    }
    for (const key of w.keys) {
      let set = this.byKey.get(key);
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(w);
    }
  }

  private unindex(w: Watcher): void {
    this.live--;
    if (w.keys === null) {
      this.everything.delete(w);
      return;
    }
    for (const key of w.keys) {
      const set = this.byKey.get(key);
      set?.delete(w);
      if (set?.size === 0) this.byKey.delete(key);
    }
  }

  /** Gives back a watcher's share of the in-flight budget (its snapshot was taken, or it left). */
  private releaseSnapshot(w: Watcher): void {
    if (w.snapshotBytes === 0) return;
    this.snapshotsInFlight -= w.snapshotBytes;
    w.backlogBytes -= w.snapshotBytes;
    w.snapshotBytes = 0;
    const sending = (this.connectionsSending.get(w.from) ?? 1) - 1;
    if (sending > 0) this.connectionsSending.set(w.from, sending);
    else this.connectionsSending.delete(w.from);
    if (w.stall) clearTimeout(w.stall);
    w.stall = null;
  }

  private snapshotSent(w: Watcher): void {
    if (w.snapshotBytes === 0) return;
    this.releaseSnapshot(w);
    this.pump();
  }

  private publish(changes: PeerChanges): void {
    this.cached = null;
    if (this.live === 0) return;
    const all: Encoded[] = [];
    const wanted = new Map<Watcher, Encoded[]>();
    const add = (key: string, event: Encoded) => {
      all.push(event);
      for (const w of this.byKey.get(key) ?? []) {
        const list = wanted.get(w);
        if (list) list.push(event);
        else wanted.set(w, [event]);
      }
    };
    for (const p of changes.changed) add(p.publicKey, encodeWatchEvent({ changed: peerInfo(p, this.table.reportOf(p.publicKey), "none") }));
    for (const key of changes.removed) add(key, encodeWatchEvent({ removedPublicKey: key }));
    for (const w of this.everything) wanted.set(w, all);
    let dropped = 0;
    // Dropping one watcher may start others (pump), who must not get this event twice: only those chosen above get it.
    for (const [w, events] of wanted) {
      if (w.state !== "live") continue;
      let bytes = 0;
      for (const e of events) bytes += e.bytes.length;
      const behind = Math.max(this.backlogLimit, w.snapshotSize);
      if (w.backlogBytes + bytes > behind + w.snapshotBytes) {
        this.drop(w, `this watcher fell more than ${behind} bytes behind`, false);
        dropped++;
        continue;
      }
      for (const e of events) {
        const n = e.bytes.length;
        w.backlogBytes += n;
        send(w.call, e, () => {
          w.backlogBytes -= n;
        });
      }
    }
    if (dropped > 0) {
      this.logger.warn(
        { dropped, limitBytes: this.backlogLimit, watchers: this.live },
        "dropped Watch streams too far behind (RESOURCE_EXHAUSTED); their nodes resubscribe for a fresh snapshot",
      );
    }
  }

  private drop(w: Watcher, why: string, log = true): void {
    if (w.state === "gone") return;
    if (log) this.logger.warn({ from: w.from }, `dropped a Watch stream (RESOURCE_EXHAUSTED): ${why}`);
    this.leave(w);
    w.call.emit("error", {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `${why}; subscribe again for a fresh snapshot`,
      metadata: new grpc.Metadata(),
    });
  }

  private leave(w: Watcher): void {
    if (w.state === "gone") return;
    if (w.state === "live") this.unindex(w);
    w.state = "gone";
    this.waiting.delete(w);
    this.releaseSnapshot(w);
    this.logger.debug({ from: w.from }, "watcher left");
    if (this.live === 0 && this.waiting.size === 0 && this.unsubscribe) {
      this.unsubscribe();
      this.unsubscribe = null;
      this.cached = null; // no longer told of changes: the next watcher's snapshot is encoded afresh
    }
    this.pump();
  }
}
