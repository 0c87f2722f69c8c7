/**
 * The registry's gRPC surface: the seed's wgSvc.proto.Registry (token in the
 * request) and wormhole.v1.Registry (token in metadata), both served from one
 * PeerTable on one port.
 */
import * as grpc from "@grpc/grpc-js";
import { tokenFromMetadata, tokenMatches } from "../rpc/auth.js";
import { seedProto, v1Proto, type SeedHandlers, type V1Handlers, type WatchEvent } from "../rpc/proto.js";
import type { Logger } from "../util/log.js";
import type { PeerTable } from "./table.js";
import { peerInfo, seedReply } from "./view.js";

export interface RegistryServiceOptions {
  readonly table: PeerTable;
  /** Shared token; null accepts every caller. */
  readonly token: string | null;
  readonly logger: Logger;
}

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

function snapshotEvent(table: PeerTable): WatchEvent {
  const device = table.current;
  return {
    snapshot: {
      registryPublicKey: device?.publicKey ?? "",
      peers: [...table.peers.values()].map(peerInfo),
    },
  };
}

export function createHandlers(options: RegistryServiceOptions): { seed: SeedHandlers; v1: V1Handlers } {
  const { table, token, logger } = options;

  const seed: SeedHandlers = {
    GetEndpoint(call, callback) {
      if (!tokenMatches(token, call.request.token)) {
        logger.warn({ from: peerAddress(call), api: "wgSvc" }, "refused a call with a wrong token");
        callback(denied);
        return;
      }
      const device = table.current;
      if (!device || table.lastError) {
        callback(unavailable(table));
        return;
      }
      callback(null, seedReply(device));
    },
    RegisterEndpoint(_call, callback) {
      // The seed declared this method and never implemented it; an empty
      // reply reveals nothing, so it needs no token (its request has none).
      callback(null, {});
    },
  };

  const v1: V1Handlers = {
    GetPeers(call, callback) {
      if (!tokenMatches(token, tokenFromMetadata(call.metadata))) {
        logger.warn({ from: peerAddress(call), api: "v1" }, "refused a call with a wrong token");
        callback(denied);
        return;
      }
      if (!table.current || table.lastError) {
        callback(unavailable(table));
        return;
      }
      callback(null, snapshotEvent(table).snapshot);
    },

    Watch(call) {
      if (!tokenMatches(token, tokenFromMetadata(call.metadata))) {
        logger.warn({ from: peerAddress(call), api: "v1" }, "refused a Watch with a wrong token");
        call.emit("error", { ...denied, metadata: new grpc.Metadata() });
        return;
      }
      if (!table.current) {
        call.emit("error", { ...unavailable(table), metadata: new grpc.Metadata() });
        return;
      }
      const from = peerAddress(call);
      logger.debug({ from }, "watcher joined");
      call.write(snapshotEvent(table));
      const unsubscribe = table.subscribe((changes) => {
        for (const p of changes.changed) call.write({ changed: peerInfo(p) } satisfies WatchEvent);
        for (const key of changes.removed) call.write({ removedPublicKey: key } satisfies WatchEvent);
      });
      const leave = () => {
        unsubscribe();
        logger.debug({ from }, "watcher left");
      };
      call.on("cancelled", leave);
      call.on("close", leave);
      call.on("error", leave);
    },

    Report(_call, callback) {
      // Reports are accepted only from callers identified by the tunnel
      // (issue: identity); until then no caller can report.
      callback({ code: grpc.status.UNIMPLEMENTED, details: "Report needs tunnel identity, which this registry does not have yet" });
    },
  };
  return { seed, v1 };
}

/** Server options: let nodes keep idle Watch streams alive with HTTP/2 pings. */
export const SERVER_CHANNEL_OPTIONS: grpc.ServerOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": 5_000,
  "grpc.max_receive_message_length": 64 * 1024,
};

export function createRegistryServer(options: RegistryServiceOptions): grpc.Server {
  const server = new grpc.Server(SERVER_CHANNEL_OPTIONS);
  const { seed, v1 } = createHandlers(options);
  server.addService(seedProto.Registry.service, seed);
  server.addService(v1Proto.Registry.service, v1);
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

export function bindServer(server: grpc.Server, address: string): Promise<number> {
  const candidates = bindCandidates(address);
  const tryBind = (i: number, lastError: Error | null): Promise<number> => {
    const target = candidates[i];
    if (target === undefined) {
      return Promise.reject(new Error(`cannot listen on \`${address}': ${lastError?.message ?? "no address"}`));
    }
    return new Promise<number>((resolve, reject) => {
      server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) reject(err);
        else resolve(port);
      });
    }).catch((err: Error) => tryBind(i + 1, err));
  };
  return tryBind(0, null);
}
