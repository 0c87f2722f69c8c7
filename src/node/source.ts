/**
 * Where the node learns the registry's view. It subscribes to
 * wormhole.v1 Watch (pushed changes) and, when the registry does not have that
 * service (a seed registry answers UNIMPLEMENTED), polls the seed's
 * GetEndpoint every refresh interval instead. Every failure is logged and
 * retried with backoff; nothing here ever throws to the caller.
 */
import * as grpc from "@grpc/grpc-js";
import type { GetEndpointReply, PeerInfo__Output, SeedClient, V1Client, WatchEvent__Output } from "../rpc/proto.js";
import { pathKindToWire, type PathState } from "../util/path.js";
import { backoffDelay } from "../util/backoff.js";
import type { Logger } from "../util/log.js";
import { isKey } from "../wg/keys.js";
import type { Endpoint } from "../wg/types.js";
import { tryCanonicalCidr } from "../wg/endpoint.js";
import { addressHost } from "../config/values.js";
import { MAX_PEER_CANDIDATES, MAX_VIEW_PEERS, registryClients, registryEndpoint } from "./validate.js";

/** The registry's view as the node uses it. */
export interface RegistryView {
  /** Registry's endpoint for each peer it knows (null: known, no endpoint). */
  readonly endpoints: ReadonlyMap<string, Endpoint | null>;
  /** The registry's own WireGuard public key ("" when it did not say or said garbage). */
  readonly registryPublicKey: string;
  /** Local candidates (LAN addresses) each node reported for itself; empty from a seed registry. */
  readonly candidates: ReadonlyMap<string, readonly Endpoint[]>;
  /** Each peer's allowed IPs on the registry's WireGuard (canonical prefixes, at most 16 a peer); absent: not told. */
  readonly allowedIps?: ReadonlyMap<string, readonly string[]>;
  /** Increases with every new connection to the registry (its state may have been lost). */
  readonly generation: number;
  /** The registry forwards between its peers (relay). */
  readonly relay: boolean;
  /** How it arrived; for logs. */
  readonly via: "watch" | "poll";
}

export interface NodeReportMessage {
  readonly publicKey: string;
  readonly candidates: readonly Endpoint[];
  readonly paths: readonly PathState[];
}

export interface RegistrySource {
  /**
   * Starts watching. `interest`: the keys of the peers to hear about (this
   * node's own and its peers'), so the registry sends only those; empty or
   * absent: every peer.
   */
  start(onView: (view: RegistryView) => void, interest?: readonly string[]): void;
  /** The peers to hear about changed: watch again, for these. */
  setInterest?(keys: readonly string[]): void;
  /** Sends a report about this node; rejects with a {@link ReportError}. */
  report(message: NodeReportMessage): Promise<void>;
  /**
   * From now on, watch and report at the registry's tunnel address `host`
   * (same port, same credentials; TLS still verifies the name first dialled):
   * there the registry knows us by our tunnel address, and the connection
   * survives our NAT losing its mappings. When the tunnel does not answer,
   * the address given serves, and the tunnel is tried again later.
   */
  useTunnel?(host: string): void;
  /**
   * The registry is known to answer again (it answered a hello through the
   * tunnel): when not connected, dial afresh now instead of waiting out the
   * retry backoff.
   */
  reconnect?(): void;
  /** Whether the registry answers now: never answered yet, answering, or not answering (retrying). */
  health?(): RegistryHealth;
  stop(): void;
}

export type RegistryHealth = "connecting" | "connected" | "unreachable";

/**
 * Why a report did not land. `refused`: the registry will not take this
 * node's reports on this connection (it does not know the caller, or has no
 * Report); otherwise it may on a later try. The gRPC status stays here, at
 * the edge.
 */
export class ReportError extends Error {
  constructor(
    message: string,
    readonly refused: boolean,
  ) {
    super(message);
    this.name = "ReportError";
  }
}

/**
 * Most keys a Watch asks for; with more it asks for every peer (the
 * registry reads at most 64 KiB of a request: ~1,400 keys).
 */
export const MAX_INTEREST_KEYS = 1_000;

/** The keys to ask the registry for, as sent: sorted, unique, or none (every peer) when there are too many. */
export function interestList(keys: readonly string[]): string[] {
  const list = [...new Set(keys)].sort();
  return list.length > MAX_INTEREST_KEYS ? [] : list;
}

/** The port of a host:port address (the seed's form), or null. */
export function addressPort(address: string): number | null {
  const m = /:(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[1]) : NaN;
  return port >= 1 && port <= 65535 ? port : null;
}

export interface GrpcSourceOptions {
  /** host:port of the registry. */
  readonly address: string;
  readonly token: string;
  /** Poll interval in seed mode; also the cap of retry backoff. */
  readonly refreshMs: number;
  readonly logger: Logger;
  /** Per-call deadline for unary calls. Default 10 s. */
  readonly callTimeoutMs?: number;
  /** First retry delay after a failure. Default 500 ms. */
  readonly minBackoffMs?: number;
  /**
   * A Watch that brings no snapshot this long after it started is given up
   * and retried. Default 2 minutes: a registry that thousands of nodes
   * rejoin at once sends snapshots in turn.
   */
  readonly snapshotTimeoutMs?: number;
  /**
   * In seed mode, how often to try Watch again instead of a poll: a seed
   * registry upgraded to wormhole is then pushed from within this time.
   * Default 5 minutes.
   */
  readonly watchRetryMs?: number;
  /** How the channel is secured; plaintext (the seed's way) by default. */
  readonly credentials?: grpc.ChannelCredentials;
  /** The credentials are TLS: a tunnel channel must verify the name first dialled. */
  readonly secure?: boolean;
}

/** After a Watch through the registry's tunnel address failed, this long at the address given before the tunnel is tried again. */
export const TUNNEL_RETRY_MS = 30_000;

/** Client channel options: HTTP/2 pings find a dead registry under an idle Watch. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 15_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.initial_reconnect_backoff_ms": 500,
  "grpc.max_reconnect_backoff_ms": 5_000,
};

/** Where problems with the registry's messages are told (a Logger, or a stream's rate-limited one). */
export interface WarnSink {
  warn(fields: object, message: string): void;
}

/**
 * What was wrong with one message from the registry: logged once per message, with
 * the first example, however many peers it had (a hostile registry cannot flood the log).
 */
class Garbage {
  private badKeys = 0;
  private badEndpoints = 0;
  private firstKey: unknown;
  private firstEndpoint: Record<string, unknown> | null = null;
  key(key: unknown): void {
    if (this.badKeys++ === 0) this.firstKey = typeof key === "string" ? key.slice(0, 60) : typeof key;
  }
  endpoint(peer: string, ip: unknown, port: unknown, why: string): void {
    if (this.badEndpoints++ === 0) this.firstEndpoint = { peer, ip: typeof ip === "string" ? ip.slice(0, 60) : ip, port, why };
  }
  log(logger: WarnSink): void {
    if (this.badKeys > 0) logger.warn({ count: this.badKeys, first: this.firstKey }, "registry sent peers whose public key is not a WireGuard key; ignoring them");
    if (this.badEndpoints > 0) logger.warn({ count: this.badEndpoints, first: this.firstEndpoint }, "registry sent endpoints this node will not use; ignoring them");
  }
}

/** Reads a seed GetEndpointReply, dropping entries that are not valid keys and endpoints that are not usable. */
export function viewFromSeedReply(reply: GetEndpointReply, logger: WarnSink, allowedIps?: Map<string, readonly string[]>): Map<string, Endpoint | null> {
  const endpoints = new Map<string, Endpoint | null>();
  const garbage = new Garbage();
  const peers = Array.isArray(reply?.Peers) ? reply.Peers : [];
  for (const p of peers.slice(0, MAX_VIEW_PEERS)) {
    const key = p?.pubKey;
    if (typeof key !== "string" || !isKey(key)) {
      garbage.key(key);
      continue;
    }
    const r = registryEndpoint(p.endpointIP, p.endpointPort);
    if ("problem" in r) garbage.endpoint(key, p.endpointIP, p.endpointPort, r.problem);
    endpoints.set(key, "endpoint" in r ? r.endpoint : null);
    allowedIps?.set(key, allowedIpsOf(p.AllowedIPs));
  }
  garbage.log(logger);
  return endpoints;
}

/** What the node keeps of the registry's Watch stream. */
export interface WatchState {
  readonly endpoints: Map<string, Endpoint | null>;
  readonly candidates: Map<string, readonly Endpoint[]>;
  readonly allowedIps: Map<string, readonly string[]>;
}

/** Most allowed IPs kept per peer from the registry. */
export const MAX_PEER_ALLOWED_IPS = 16;

/** The allowed IPs as sent, keeping only valid prefixes (at most MAX_PEER_ALLOWED_IPS). */
function allowedIpsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const a of list.slice(0, MAX_PEER_ALLOWED_IPS)) {
    const cidr = typeof a === "string" && a.length <= 64 ? tryCanonicalCidr(a) : null;
    if (cidr !== null) out.push(cidr);
  }
  return out;
}

/** Candidates as sent, keeping only usable endpoints (at most 16). */
function candidatesOf(list: readonly { ip: string; port: number }[], key: string, garbage: Garbage): Endpoint[] {
  const out: Endpoint[] = [];
  for (const c of list.slice(0, MAX_PEER_CANDIDATES)) {
    const r = registryEndpoint(c?.ip, c?.port);
    if ("problem" in r) garbage.endpoint(key, c?.ip, c?.port, `candidate: ${r.problem}`);
    else if (r.endpoint) out.push(r.endpoint);
  }
  return out;
}

/**
 * Folds one Watch event into the state; returns false for an event it cannot read.
 * The state never holds more than MAX_VIEW_PEERS peers, whatever the registry sends.
 */
export function applyWatchEvent(state: WatchState, event: WatchEvent__Output, logger: WarnSink): boolean {
  const garbage = new Garbage();
  const take = (p: PeerInfo__Output) => {
    const key = p?.publicKey;
    if (typeof key !== "string" || !isKey(key)) {
      garbage.key(key);
      return;
    }
    if (state.endpoints.size >= MAX_VIEW_PEERS && !state.endpoints.has(key)) return;
    const ep = p.endpoint;
    const r = ep ? registryEndpoint(ep.ip, ep.port) : { endpoint: null };
    if ("problem" in r) garbage.endpoint(key, ep?.ip, ep?.port, r.problem);
    state.endpoints.set(key, "endpoint" in r ? r.endpoint : null);
    state.allowedIps.set(key, allowedIpsOf(p.allowedIps));
    const candidates = candidatesOf(Array.isArray(p.candidates) ? p.candidates : [], key, garbage);
    if (candidates.length > 0) state.candidates.set(key, candidates);
    else state.candidates.delete(key);
  };
  switch (event?.event) {
    case "snapshot":
      state.endpoints.clear();
      state.candidates.clear();
      state.allowedIps.clear();
      for (const p of Array.isArray(event.snapshot?.peers) ? event.snapshot.peers : []) take(p);
      garbage.log(logger);
      return true;
    case "changed":
      if (!event.changed) return false;
      take(event.changed);
      garbage.log(logger);
      return true;
    case "removedPublicKey":
      state.endpoints.delete(event.removedPublicKey ?? "");
      state.candidates.delete(event.removedPublicKey ?? "");
      state.allowedIps.delete(event.removedPublicKey ?? "");
      return true;
    default:
      return false;
  }
}

function describe(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code === "number") {
    const name = grpc.status[e.code] ?? String(e.code);
    return `${name}: ${e.details || e.message || ""}`.trim();
  }
  return err instanceof Error ? err.message : String(err);
}

export function createGrpcSource(options: GrpcSourceOptions): RegistrySource {
  const { address, token, refreshMs, logger } = options;
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const minBackoffMs = options.minBackoffMs ?? 500;
  const snapshotTimeoutMs = options.snapshotTimeoutMs ?? 120_000;
  const watchRetryMs = options.watchRetryMs ?? 5 * 60_000;
  /** When polling began or Watch was last tried and found missing. */
  let pollingSince = 0;
  const creds = options.credentials ?? grpc.credentials.createInsecure();
  let v1: V1Client | null = null;
  let seed: SeedClient | null = null;
  /** Watch and reports go here once the registry's tunnel address is known (useTunnel). */
  let tunnelV1: { host: string; client: V1Client } | null = null;
  /** When a Watch through the tunnel last failed: the public address serves until TUNNEL_RETRY_MS later. */
  let tunnelFailedAtMs = -Infinity;
  let streamViaTunnel = false;
  let tunnelTimer: NodeJS.Timeout | null = null;
  /** The peers the Watch asks for (empty: every peer), and what the current stream asked. */
  let interest: string[] = [];
  let streamInterest = "";
  let stream: grpc.ClientReadableStream<WatchEvent__Output> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let snapshotTimer: NodeJS.Timeout | null = null;
  let stopped = false;
  let mode: "watch" | "poll" = "watch";
  let failures = 0;
  let healthy: boolean | null = null;
  let generation = 0;

  const metadata = () => {
    const md = new grpc.Metadata();
    if (token) md.set("authorization", `Bearer ${token}`);
    return md;
  };

  const later = (ms: number, fn: () => void) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };

  const markHealthy = () => {
    failures = 0;
    if (healthy !== true) logger.info({ registry: address, via: mode }, "connected to the registry");
    healthy = true;
  };

  const markFailed = (err: unknown, retry: () => void) => {
    const delay = backoffDelay(failures, { minMs: minBackoffMs, maxMs: Math.max(minBackoffMs, Math.min(refreshMs, 30_000)) });
    failures += 1;
    const fields = { registry: address, err: describe(err), retryInMs: delay };
    if (healthy !== false) logger.warn(fields, "registry unreachable or refusing; will keep retrying");
    else logger.debug(fields, "registry still unreachable");
    healthy = false;
    later(delay, retry);
  };

  let onView: (view: RegistryView) => void = () => {};

  let polled = false;
  const poll = () => {
    if (stopped || !seed) return;
    if (!polled) {
      polled = true;
      generation += 1;
    }
    seed.GetEndpoint({ token }, { deadline: Date.now() + callTimeoutMs }, (err, reply) => {
      if (stopped) return;
      if (err || !reply) {
        markFailed(err ?? new Error("empty reply"), poll);
        return;
      }
      markHealthy();
      const allowedIps = new Map<string, readonly string[]>();
      onView({
        endpoints: viewFromSeedReply(reply, logger, allowedIps),
        allowedIps,
        registryPublicKey: isKey(reply.pubKey) ? reply.pubKey : "",
        candidates: new Map(),
        generation,
        relay: false,
        via: "poll",
      });
      // Now and then, try Watch again in place of a poll (it falls back here if still missing).
      if (Date.now() - pollingSince >= watchRetryMs) {
        mode = "watch";
        later(refreshMs, watch);
      } else {
        later(refreshMs, poll);
      }
    });
  };

  /** Ends the current Watch (its handlers ignore it from now on) and subscribes again. */
  const rewatch = () => {
    const s = stream;
    stream = null;
    s?.cancel();
    watch();
  };

  const watch = () => {
    if (stopped || !v1) return;
    const viaTunnel = tunnelV1 !== null && Date.now() - tunnelFailedAtMs >= TUNNEL_RETRY_MS;
    const client = viaTunnel && tunnelV1 ? tunnelV1.client : v1;
    streamViaTunnel = viaTunnel;
    /** A Watch through the tunnel that fails falls back to the public address, and tries the tunnel again later. */
    const failed = (err: unknown) => {
      if (viaTunnel) {
        tunnelFailedAtMs = Date.now();
        logger.warn({ registry: address, tunnel: tunnelV1?.host, err: describe(err), retryTunnelInMs: TUNNEL_RETRY_MS }, "the registry's tunnel address does not answer; watching at the address given until it does");
        if (tunnelTimer) clearTimeout(tunnelTimer);
        tunnelTimer = setTimeout(() => {
          tunnelTimer = null;
          if (!stopped && stream !== null && !streamViaTunnel && mode === "watch") rewatch();
        }, TUNNEL_RETRY_MS);
        tunnelTimer.unref?.();
      }
      markFailed(err, watch);
    };
    const state: WatchState = { endpoints: new Map(), candidates: new Map(), allowedIps: new Map() };
    let gotSnapshot = false;
    let registryPublicKey = "";
    let relay = false;
    // A registry streaming garbage gets ten warnings per connection; the rest go to debug.
    let warnings = 0;
    const streamLog: WarnSink = { warn: (fields, message) => (warnings++ < 10 ? logger.warn(fields, message) : logger.debug(fields, message)) };
    // Views are handed on once per burst of events, not once per event (each copies the whole state).
    let viewQueued = false;
    const handOn = () => {
      viewQueued = false;
      if (stopped) return;
      onView({
        endpoints: new Map(state.endpoints),
        candidates: new Map(state.candidates),
        allowedIps: new Map(state.allowedIps),
        registryPublicKey,
        generation,
        relay,
        via: "watch",
      });
    };
    streamInterest = interest.join(",");
    const call = client.Watch({ publicKey: "", peerPublicKeys: interest }, metadata());
    stream = call;
    // A registry that accepts the Watch and then says nothing would hold the node forever.
    if (snapshotTimer) clearTimeout(snapshotTimer);
    snapshotTimer = setTimeout(() => {
      snapshotTimer = null;
      if (stopped || stream !== call || gotSnapshot) return;
      stream = null;
      call.cancel();
      failed(new Error(`no snapshot within ${snapshotTimeoutMs} ms of subscribing`));
    }, snapshotTimeoutMs);
    call.on("data", (event: WatchEvent__Output) => {
      if (!applyWatchEvent(state, event, streamLog)) {
        streamLog.warn({ event: event?.event }, "registry sent a Watch event this node cannot read; ignoring it");
        return;
      }
      if (event.event === "snapshot") {
        gotSnapshot = true;
        if (snapshotTimer) clearTimeout(snapshotTimer);
        snapshotTimer = null;
        generation += 1;
        if (pollingSince !== 0) {
          logger.info({ registry: address }, "the registry has wormhole.v1 Watch now; pushed from here on, no more polling");
          pollingSince = 0;
        }
        const key = event.snapshot?.registryPublicKey ?? "";
        registryPublicKey = isKey(key) ? key : "";
        relay = event.snapshot?.relay === true;
      }
      if (!gotSnapshot) return;
      markHealthy();
      if (!viewQueued) {
        viewQueued = true;
        setImmediate(handOn);
      }
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (stopped || stream !== call) return;
      stream = null;
      if (err.code === grpc.status.UNIMPLEMENTED) {
        // Said once; the retries every watchRetryMs find the same and say it at debug.
        const fields = { registry: address, retryWatchInMs: watchRetryMs };
        if (pollingSince === 0) logger.info(fields, "registry has no wormhole.v1 Watch (a seed registry?); polling GetEndpoint instead");
        else logger.debug(fields, "registry still has no wormhole.v1 Watch; polling GetEndpoint");
        mode = "poll";
        pollingSince = Date.now();
        poll();
        return;
      }
      failed(err);
    });
    call.on("end", () => {
      if (stopped || stream !== call) return;
      stream = null;
      failed(new Error("registry closed the Watch stream"));
    });
  };

  /** A channel to the registry's tunnel address (replacing any); false when the address given has no port or is that address. */
  const dialTunnel = (host: string): boolean => {
    const port = addressPort(address);
    const dialled = addressHost(address);
    if (port === null || dialled === null || dialled === host) return false;
    tunnelV1?.client.close();
    const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    // TLS checks the certificate against the name the user gave, not the tunnel address.
    const tlsName: grpc.ChannelOptions = options.secure ? { "grpc.ssl_target_name_override": dialled, "grpc.default_authority": dialled } : {};
    tunnelV1 = { host, client: registryClients(target, creds, { ...CHANNEL_OPTIONS, ...tlsName }).v1 };
    tunnelFailedAtMs = -Infinity;
    return true;
  };

  return {
    start(listener, keys) {
      onView = listener;
      interest = interestList(keys ?? []);
      // Replies are checked before they are decoded, and decoded only as far as they are read.
      ({ v1, seed } = registryClients(address, creds, CHANNEL_OPTIONS));
      if (mode === "watch") watch();
      else poll();
    },
    setInterest(keys) {
      interest = interestList(keys);
      if (stopped || mode !== "watch" || stream === null || interest.join(",") === streamInterest) return;
      logger.debug({ registry: address, peers: interest.length }, "the peers to hear about changed; watching again");
      rewatch();
    },
    useTunnel(host) {
      if (stopped || tunnelV1?.host === host) return;
      if (!dialTunnel(host)) return;
      // The Watch moves into the tunnel: a TCP connection through our NAT dies with its mapping (a router reboot), one through the tunnel does not.
      if (mode === "watch" && stream !== null) rewatch();
    },
    reconnect() {
      if (stopped || healthy !== false || !v1) return;
      logger.info({ registry: address }, "the registry answers hellos through the tunnel: reconnecting now");
      // A fresh channel: the old one may sit out its own reconnect backoff and fail calls at once until then.
      v1.close();
      seed?.close();
      ({ v1, seed } = registryClients(address, creds, CHANNEL_OPTIONS));
      if (tunnelV1) dialTunnel(tunnelV1.host);
      if (timer) clearTimeout(timer);
      timer = null;
      failures = 0;
      // A Watch still waiting on the old channel is ended (its handlers ignore it from now on).
      const pending = stream;
      stream = null;
      pending?.cancel();
      if (mode === "poll") poll();
      else watch();
    },
    health() {
      return healthy === null ? "connecting" : healthy ? "connected" : "unreachable";
    },
    report(message) {
      const client = tunnelV1?.client ?? v1;
      return new Promise<void>((resolve, reject) => {
        if (!client || stopped) {
          reject(new ReportError("not connected", false));
          return;
        }
        const request = {
          publicKey: message.publicKey,
          candidates: message.candidates.map((c) => ({ ip: c.ip, port: c.port })),
          paths: message.paths.map((p) => ({
            peerPublicKey: p.peerPublicKey,
            kind: pathKindToWire(p.kind),
            sinceUnixMs: p.sinceMs,
            endpoint: p.endpoint ? { ip: p.endpoint.ip, port: p.endpoint.port } : null,
          })),
        };
        client.Report(request, metadata(), { deadline: Date.now() + callTimeoutMs }, (err) => {
          if (!err) resolve();
          else reject(new ReportError(err.details || err.message, err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNIMPLEMENTED));
        });
      });
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (snapshotTimer) clearTimeout(snapshotTimer);
      if (tunnelTimer) clearTimeout(tunnelTimer);
      stream?.cancel();
      stream = null;
      v1?.close();
      seed?.close();
      tunnelV1?.client.close();
    },
  };
}
