/**
 * Where the node learns the registry's view. It subscribes to
 * wormhole.v1 Watch (pushed changes) and, when the registry does not have that
 * service (a seed registry answers UNIMPLEMENTED), polls the seed's
 * GetEndpoint every refresh interval instead. Every failure is logged and
 * retried with backoff; nothing here ever throws to the caller.
 *
 * This file is the gRPC edge: the channels and their options. The states and
 * timers are in source-machine.ts; reading what the registry sends, in
 * source-events.ts.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../util/log.js";
import { RegistrySourceMachine, type RegistryDialer, type RegistrySource, type SourceOptions } from "./source-machine.js";
import { registryClients, v1Client } from "./validate.js";

export { applyWatchEvent, MAX_PEER_ALLOWED_IPS, viewFromSeedReply, type WarnSink, type WatchState } from "./source-events.js";
export {
  addressPort,
  interestList,
  MAX_INTEREST_KEYS,
  type NodeReportMessage,
  ReportError,
  type RegistryHealth,
  type RegistrySource,
  type RegistryView,
  TUNNEL_RETRY_MS,
} from "./source-machine.js";

export interface GrpcSourceOptions extends SourceOptions {
  readonly logger: Logger;
  /** How the channel is secured; plaintext (the seed's way) by default. */
  readonly credentials?: grpc.ChannelCredentials;
  /** The credentials are TLS: a tunnel channel must verify the name first dialled. */
  readonly secure?: boolean;
}

/** Client channel options: HTTP/2 pings find a dead registry under an idle Watch. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 15_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.initial_reconnect_backoff_ms": 500,
  "grpc.max_reconnect_backoff_ms": 5_000,
};

/** grpc-js clients whose replies are checked before they are decoded, and decoded only as far as they are read. */
function grpcDialer(options: GrpcSourceOptions): RegistryDialer {
  const creds = options.credentials ?? grpc.credentials.createInsecure();
  return {
    registry: () => registryClients(options.address, creds, CHANNEL_OPTIONS),
    tunnel: (target, dialled) => {
      // TLS checks the certificate against the name the user gave, not the tunnel address.
      const tlsName: grpc.ChannelOptions = options.secure ? { "grpc.ssl_target_name_override": dialled, "grpc.default_authority": dialled } : {};
      // Only wormhole.v1 is asked there: no seed client (its channel would never be closed).
      return v1Client(target, creds, { ...CHANNEL_OPTIONS, ...tlsName });
    },
  };
}

export function createGrpcSource(options: GrpcSourceOptions): RegistrySource {
  return new RegistrySourceMachine(options, { dial: grpcDialer(options) });
}
