/**
 * The registry's gRPC handlers: the seed's wgSvc.proto.Registry (token in the
 * request) and wormhole.v1.Registry (token in metadata), both answering from
 * one PeerTable; token checks, with failed attempts limited per source.
 */
import * as grpc from "@grpc/grpc-js";
import { tokenFromMetadata, tokenMatches } from "../rpc/auth.js";
import type { GetEndpointReply, GetPeersResponse, SeedHandlers, V1Handlers } from "../rpc/proto.js";
import type { Logger } from "../util/log.js";
import { isKey } from "../wg/keys.js";
import type { WgDevice } from "../wg/types.js";
import { callerIp } from "./identity.js";
import { FailureLimiter, sourceKey } from "./ratelimit.js";
import { Encoded, getEndpointMethod, getPeersMethod, snapshotEvent } from "./replies.js";
import { checkReport } from "./report.js";
import type { PeerTable } from "./table.js";
import { seedReply } from "./view.js";
import { type WatchLimits, WatchHub } from "./watch-hub.js";

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

  /**
   * A unary call that answers from the interface: the token checked, then the
   * interface read fresh (UNAVAILABLE while it cannot be), then `answer`.
   */
  const fromDevice = <R>(call: grpc.ServerUnaryCall<unknown, R>, given: string, api: string, callback: grpc.sendUnaryData<R>, answer: (device: WgDevice) => R): void => {
    const refused = refuseToken(call, given, api);
    if (refused) {
      callback(refused);
      return;
    }
    void table.fresh().then(() => {
      const device = table.current;
      if (!device || table.lastError) callback(unavailable(table));
      else callback(null, answer(device));
    });
  };

  let seedCache: { device: WgDevice; reply: Encoded } | null = null;
  let getPeersCache: { device: WgDevice; reports: number; reply: Encoded } | null = null;
  const seed: SeedHandlers = {
    GetEndpoint(call, callback) {
      fromDevice(call, call.request.token, "wgSvc", callback, (device) => {
        // Encoded once per read of the interface, however many seed nodes ask (seedService passes it through).
        if (seedCache?.device !== device) seedCache = { device, reply: new Encoded(getEndpointMethod.responseSerialize(seedReply(device))) };
        return seedCache.reply as unknown as GetEndpointReply;
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
      fromDevice(call, tokenFromMetadata(call.metadata), "v1", callback, (device) => {
        // Encoded once per read of the interface and report (10,000 peers: ~100 ms), however many ask.
        if (getPeersCache?.device !== device || getPeersCache.reports !== table.reportsVersion) {
          getPeersCache = { device, reports: table.reportsVersion, reply: new Encoded(getPeersMethod.responseSerialize(snapshotEvent(table, relay, "all").snapshot ?? {})) };
        }
        return getPeersCache.reply as unknown as GetPeersResponse;
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
