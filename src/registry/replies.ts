/**
 * The registry's replies as written: the Watch snapshot, and replies
 * serialized once and written as-is to any number of calls.
 */
import type * as grpc from "@grpc/grpc-js";
import { seedProto, v1Proto, type WatchEvent } from "../rpc/proto.js";
import type { PeerTable } from "./table.js";
import { peerInfo, type RegistryPeer } from "./view.js";

/**
 * GetPeers carries all the nodes' reported paths; Watch none
 * (see peerInfo). With `keys`, only those peers (in the order asked).
 */
export function snapshotEvent(table: PeerTable, relay: boolean, paths: "all" | "none", keys: ReadonlySet<string> | null = null): WatchEvent {
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

export const getEndpointMethod = seedProto.Registry.service.GetEndpoint;
const watchMethod = v1Proto.Registry.service.Watch;
export const getPeersMethod = v1Proto.Registry.service.GetPeers;

/** wgSvc.proto.Registry as served: its GetEndpoint writes plain or pre-serialized replies. */
export const seedService = passingEncoded(seedProto.Registry.service, "GetEndpoint");

/** wormhole.v1.Registry as served: its Watch and GetPeers write plain or pre-serialized messages. */
export const v1Service = passingEncoded(passingEncoded(v1Proto.Registry.service, "Watch"), "GetPeers");

export function encodeWatchEvent(event: WatchEvent): Encoded {
  return new Encoded(watchMethod.responseSerialize(event));
}
