/**
 * Where the node learns the registry's view. It subscribes to
 * wormhole.v1 Watch (pushed changes) and, when the registry does not have that
 * service (a seed registry answers UNIMPLEMENTED), polls the seed's
 * GetEndpoint every refresh interval instead. Every failure is logged and
 * retried with backoff; nothing here ever throws to the caller.
 */
import * as grpc from "@grpc/grpc-js";
import { seedProto, v1Proto, type SeedClient, type V1Client, type WatchEvent__Output, type GetEndpointReply } from "../rpc/proto.js";
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
  /** How it arrived; for logs. */
  readonly via: "watch" | "poll";
}

export interface RegistrySource {
  start(onView: (view: RegistryView) => void): void;
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

/** Folds one Watch event into the map; returns false for an event it cannot read. */
export function applyWatchEvent(endpoints: Map<string, Endpoint | null>, event: WatchEvent__Output, logger: Logger): boolean {
  const take = (key: string, ep: { ip: string; port: number } | null) => {
    if (!isKey(key)) {
      logger.warn({ key }, "registry sent a peer whose public key is not a WireGuard key; ignoring it");
      return;
    }
    const endpoint = ep ? endpointOf(ep.ip, ep.port) : null;
    if (ep && !endpoint) logger.warn({ peer: key, ip: ep.ip, port: ep.port }, "registry sent an invalid endpoint; ignoring it");
    endpoints.set(key, endpoint);
  };
  switch (event.event) {
    case "snapshot":
      endpoints.clear();
      for (const p of event.snapshot?.peers ?? []) take(p.publicKey, p.endpoint);
      return true;
    case "changed":
      if (!event.changed) return false;
      take(event.changed.publicKey, event.changed.endpoint);
      return true;
    case "removedPublicKey":
      endpoints.delete(event.removedPublicKey ?? "");
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

  const poll = () => {
    if (stopped || !seed) return;
    seed.GetEndpoint({ token }, { deadline: Date.now() + callTimeoutMs }, (err, reply) => {
      if (stopped) return;
      if (err || !reply) {
        markFailed(err ?? new Error("empty reply"), poll);
        return;
      }
      markHealthy();
      onView({ endpoints: viewFromSeedReply(reply, logger), registryPublicKey: isKey(reply.pubKey) ? reply.pubKey : "", via: "poll" });
      later(refreshMs, poll);
    });
  };

  const watch = () => {
    if (stopped || !v1) return;
    const endpoints = new Map<string, Endpoint | null>();
    let gotSnapshot = false;
    let registryPublicKey = "";
    const call = v1.Watch({ publicKey: "" }, metadata());
    stream = call;
    call.on("data", (event: WatchEvent__Output) => {
      if (!applyWatchEvent(endpoints, event, logger)) {
        logger.warn({ event: event.event }, "registry sent a Watch event this node cannot read; ignoring it");
        return;
      }
      if (event.event === "snapshot") {
        gotSnapshot = true;
        const key = event.snapshot?.registryPublicKey ?? "";
        registryPublicKey = isKey(key) ? key : "";
      }
      if (!gotSnapshot) return;
      markHealthy();
      onView({ endpoints: new Map(endpoints), registryPublicKey, via: "watch" });
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
