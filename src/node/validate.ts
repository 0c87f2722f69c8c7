/**
 * What a node accepts from its registry. A registry is trusted to say where
 * peers are, not to make the node point WireGuard at itself, at nowhere or at
 * everyone, nor to exhaust its memory. Pure, except that {@link registryClients}
 * builds the gRPC clients that apply {@link messageProblem} before decoding.
 *
 * Endpoints and candidates: a valid address and port (1-65535), no IPv6 zone
 * (it names an interface of the registry's machine), and never unspecified
 * (0.0.0.0/8, ::), loopback, multicast, link-local or broadcast.
 *
 * Messages: the client decodes only the fields the node uses (a peer's key,
 * endpoint, candidates, allowed IPs (for --auto-peers; the source keeps at
 * most 16 a peer), and the key and kind of its paths; not its counters),
 * after a pass over the bytes that refuses, before
 * anything is allocated, a message that would decode to more than
 * {@link MAX_DECODED_VALUES} values, more than {@link MAX_VIEW_PEERS} peers,
 * more than {@link MAX_PEER_CANDIDATES} candidates or {@link MAX_PEER_PATHS}
 * paths for one peer, or that is not well-formed protobuf for its type.
 * Without it, 4 MiB of empty peer entries decode to ~900 MB of objects.
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import ipaddr from "ipaddr.js";
import descriptor from "../gen/descriptor.json" with { type: "json" };
import type { SeedClient, V1Client } from "../rpc/proto.js";
import { checkEndpoint } from "../wg/endpoint.js";
import type { Endpoint, WgDevice } from "../wg/types.js";

/** Peers in one snapshot or seed reply, at most (10× the largest deployment the README plans for). */
export const MAX_VIEW_PEERS = 100_000;
/** Candidates of one peer, at most: what the registry itself accepts from a node (MAX_CANDIDATES in src/registry/report.ts). */
export const MAX_PEER_CANDIDATES = 16;
/** Paths of one peer, at most: what the registry itself accepts from a node (MAX_PATHS in src/registry/report.ts), and what a node reports. */
export const MAX_PEER_PATHS = 512;
/** Decoded values (messages, strings, numbers) in one message, at most: about 80 MB of objects. */
export const MAX_DECODED_VALUES = 1_000_000;

/** Address ranges (as ipaddr.js names them) that are never where a peer is. */
const NEVER = new Set(["unspecified", "loopback", "multicast", "linkLocal", "broadcast"]);

/** Why `ep` (already canonical, see checkEndpoint) cannot be where a peer is, or null when it can. */
export function endpointProblem(ep: Endpoint): string | null {
  if (ep.ip.includes("%")) return `\`${ep.ip}' has an IPv6 zone, which names an interface of the registry's machine`;
  let range: string;
  try {
    range = ipaddr.parse(ep.ip).range();
  } catch {
    return `\`${ep.ip}' is not an IP address`;
  }
  if (NEVER.has(range)) return `\`${ep.ip}' is a ${range} address`;
  return null;
}

/**
 * The registry's endpoint for a peer as the node may use it: `{ endpoint: null }` when the
 * registry gave none (no address and no port), `{ problem }` when what it gave is unusable.
 */
export function registryEndpoint(ip: unknown, port: unknown): { readonly endpoint: Endpoint | null } | { readonly problem: string } {
  if ((ip === "" || ip === undefined || ip === null) && (port === 0 || port === undefined || port === null)) return { endpoint: null };
  let ep: Endpoint;
  try {
    ep = checkEndpoint({ ip: ip as string, port: port as number });
  } catch (err) {
    return { problem: (err as Error).message };
  }
  const problem = endpointProblem(ep);
  return problem === null ? { endpoint: ep } : { problem };
}

/**
 * Whether `ep` lies inside the allowed IPs of one of `device`'s peers: WireGuard would send
 * the encrypted packets for a peer into its own tunnel. A default route (0.0.0.0/0, ::/0)
 * does not count: a full-tunnel setup routes WireGuard's own packets around it (wg-quick's
 * fwmark). For the agent, which knows the device; the source does not.
 */
export function insideTunnel(ep: Endpoint, device: WgDevice): boolean {
  return tunnelCheck(device)(ep);
}

/** insideTunnel for many endpoints: the device's prefixes are parsed once. */
export function tunnelCheck(device: WgDevice): (ep: Endpoint) => boolean {
  const nets: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = [];
  for (const peer of device.peers) {
    for (const cidr of peer.allowedIps) {
      try {
        const net = ipaddr.parseCIDR(cidr);
        if (net[1] > 0) nets.push(net);
      } catch {
        /* not a prefix: nothing to exclude */
      }
    }
  }
  return (ep) => {
    let addr: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      addr = ipaddr.process(ep.ip);
    } catch {
      return false;
    }
    return nets.some((net) => net[0].kind() === addr.kind() && addr.match(net));
  };
}

// ---------------------------------------------------------------- messages

/** What the node reads of each message; every other field is skipped unread. */
const KEEP: Record<string, readonly string[]> = {
  "wormhole.v1.PeerInfo": ["publicKey", "endpoint", "candidates", "paths", "allowedIps"],
  "wormhole.v1.PathState": ["peerPublicKey", "kind"],
  "wgSvc.proto.Peer": ["pubKey", "endpointIP", "endpointPort", "AllowedIPs"],
};

/** Per repeated field (`package.Type.field`), the most one message may hold. */
const MAX_REPEATED: Record<string, number> = {
  "wormhole.v1.GetPeersResponse.peers": MAX_VIEW_PEERS,
  "wormhole.v1.PeerInfo.candidates": MAX_PEER_CANDIDATES,
  "wormhole.v1.PeerInfo.paths": MAX_PEER_PATHS,
  "wgSvc.proto.GetEndpointReply.Peers": MAX_VIEW_PEERS,
};

interface JsonField {
  type: string;
  id: number;
  rule?: string;
}
interface JsonNamespace {
  nested?: Record<string, JsonNamespace>;
  fields?: Record<string, JsonField>;
  [other: string]: unknown;
}

/** The generated descriptor with only the fields in {@link KEEP} left in those messages. */
function reducedDescriptor(): JsonNamespace {
  const copy = JSON.parse(JSON.stringify(descriptor)) as JsonNamespace;
  for (const [full, keep] of Object.entries(KEEP)) {
    const type = lookup(copy, full);
    if (!type?.fields) throw new Error(`descriptor has no message ${full}`);
    for (const name of Object.keys(type.fields)) if (!keep.includes(name)) delete type.fields[name];
  }
  return copy;
}

function lookup(root: JsonNamespace, full: string): JsonNamespace | undefined {
  let at: JsonNamespace | undefined = root;
  for (const part of full.split(".")) at = at?.nested?.[part];
  return at;
}

/** Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
const WIRE_OF: Record<string, number> = {
  string: 2, bytes: 2,
  int32: 0, int64: 0, uint32: 0, uint64: 0, sint32: 0, sint64: 0, bool: 0,
  fixed64: 1, sfixed64: 1, double: 1,
  fixed32: 5, sfixed32: 5, float: 5,
};

interface FieldShape {
  readonly name: string;
  readonly wire: number;
  /** Full name of the message type, or null for a scalar. */
  readonly message: string | null;
  readonly max: number | null;
}
type Shapes = ReadonlyMap<string, ReadonlyMap<number, FieldShape>>;

/** Field shapes of every message in `root`, keyed by full name; enums are varints. */
function shapesOf(root: JsonNamespace): Shapes {
  const shapes = new Map<string, Map<number, FieldShape>>();
  const visit = (ns: JsonNamespace, prefix: string) => {
    for (const [name, child] of Object.entries(ns.nested ?? {})) {
      const full = prefix ? `${prefix}.${name}` : name;
      if (child.fields) {
        const fields = new Map<number, FieldShape>();
        for (const [fname, f] of Object.entries(child.fields)) {
          const sibling = `${prefix}.${f.type}`;
          const target = lookup(root, sibling);
          const message = target?.fields ? sibling : null;
          const wire = message !== null ? 2 : (WIRE_OF[f.type] ?? 0); // not a scalar, not a message: an enum
          fields.set(f.id, { name: fname, wire, message, max: MAX_REPEATED[`${full}.${fname}`] ?? null });
        }
        shapes.set(full, fields);
      }
      visit(child, full);
    }
  };
  visit(root, "");
  return shapes;
}

const REDUCED = reducedDescriptor();
const SHAPES = shapesOf(REDUCED);

/**
 * Why the bytes of a `type` message (full name, e.g. "wormhole.v1.WatchEvent") must not be
 * decoded, or null when they may. Checks, without allocating per value: well-formed
 * protobuf; every field the node reads has its declared wire type; the limits above.
 * Fields the node does not read are skipped, however many.
 */
export function messageProblem(type: string, bytes: Uint8Array, maxValues = MAX_DECODED_VALUES): string | null {
  let values = 0;
  let pos = 0;
  const varint = (end: number): number => {
    let n = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= end) throw new Error("message ends inside a number");
      const b = bytes[pos++] as number;
      if (shift < 53) n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    throw new Error("a number longer than 10 bytes");
  };
  const walk = (typeName: string, end: number, depth: number): void => {
    const fields = SHAPES.get(typeName);
    if (!fields) throw new Error(`no message type ${typeName}`);
    if (depth > 16) throw new Error("messages nested too deep");
    let counts: Map<number, number> | null = null; // only for messages with a capped field
    while (pos < end) {
      const tag = varint(end);
      const id = Math.floor(tag / 8);
      const wire = tag % 8;
      if (id === 0) throw new Error("field number 0");
      const shape = fields.get(id);
      if (shape !== undefined && wire !== shape.wire) {
        throw new Error(`${typeName}.${shape.name} has wire type ${wire}; expected ${shape.wire}`);
      }
      if (shape !== undefined) {
        if (++values > maxValues) throw new Error(`more than ${maxValues} values`);
        if (shape.max !== null) {
          counts ??= new Map();
          const n = (counts.get(id) ?? 0) + 1;
          if (n > shape.max) throw new Error(`more than ${shape.max} ${shape.name} in one ${typeName}`);
          counts.set(id, n);
        }
      }
      switch (wire) {
        case 0:
          varint(end);
          break;
        case 1:
        case 5: {
          const size = wire === 1 ? 8 : 4;
          if (pos + size > end) throw new Error("message ends inside a fixed-size number");
          pos += size;
          break;
        }
        case 2: {
          const len = varint(end);
          if (len > end - pos) throw new Error(`a field of ${len} bytes runs past the end of its message`);
          const stop = pos + len;
          if (shape?.message) walk(shape.message, stop, depth + 1);
          pos = stop;
          break;
        }
        default:
          throw new Error(`wire type ${wire} (groups and unknown types are not used here)`);
      }
    }
  };
  try {
    walk(type, bytes.length, 0);
    return null;
  } catch (err) {
    return `registry sent a ${type.split(".").pop()} the node will not read: ${(err as Error).message}`;
  }
}

/** Same as proto.ts's LOADER_OPTIONS (and the generated types). */
const LOADER_OPTIONS = { longs: Number, enums: String, defaults: true, oneofs: true } as const;

const reduced = grpc.loadPackageDefinition(fromJSON(REDUCED as Parameters<typeof fromJSON>[0], LOADER_OPTIONS)) as unknown as {
  wormhole: { v1: { Registry: grpc.ServiceClientConstructor } };
  wgSvc: { proto: { Registry: grpc.ServiceClientConstructor } };
};

/** `service` with the replies of `methods` checked by {@link messageProblem} before decoding. */
function guarded(service: grpc.ServiceDefinition, methods: Record<string, string>): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...service };
  for (const [method, type] of Object.entries(methods)) {
    const def = service[method];
    if (!def) throw new Error(`service has no method ${method}`);
    out[method] = {
      ...def,
      responseDeserialize: (bytes: Buffer) => {
        const problem = messageProblem(type, bytes);
        if (problem !== null) throw new Error(problem);
        return def.responseDeserialize(bytes);
      },
    };
  }
  return out;
}

/** Both services as the node's clients see them: replies checked, then decoded as far as the node reads them. */
export const guardedServices = {
  v1: guarded(reduced.wormhole.v1.Registry.service, {
    Watch: "wormhole.v1.WatchEvent",
    GetPeers: "wormhole.v1.GetPeersResponse",
    Report: "wormhole.v1.ReportResponse",
  }),
  seed: guarded(reduced.wgSvc.proto.Registry.service, { GetEndpoint: "wgSvc.proto.GetEndpointReply", RegisterEndpoint: "wgSvc.proto.RegReply" }),
} as const;

const GuardedV1 = grpc.makeGenericClientConstructor(guardedServices.v1, "Registry");
const GuardedSeed = grpc.makeGenericClientConstructor(guardedServices.seed, "Registry");

/**
 * Clients of both services whose replies are checked before they are decoded, and decoded
 * only as far as the node reads them (a decoded PeerInfo has no counters, nor a path's
 * endpoint or round trip; a seed Peer no counters). A refused reply fails its call with
 * INTERNAL ("Response message parsing error: registry sent ..."), which the source retries.
 */
export function registryClients(address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions): { v1: V1Client; seed: SeedClient } {
  return { v1: v1Client(address, credentials, options), seed: new GuardedSeed(address, credentials, options) as unknown as SeedClient };
}

/** The wormhole.v1 client alone (where the seed's service is never asked: the registry's tunnel address). */
export function v1Client(address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions): V1Client {
  return new GuardedV1(address, credentials, options) as unknown as V1Client;
}
