/**
 * Where the node learns the registry's view. It subscribes to
 * wormhole.v1 Watch (pushed changes) and, when the registry does not have that
 * service (a seed registry answers UNIMPLEMENTED), polls the seed's
 * GetEndpoint every refresh interval instead. Every failure is logged and
 * retried with backoff; nothing here ever throws to the caller.
 */
import * as grpc from "@grpc/grpc-js";
import {
  seedProto,
  v1Proto,
  type GetEndpointReply,
  type PeerInfo__Output,
  type SeedClient,
  type V1Client,
  type WatchEvent__Output,
} from "../rpc/proto.js";
import { pathKindToWire, type PathState } from "../util/path.js";
import { backoffDelay } from "../util/backoff.js";
import type { Logger } from "../util/log.js";
import { checkEndpoint } from "../wg/endpoint.js";
import { isKey } from "../wg/keys.js";
import type { Endpoint } from "../wg/types.js";

/** The registry's view as the node uses it. */
export interface RegistryView {
  /** Registry's endpoint for each peer it knows (null: known, no endpoint). */
  readonly endpoints: ReadonlyMap<string, Endpoint | null>;
  /** The registry's own WireGuard public key ("" when it did not say or said garbage). */
  readonly registryPublicKey: string;
  /** Local candidates (LAN addresses) each node reported for itself; empty from a seed registry. */
  readonly candidates: ReadonlyMap<string, readonly Endpoint[]>;
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
  start(onView: (view: RegistryView) => void): void;
  /** Sends a report about this node; rejects with the registry's error (a grpc ServiceError). */
  report(message: NodeReportMessage): Promise<void>;
  stop(): void;
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
}

/** Client channel options: HTTP/2 pings find a dead registry under an idle Watch. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 15_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.initial_reconnect_backoff_ms": 500,
  "grpc.max_reconnect_backoff_ms": 5_000,
};

/** The registry's endpoint for a peer, or null when it gave none or gave garbage. */
function endpointOf(ip: string, port: number): Endpoint | null {
  if (!ip && !port) return null;
  try {
    return checkEndpoint({ ip, port });
  } catch {
    return null;
  }
}

/** Reads a seed GetEndpointReply, dropping entries that are not valid keys. */
export function viewFromSeedReply(reply: GetEndpointReply, logger: Logger): Map<string, Endpoint | null> {
  const endpoints = new Map<string, Endpoint | null>();
  for (const p of reply.Peers ?? []) {
    const key = p.pubKey ?? "";
    if (!isKey(key)) {
      logger.warn({ key }, "registry sent a peer whose public key is not a WireGuard key; ignoring it");
      continue;
    }
    const ep = endpointOf(p.endpointIP ?? "", Number(p.endpointPort ?? 0));
    if (!ep && (p.endpointIP || p.endpointPort)) {
      logger.warn({ peer: key, ip: p.endpointIP, port: p.endpointPort }, "registry sent an invalid endpoint; ignoring it");
    }
    endpoints.set(key, ep);
  }
  return endpoints;
}

/** What the node keeps of the registry's Watch stream. */
export interface WatchState {
  readonly endpoints: Map<string, Endpoint | null>;
  readonly candidates: Map<string, readonly Endpoint[]>;
}

/** Candidates as sent, keeping only valid endpoints (at most 16). */
function candidatesOf(list: readonly { ip: string; port: number }[]): Endpoint[] {
  const out: Endpoint[] = [];
  for (const c of list.slice(0, 16)) {
    const ep = endpointOf(c.ip, c.port);
    if (ep) out.push(ep);
  }
  return out;
}

/** Folds one Watch event into the state; returns false for an event it cannot read. */
export function applyWatchEvent(state: WatchState, event: WatchEvent__Output, logger: Logger): boolean {
  const take = (p: PeerInfo__Output) => {
    const key = p.publicKey;
    if (!isKey(key)) {
      logger.warn({ key }, "registry sent a peer whose public key is not a WireGuard key; ignoring it");
      return;
    }
    const ep = p.endpoint;
    const endpoint = ep ? endpointOf(ep.ip, ep.port) : null;
    if (ep && !endpoint) logger.warn({ peer: key, ip: ep.ip, port: ep.port }, "registry sent an invalid endpoint; ignoring it");
    state.endpoints.set(key, endpoint);
    const candidates = candidatesOf(p.candidates ?? []);
    if (candidates.length > 0) state.candidates.set(key, candidates);
    else state.candidates.delete(key);
  };
  switch (event.event) {
    case "snapshot":
      state.endpoints.clear();
      state.candidates.clear();
      for (const p of event.snapshot?.peers ?? []) take(p);
      return true;
    case "changed":
      if (!event.changed) return false;
      take(event.changed);
      return true;
    case "removedPublicKey":
      state.endpoints.delete(event.removedPublicKey ?? "");
      state.candidates.delete(event.removedPublicKey ?? "");
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
  const creds = grpc.credentials.createInsecure();
  let v1: V1Client | null = null;
  let seed: SeedClient | null = null;
  let stream: grpc.ClientReadableStream<WatchEvent__Output> | null = null;
  let timer: NodeJS.Timeout | null = null;
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
      onView({
        endpoints: viewFromSeedReply(reply, logger),
        registryPublicKey: isKey(reply.pubKey) ? reply.pubKey : "",
        candidates: new Map(),
        generation,
        relay: false,
        via: "poll",
      });
      later(refreshMs, poll);
    });
  };

  const watch = () => {
    if (stopped || !v1) return;
    const state: WatchState = { endpoints: new Map(), candidates: new Map() };
    let gotSnapshot = false;
    let registryPublicKey = "";
    let relay = false;
    const call = v1.Watch({ publicKey: "" }, metadata());
    stream = call;
    call.on("data", (event: WatchEvent__Output) => {
      if (!applyWatchEvent(state, event, logger)) {
        logger.warn({ event: event.event }, "registry sent a Watch event this node cannot read; ignoring it");
        return;
      }
      if (event.event === "snapshot") {
        gotSnapshot = true;
        generation += 1;
        const key = event.snapshot?.registryPublicKey ?? "";
        registryPublicKey = isKey(key) ? key : "";
        relay = event.snapshot?.relay === true;
      }
      if (!gotSnapshot) return;
      markHealthy();
      onView({ endpoints: new Map(state.endpoints), candidates: new Map(state.candidates), registryPublicKey, generation, relay, via: "watch" });
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (stopped || stream !== call) return;
      stream = null;
      if (err.code === grpc.status.UNIMPLEMENTED) {
        logger.info({ registry: address }, "registry has no wormhole.v1 Watch (a seed registry?); polling GetEndpoint instead");
        mode = "poll";
        poll();
        return;
      }
      markFailed(err, watch);
    });
    call.on("end", () => {
      if (stopped || stream !== call) return;
      stream = null;
      markFailed(new Error("registry closed the Watch stream"), watch);
    });
  };

  return {
    start(listener) {
      onView = listener;
      v1 = new v1Proto.Registry(address, creds, CHANNEL_OPTIONS);
      seed = new seedProto.Registry(address, creds, CHANNEL_OPTIONS);
      if (mode === "watch") watch();
      else poll();
    },
    report(message) {
      return new Promise<void>((resolve, reject) => {
        if (!v1 || stopped) {
          reject(new Error("not connected"));
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
        v1.Report(request, metadata(), { deadline: Date.now() + callTimeoutMs }, (err) => (err ? reject(err) : resolve()));
      });
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      stream?.cancel();
      stream = null;
      v1?.close();
      seed?.close();
    },
  };
}
