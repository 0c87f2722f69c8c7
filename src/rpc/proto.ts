/**
 * The two gRPC services, loaded from the JSON descriptor that
 * scripts/gen-proto.mjs made from proto/ (so the bundle carries no .proto files).
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import descriptor from "../gen/descriptor.json" with { type: "json" };
import type { ProtoGrpcType as SeedGrpc } from "../gen/wgSvc.js";
import type { ProtoGrpcType as V1Grpc } from "../gen/registry.js";

/** Must match LOADER_FLAGS in scripts/gen-proto.mjs, which shaped the generated types. */
const LOADER_OPTIONS = { longs: Number, enums: String, defaults: true, oneofs: true } as const;

const packageDefinition = fromJSON(descriptor as unknown as Parameters<typeof fromJSON>[0], LOADER_OPTIONS);
const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as SeedGrpc & V1Grpc;

/** The seed's service, `wgSvc.proto.Registry`, wire-compatible with wg-wormhole. */
export const seedProto = loaded.wgSvc.proto;
/** wormhole's own versioned service, `wormhole.v1.Registry`. */
export const v1Proto = loaded.wormhole.v1;

export type { GetEndpointReply } from "../gen/wgSvc/proto/GetEndpointReply.js";
export type { Peer as SeedPeer } from "../gen/wgSvc/proto/Peer.js";
export type { RegistryHandlers as SeedHandlers, RegistryClient as SeedClient } from "../gen/wgSvc/proto/Registry.js";
export type { RegistryHandlers as V1Handlers, RegistryClient as V1Client } from "../gen/wormhole/v1/Registry.js";
export type { PeerInfo, PeerInfo__Output } from "../gen/wormhole/v1/PeerInfo.js";
export type { WatchEvent, WatchEvent__Output } from "../gen/wormhole/v1/WatchEvent.js";
export type { GetPeersResponse, GetPeersResponse__Output } from "../gen/wormhole/v1/GetPeersResponse.js";
export type { Endpoint as EndpointMsg, Endpoint__Output as EndpointMsg__Output } from "../gen/wormhole/v1/Endpoint.js";
