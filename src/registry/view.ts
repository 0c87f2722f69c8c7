/**
 * Pure functions from the registry's WireGuard state to what it serves:
 * the seed's GetEndpointReply, wormhole.v1 PeerInfo, and the difference
 * between two states (what Watch pushes).
 */
import type { GetEndpointReply, PeerInfo } from "../rpc/proto.js";
import { pathKindToWire } from "../util/path.js";
import type { NodeReport } from "./report.js";
import { endpointsEqual } from "../wg/endpoint.js";
import type { Endpoint, WgDevice, WgPeer } from "../wg/types.js";

/** What the registry knows about one peer of its interface. */
export interface RegistryPeer {
  readonly publicKey: string;
  readonly endpoint: Endpoint | null;
  readonly lastHandshakeMs: number;
  readonly allowedIps: readonly string[];
  readonly rxBytes: number;
  readonly txBytes: number;
  /** Increases each time this registry process saw the endpoint change. */
  readonly endpointRevision: number;
}

export type PeerMap = ReadonlyMap<string, RegistryPeer>;

/** How wgctrl (which the seed used) names device types. */
const SEED_DEVICE_TYPE = { kernel: "Linux kernel", userspace: "userspace" } as const;

/**
 * The seed's GetEndpoint reply. Endpoints as the seed's registry wrote them:
 * the address alone in endpointIP (Go's `IP.String()`: IPv6 without brackets,
 * in RFC 5952 form, as WireGuard's and so ours are) and the port apart in
 * endpointPort; `[addr]:port` is only how the two are written together.
 *
 * Zero values (no endpoint, no handshake yet, no bytes,
 * no allowed IPs) are left out, as the seed's Go protobuf left them out of the
 * wire: a reader gets the same defaults, in fewer bytes.
 */
export function seedReply(device: WgDevice): GetEndpointReply {
  return {
    ...nonZero({ deviceName: device.name, deviceType: SEED_DEVICE_TYPE[device.type], pubKey: device.publicKey }),
    Peers: device.peers.map((p) =>
      nonZero({
        pubKey: p.publicKey,
        lastHandshakeUnixTimestamp: p.lastHandshakeMs > 0 ? Math.floor(p.lastHandshakeMs / 1000) : 0,
        TransmitBytes: p.txBytes,
        ReceiveBytes: p.rxBytes,
        AllowedIPs: [...p.allowedIps],
        endpointIP: p.endpoint?.ip ?? "",
        endpointPort: p.endpoint?.port ?? 0,
      }),
    ),
  };
}

/** `fields` without those at their proto3 default (0, "", []). */
function nonZero<T extends Record<string, string | number | readonly string[]>>(fields: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(fields) as Array<[keyof T, T[keyof T]]>) {
    if (v === 0 || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out;
}

/**
 * One peer as the API shows it. `paths`: "all" the paths the node reported
 * (GetPeers, for status pages), or "none" (Watch): every node's paths to
 * every other would make a snapshot grow with the square of the mesh (1,000
 * nodes: ~74 MiB), and no node acts on another's paths.
 */
export function peerInfo(p: RegistryPeer, report?: NodeReport, paths: "all" | "none" = "all"): PeerInfo {
  return {
    publicKey: p.publicKey,
    endpoint: p.endpoint ? { ip: p.endpoint.ip, port: p.endpoint.port } : null,
    lastHandshakeUnixMs: p.lastHandshakeMs,
    allowedIps: [...p.allowedIps],
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
    endpointRevision: p.endpointRevision,
    candidates: (report?.candidates ?? []).map((c) => ({ ip: c.ip, port: c.port })),
    paths: (paths === "all" ? (report?.paths ?? []) : []).map((ps) => ({
      peerPublicKey: ps.peerPublicKey,
      kind: pathKindToWire(ps.kind),
      sinceUnixMs: ps.sinceMs,
      endpoint: ps.endpoint ? { ip: ps.endpoint.ip, port: ps.endpoint.port } : null,
    })),
  };
}

function sameAllowedIps(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((ip, i) => ip === b[i]);
}

/**
 * Folds a fresh read of the interface into the previous map. Endpoint
 * revisions carry over and step when the endpoint changes.
 */
export function nextPeerMap(prev: PeerMap, peers: readonly WgPeer[]): Map<string, RegistryPeer> {
  const next = new Map<string, RegistryPeer>();
  for (const p of peers) {
    const old = prev.get(p.publicKey);
    const moved = !old || !endpointsEqual(old.endpoint, p.endpoint);
    next.set(p.publicKey, {
      publicKey: p.publicKey,
      endpoint: p.endpoint,
      lastHandshakeMs: p.lastHandshakeMs,
      allowedIps: p.allowedIps,
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
      endpointRevision: old ? (moved ? old.endpointRevision + 1 : old.endpointRevision) : 1,
    });
  }
  return next;
}

export interface PeerChanges {
  /** Peers that are new or whose endpoint or allowed IPs changed. */
  readonly changed: readonly RegistryPeer[];
  readonly removed: readonly string[];
}

/**
 * What a watcher must hear about. Handshake times and byte counters change
 * all the time and are left out: they are in every snapshot, and pushing them
 * to every watcher would cost O(peers × watchers) per poll.
 */
export function diffPeers(prev: PeerMap, next: PeerMap): PeerChanges {
  const changed: RegistryPeer[] = [];
  const removed: string[] = [];
  for (const [key, p] of next) {
    const old = prev.get(key);
    if (!old || !endpointsEqual(old.endpoint, p.endpoint) || !sameAllowedIps(old.allowedIps, p.allowedIps)) {
      changed.push(p);
    }
  }
  for (const key of prev.keys()) if (!next.has(key)) removed.push(key);
  return { changed, removed };
}
