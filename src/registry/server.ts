/**
 * The registry's gRPC surface: the seed's wgSvc.proto.Registry (token in the
 * request) and wormhole.v1.Registry (token in metadata), both served from one
 * PeerTable on one port.
 */
import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { tokenFromMetadata, tokenMatches } from "../rpc/auth.js";
import { seedProto, v1Proto, type GetEndpointReply, type GetPeersResponse, type SeedHandlers, type V1Handlers, type WatchEvent } from "../rpc/proto.js";
import type { Logger } from "../util/log.js";
import { callerIp } from "./identity.js";
import { FailureLimiter, sourceKey } from "./ratelimit.js";
import { checkReport } from "./report.js";
import type { WgDevice } from "../wg/types.js";
import type { PeerTable } from "./table.js";
import { peerInfo, seedReply, type PeerChanges, type PeerMap, type RegistryPeer } from "./view.js";
import { isKey } from "../wg/keys.js";

export interface RegistryServiceOptions {
  readonly table: PeerTable;
  /** Shared token; null accepts every caller. */
  readonly token: string | null;
  readonly logger: Logger;
  /** Bounds on what Watch streams may hold; see {@link WatchLimits}. */
  readonly watch?: WatchLimits;
  /** The registry forwards between its peers (`--relay`); told to nodes in every snapshot. */
  readonly relay?: boolean;
  /** Called for each call refused for its token, or for its source's failed attempts (metrics). */
  readonly onAuthFailure?: (reason: AuthRefusal) => void;
  /** Called with each accepted Watch stream, which emits "close" or "cancelled" when it ends (metrics). */
  readonly onWatch?: (stream: NodeJS.EventEmitter) => void;
  /** Counts failed token attempts per source address; a new FailureLimiter() (10 at once, then 10 a minute) by default. */
  readonly failureLimiter?: FailureLimiter;
  /** Reports per node (by key); {@link reportLimiter}() by default. */
  readonly reportLimiter?: FailureLimiter;
}

/**
 * Why a call was refused for its token: "wrong_token" (wrong or missing), or
 * "rate_limited" (wrong, from a source over its budget of failed attempts).
 */
export type AuthRefusal = "wrong_token" | "rate_limited";

function peerAddress(call: { getPeer(): string }): string {
  try {
    return call.getPeer();
  } catch {
    return "unknown";
  }
}

const denied = { code: grpc.status.PERMISSION_DENIED, details: "wrong or missing token" };

function unavailable(table: PeerTable): Partial<grpc.StatusObject> {
  return {
    code: grpc.status.UNAVAILABLE,
    details: `registry cannot read its WireGuard interface: ${table.lastError?.message ?? "not read yet"}`,
  };
}

/**
 * GetPeers carries all the nodes' reported paths; Watch none
 * (see peerInfo). With `keys`, only those peers (in the order asked).
 */
function snapshotEvent(table: PeerTable, relay: boolean, paths: "all" | "none", keys: ReadonlySet<string> | null = null): WatchEvent {
  const device = table.current;
  const peers: RegistryPeer[] = [];
  if (keys === null) peers.push(...table.peers.values());
  else
    for (const key of keys) {
      const p = table.peers.get(key);
      if (p) peers.push(p);
    }
  return {
    snapshot: {
      relay,
      registryPublicKey: device?.publicKey ?? "",
      peers: peers.map((p) => peerInfo(p, table.reportOf(p.publicKey), paths)),
    },
  };
}

const V1_PATH_PREFIX = "/wormhole.v1.Registry/";

/**
 * Reports a node may make: 10 at once, then one a second. A node reports when
 * its paths or candidates change (seconds apart); each report may change what
 * every watcher of that node hears, so a flood of them is refused
 * (RESOURCE_EXHAUSTED; the node reports again at its next change).
 */
export function reportLimiter(): FailureLimiter {
  return new FailureLimiter({ burst: 10, refillMs: 1_000, maxSources: 100_000 });
}

export function createHandlers(options: RegistryServiceOptions): { seed: SeedHandlers; v1: V1Handlers; tokenBeforeRequest: grpc.ServerInterceptor } {
  const { table, token, logger } = options;
  const relay = options.relay ?? false;
  const hub = new WatchHub(table, logger, options.watch, relay);
  const limiter = options.failureLimiter ?? new FailureLimiter();
  const reports = options.reportLimiter ?? reportLimiter();

  /**
   * Null when the call's token is right; otherwise the status to refuse it
   * with, the refusal counted and logged (never the token). The token is
   * checked first: a right token is never refused, whatever others sharing
   * its address (CGNAT, a /64, a proxy) got wrong. A wrong one counts against
   * its source (a tunnel peer alone, anyone else by address; IPv6: by /64);
   * a source over its budget of failures gets RESOURCE_EXHAUSTED, logged once
   * a window instead of once a try.
   */
  const refuseToken = (call: { getPeer(): string }, given: string, api: string): Partial<grpc.StatusObject> | null => {
    if (token === null || tokenMatches(token, given)) return null;
    const from = peerAddress(call);
    const ip = callerIp(from);
    const source = ip !== null && table.identity.keyOf(ip) !== null ? ip : sourceKey(from);
    const refusal = limiter.check(source);
    if (refusal) {
      const retryInSec = Math.ceil(refusal.retryInMs / 1000);
      if (refusal.log) logger.warn({ from, source, api, retryInSec }, "too many failed token attempts from this address; refusing its calls for a while");
      options.onAuthFailure?.("rate_limited");
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: `too many failed token attempts from this address; retry in ${retryInSec}s` };
    }
    limiter.fail(source);
    logger.warn({ from, api }, "refused a call with a wrong token");
    options.onAuthFailure?.("wrong_token");
    return denied;
  };

  /**
   * wormhole.v1 carries its token in metadata: checked as the call's headers
   * arrive, before a byte of its request is read or decoded. A refused call
   * never reaches its handler (which checks again: a right token passes both).
   */
  const tokenBeforeRequest: grpc.ServerInterceptor = (method, call) => {
    if (token === null || !method.path.startsWith(V1_PATH_PREFIX)) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, accept) => {
            const refused = refuseToken(call, tokenFromMetadata(metadata), `v1 ${method.path.slice(V1_PATH_PREFIX.length)}`);
            if (refused === null) accept(metadata);
            else call.sendStatus({ code: refused.code ?? grpc.status.PERMISSION_DENIED, details: refused.details ?? "", metadata: new grpc.Metadata() });
          },
        }),
    });
  };

  let seedCache: { device: WgDevice; reply: Encoded } | null = null;
  let getPeersCache: { device: WgDevice; reports: number; reply: Encoded } | null = null;
  const seed: SeedHandlers = {
    GetEndpoint(call, callback) {
      const refused = refuseToken(call, call.request.token, "wgSvc");
      if (refused) {
        callback(refused);
        return;
      }
      void table.fresh().then(() => {
        const device = table.current;
        if (!device || table.lastError) {
          callback(unavailable(table));
          return;
        }
        // Encoded once per read of the interface, however many seed nodes ask (seedService passes it through).
        if (seedCache?.device !== device) seedCache = { device, reply: new Encoded(getEndpointMethod.responseSerialize(seedReply(device))) };
        callback(null, seedCache.reply as unknown as GetEndpointReply);
      });
    },
    RegisterEndpoint(_call, callback) {
      // The seed declared this method and never implemented it; an empty
      // reply reveals nothing, so it needs no token (its request has none).
      callback(null, {});
    },
  };

  const v1: V1Handlers = {
    GetPeers(call, callback) {
      const refused = refuseToken(call, tokenFromMetadata(call.metadata), "v1");
      if (refused) {
        callback(refused);
        return;
      }
      void table.fresh().then(() => {
        const device = table.current;
        if (!device || table.lastError) {
          callback(unavailable(table));
          return;
        }
        // Encoded once per read of the interface and report (10,000 peers: ~100 ms), however many ask.
        if (getPeersCache?.device !== device || getPeersCache.reports !== table.reportsVersion) {
          getPeersCache = { device, reports: table.reportsVersion, reply: new Encoded(getPeersMethod.responseSerialize(snapshotEvent(table, relay, "all").snapshot ?? {})) };
        }
        callback(null, getPeersCache.reply as unknown as GetPeersResponse);
      });
    },

    Watch(call) {
      const refused = refuseToken(call, tokenFromMetadata(call.metadata), "v1 Watch");
      if (refused) {
        call.emit("error", { ...refused, metadata: new grpc.Metadata() });
        return;
      }
      if (!table.current) {
        call.emit("error", { ...unavailable(table), metadata: new grpc.Metadata() });
        return;
      }
      const asked = call.request.peerPublicKeys;
      const bad = asked.find((k) => !isKey(k));
      if (bad !== undefined) {
        call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `peer_public_keys: not a WireGuard key: \`${bad.slice(0, 60)}'`, metadata: new grpc.Metadata() });
        return;
      }
      const from = peerAddress(call);
      logger.debug({ from, keys: asked.length }, "watcher joined");
      hub.join(call, from, asked.length === 0 ? null : new Set(asked));
      options.onWatch?.(call);
    },

    Report(call, callback) {
      const refused = refuseToken(call, tokenFromMetadata(call.metadata), "v1 Report");
      if (refused) {
        callback(refused);
        return;
      }
      void table.fresh().then(() => {
        const ip = callerIp(peerAddress(call));
        const caller = ip === null ? null : table.identity.keyOf(ip);
        const tooMany = caller === null ? null : reports.spend(caller);
        if (tooMany) {
          callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `too many reports from this node; report again in ${Math.ceil(tooMany.retryInMs / 1000)}s` });
          return;
        }
        const verdict = checkReport(call.request, caller, table.identity, Date.now(), (key) => table.peers.has(key));
        if (!verdict.ok) {
          logger.warn({ from: peerAddress(call), err: verdict.details }, "refused a report");
          callback({ code: verdict.code, details: verdict.details });
          return;
        }
        // Watchers (and the Watch snapshot) hear of it through the table when what they see changed.
        table.report(verdict.publicKey, verdict.report);
        logger.debug({ from: peerAddress(call), candidates: verdict.report.candidates.length, paths: verdict.report.paths.length }, "report accepted");
        callback(null, {});
      });
    },
  };
  return { seed, v1, tokenBeforeRequest };
}

/**
 * Calls one connection may have open at once. A node's channel holds its Watch
 * and at most a Report and a GetPeers or seed call; 32 leaves ten times that
 * for tools on a shared channel (health, reflection), and bounds what one
 * connection makes the registry hold (32 Watch streams, 32 requests of 1 MiB).
 */
export const MAX_CONCURRENT_STREAMS = 32;

/**
 * The largest request the registry reads, for every method (grpc-js has one
 * limit per server). The largest a node sends is a Report: MAX_CANDIDATES
 * candidates and MAX_PATHS paths with every field at its longest take about
 * 60 KiB (61,310 bytes; test/unit/registry-limits.test.ts encodes one);
 * every other request (a token, a health service name, a reflection symbol)
 * is tiny. So a connection's 32 calls hold at most 2 MiB of requests being
 * read.
 */
export const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * Connections the registry holds at once; more are closed as they arrive
 * (net.Server maxConnections). Sized for 10,000 nodes with one connection
 * each, and room for tools and reconnects. With MAX_CONCURRENT_STREAMS and
 * MAX_REQUEST_BYTES, it bounds what unauthenticated clients can make the
 * registry hold.
 */
export const MAX_CONNECTIONS = 16_384;

/** A connection with no call open this long is closed; a node's never is (its Watch stays open). */
export const CONNECTION_IDLE_MS = 5 * 60_000;

/**
 * Server options, all read by grpc-js 1.14's server (it ignores the rest).
 *
 * The registry pings every connection every 30 s and drops one that does not
 * answer within 10 s. It does not police the client's own pings: grpc-js has no
 * server-side min ping interval, ping strikes or permit-without-calls (those
 * names are client options there), so a node's 15 s keepalive can never earn it
 * a GOAWAY. A client that sends a thousand pings faster than they are
 * answered is disconnected by node's HTTP/2 (nghttp2's limit on unsent acks);
 * slower pings cost one small ack each, like any other request.
 *
 * No `grpc.max_connection_age_ms`: it would send every node a GOAWAY (new
 * calls on a new connection), and with its grace period cut every Watch.
 */
export const SERVER_CHANNEL_OPTIONS: grpc.ServerOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  // Advertised in HTTP/2 SETTINGS: a client over it waits for a call to end
  // (grpc-js queues it), so one connection cannot open unbounded Watch streams.
  "grpc.max_concurrent_streams": MAX_CONCURRENT_STREAMS,
  // Counted from the end of a connection's last call; pings do not reset it.
  "grpc.max_connection_idle_ms": CONNECTION_IDLE_MS,
  // Checked against each message's length prefix, before its bytes are buffered.
  "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
};

/** Bounds on each client connection (defaults above); tests shorten them. */
export interface ConnectionLimits {
  /** Calls open at once on one connection. Default {@link MAX_CONCURRENT_STREAMS}. */
  readonly maxConcurrentStreams?: number;
  /** Milliseconds a connection may stay without any call before it is closed. Default {@link CONNECTION_IDLE_MS}. */
  readonly idleMs?: number;
  /** Connections held at once; more are closed as they arrive. Default {@link MAX_CONNECTIONS}. */
  readonly maxConnections?: number;
}

export interface RegistryServerOptions extends RegistryServiceOptions {
  readonly connections?: ConnectionLimits;
}

/**
 * A grpc-js server that accepts its connections itself (through grpc-js's
 * connection injector), so that it can cap how many it holds: grpc-js has
 * no such setting. {@link bindServer} listens with it; shutting the server
 * down also stops the listeners.
 */
export class RegistryServer extends grpc.Server {
  private readonly listeners: net.Server[] = [];

  constructor(
    options: grpc.ServerOptions,
    private readonly maxConnections: number,
  ) {
    super(options);
  }

  /** Listens on `host:port` (port 0: any); resolves to the port. */
  async listen(host: string, port: number, credentials: grpc.ServerCredentials): Promise<number> {
    const injector = this.createConnectionInjector(credentials);
    const listener = net.createServer((socket) => injector.injectConnection(socket));
    listener.maxConnections = this.maxConnections;
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen({ host, port }, () => {
        listener.off("error", reject);
        resolve();
      });
    });
    this.listeners.push(listener);
    return (listener.address() as net.AddressInfo).port;
  }

  override tryShutdown(callback: (error?: Error) => void): void {
    this.closeListeners();
    super.tryShutdown(callback);
  }

  override forceShutdown(): void {
    this.closeListeners();
    super.forceShutdown();
  }

  private closeListeners(): void {
    for (const l of this.listeners.splice(0)) l.close();
  }
}

export function createRegistryServer(options: RegistryServerOptions): RegistryServer {
  const limits = options.connections ?? {};
  const { seed, v1, tokenBeforeRequest } = createHandlers(options);
  const server = new RegistryServer(
    {
      ...SERVER_CHANNEL_OPTIONS,
      ...(limits.maxConcurrentStreams !== undefined ? { "grpc.max_concurrent_streams": limits.maxConcurrentStreams } : {}),
      ...(limits.idleMs !== undefined ? { "grpc.max_connection_idle_ms": limits.idleMs } : {}),
      interceptors: [tokenBeforeRequest],
    },
    limits.maxConnections ?? MAX_CONNECTIONS,
  );
  server.addService(seedService, seed);
  server.addService(v1Service, v1);
  return server;
}

/**
 * Turns the seed's Go-style listen address into one grpc-js binds:
 * ":1638" means every address; "host:port" and "[v6]:port" pass through.
 */
export function bindCandidates(address: string): string[] {
  const m = /^:(\d+)$/.exec(address.trim());
  if (m) return [`[::]:${m[1]}`, `0.0.0.0:${m[1]}`];
  return [address.trim()];
}

/**
 * "[::1]:0" → ["::1", 0]; "127.0.0.1:1638" → ["127.0.0.1", 1638]; null when it
 * is not host:port (then grpc-js binds it, without the connection cap).
 */
function hostAndPort(target: string): [string, number] | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:]+):(\d+)$/.exec(target);
  if (!m?.[1] || m[2] === undefined) return null;
  const port = Number(m[2]);
  return port <= 65535 ? [m[1], port] : null;
}

export function bindServer(server: grpc.Server, address: string, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  const candidates = bindCandidates(address);
  const bindOne = (target: string): Promise<number> => {
    const hp = hostAndPort(target);
    if (server instanceof RegistryServer && hp) {
      if (hp[0] !== "localhost") return server.listen(hp[0], hp[1], credentials);
      // As grpc-js binds localhost: 127.0.0.1, and ::1 on the same port where there is IPv6.
      return server.listen("127.0.0.1", hp[1], credentials).then((port) =>
        server.listen("::1", port, credentials).then(
          () => port,
          () => port,
        ),
      );
    }
    return new Promise<number>((resolve, reject) => {
      server.bindAsync(target, credentials, (err, port) => {
        if (err) reject(err);
        else resolve(port);
      });
    });
  };
  const tryBind = (i: number, lastError: Error | null): Promise<number> => {
    const target = candidates[i];
    if (target === undefined) {
      return Promise.reject(new Error(`cannot listen on \`${address}': ${lastError?.message ?? "no address"}`));
    }
    return bindOne(target).catch((err: Error) => tryBind(i + 1, err));
  };
  return tryBind(0, null);
}

// ---------------------------------------------------------------- pre-encoded replies

/**
 * A reply serialized once and written as-is to any number of calls (the
 * seed's GetEndpoint until the interface is read again; each Watch event to
 * every stream): the services below pass its bytes through.
 */
export class Encoded {
  constructor(readonly bytes: Buffer) {}
}

/** `service` with method `name`'s replies either messages, serialized as usual, or {@link Encoded} bytes. */
function passingEncoded(service: grpc.ServiceDefinition, name: string): grpc.ServiceDefinition {
  const method = service[name];
  if (!method) throw new Error(`no method ${name} in the service`);
  return {
    ...service,
    // method.responseSerialize is looked up per call (a test counts encodings by wrapping it).
    [name]: { ...method, responseSerialize: (value: unknown): Buffer => (value instanceof Encoded ? value.bytes : method.responseSerialize(value)) },
  };
}

const getEndpointMethod = seedProto.Registry.service.GetEndpoint;
const watchMethod = v1Proto.Registry.service.Watch;
const getPeersMethod = v1Proto.Registry.service.GetPeers;

/** wgSvc.proto.Registry as served: its GetEndpoint writes plain or pre-serialized replies. */
export const seedService = passingEncoded(seedProto.Registry.service, "GetEndpoint");

/** wormhole.v1.Registry as served: its Watch and GetPeers write plain or pre-serialized messages. */
export const v1Service = passingEncoded(passingEncoded(v1Proto.Registry.service, "Watch"), "GetPeers");

export function encodeWatchEvent(event: WatchEvent): Encoded {
  return new Encoded(watchMethod.responseSerialize(event));
}

// ---------------------------------------------------------------- Watch fan-out

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

type WatchCall = Parameters<V1Handlers["Watch"]>[0];

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
class WatchHub {
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
