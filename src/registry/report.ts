/**
 * What a node may report about itself, checked field by field. Pure.
 *
 * A report is accepted only from a caller identified by the tunnel, and only
 * about the caller's own key: an unidentified token holder can report
 * nothing, and no node can speak for another.
 */
import * as grpc from "@grpc/grpc-js";
import ipaddr from "ipaddr.js";
import type { ReportRequest__Output } from "../gen/wormhole/v1/ReportRequest.js";
import { pathKindFromWire, type PathState } from "../util/path.js";
import { checkEndpoint } from "../wg/endpoint.js";
import { isKey } from "../wg/keys.js";
import type { Endpoint } from "../wg/types.js";
import type { IdentityIndex } from "./identity.js";

export const MAX_CANDIDATES = 16;
/** Paths one Report may carry: with MAX_CANDIDATES, a Report fits in MAX_REQUEST_BYTES (src/registry/server.ts). */
export const MAX_PATHS = 512;

export interface NodeReport {
  readonly candidates: readonly Endpoint[];
  readonly paths: readonly PathState[];
  readonly atMs: number;
}

export type ReportVerdict =
  | { readonly ok: true; readonly publicKey: string; readonly report: NodeReport }
  | { readonly ok: false; readonly code: grpc.status; readonly details: string };

function short(key: string): string {
  return `${key.slice(0, 8)}…`;
}

/** Address ranges that are never a way to reach a node from its LAN. */
const NEVER = ["unspecified", "loopback", "multicast", "linkLocal", "broadcast"];

/**
 * The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address,
 * which is where packets to it end up; null for any other address.
 */
function embeddedIpv4(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | null {
  if (addr.kind() !== "ipv6") return null;
  const v6 = addr as ipaddr.IPv6;
  const range = v6.range();
  const [hi, lo] = range === "rfc6052" ? [v6.parts[6], v6.parts[7]] : range === "6to4" ? [v6.parts[1], v6.parts[2]] : [undefined, undefined];
  if (hi === undefined || lo === undefined) return null;
  return new ipaddr.IPv4([hi >> 8, hi & 255, lo >> 8, lo & 255]);
}

/**
 * IPv6 ranges private to a site (ULA fc00::/7, the old site-local fec0::/10):
 * a node's LAN may well have them, and nodes of older versions reported them,
 * but they are never handed out as a way to reach a node. Such a candidate is
 * left out of the report, which is otherwise taken (refusing the whole report
 * would also lose the node's good candidates and its paths).
 */
const PRIVATE6 = ["uniqueLocal", "deprecatedSiteLocal"];

/** Why `ep` is left out of the candidates though the report is taken, or null when it is not. */
export function candidateLeftOut(ep: Endpoint): string | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ep.ip);
  } catch {
    return null;
  }
  const range = addr.range();
  return PRIVATE6.includes(range) ? `candidate \`${ep.ip}' is a ${range === "uniqueLocal" ? "unique local (ULA)" : "site-local"} IPv6 address` : null;
}

/** Why `ep` cannot be a candidate (the report is refused), or null when it can. */
export function candidateProblem(ep: Endpoint, index: IdentityIndex): string | null {
  if (ep.ip.includes("%")) return `candidate \`${ep.ip}' has an IPv6 zone, which names an interface of one machine`;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ep.ip);
  } catch {
    return `candidate address is not an IP: \`${ep.ip}'`;
  }
  const range = addr.range();
  if (NEVER.includes(range)) return `candidate \`${ep.ip}' is a ${range} address`;
  const inner = embeddedIpv4(addr);
  if (inner && NEVER.includes(inner.range())) return `candidate \`${ep.ip}' is ${range === "rfc6052" ? "NAT64" : "6to4"} for ${inner.toString()}, a ${inner.range()} address`;
  if (index.inTunnel(addr.toString())) return `candidate \`${ep.ip}' is inside the tunnel's own addresses`;
  return null;
}

/**
 * Checks a report. `isPeer` says whether a key is a peer of the registry: a
 * path to any other key means nothing to the registry's nodes (nor to its
 * status page and metrics), and is left out.
 */
export function checkReport(
  request: ReportRequest__Output,
  caller: string | null,
  index: IdentityIndex,
  nowMs: number,
  isPeer: (publicKey: string) => boolean = () => true,
): ReportVerdict {
  const refuse = (code: grpc.status, details: string): ReportVerdict => ({ ok: false, code, details });
  if (caller === null) {
    return refuse(
      grpc.status.PERMISSION_DENIED,
      "reports are accepted only from nodes identified by the tunnel: reach the registry at its tunnel address",
    );
  }
  const claimed = request.publicKey || caller;
  if (claimed !== caller) {
    return refuse(grpc.status.PERMISSION_DENIED, `this connection comes from ${short(caller)}; it cannot report for ${short(claimed)}`);
  }
  if (request.candidates.length > MAX_CANDIDATES) {
    return refuse(grpc.status.INVALID_ARGUMENT, `${request.candidates.length} candidates; at most ${MAX_CANDIDATES}`);
  }
  if (request.paths.length > MAX_PATHS) return refuse(grpc.status.INVALID_ARGUMENT, `${request.paths.length} paths; at most ${MAX_PATHS}`);
  const candidates: Endpoint[] = [];
  for (const c of request.candidates) {
    let ep: Endpoint;
    try {
      ep = checkEndpoint({ ip: c.ip, port: c.port });
    } catch (err) {
      return refuse(grpc.status.INVALID_ARGUMENT, (err as Error).message);
    }
    const problem = candidateProblem(ep, index);
    if (problem) return refuse(grpc.status.INVALID_ARGUMENT, problem);
    if (candidateLeftOut(ep)) continue;
    candidates.push(ep);
  }
  const paths: PathState[] = [];
  for (const p of request.paths) {
    if (!isKey(p.peerPublicKey)) return refuse(grpc.status.INVALID_ARGUMENT, `path peer key is not a WireGuard key: \`${p.peerPublicKey.slice(0, 60)}'`);
    const kind = pathKindFromWire(String(p.kind));
    if (!kind) return refuse(grpc.status.INVALID_ARGUMENT, `path kind \`${String(p.kind)}' is not one of direct, lan, relayed, down`);
    let endpoint: Endpoint | null = null;
    if (p.endpoint) {
      try {
        endpoint = checkEndpoint({ ip: p.endpoint.ip, port: p.endpoint.port });
      } catch (err) {
        return refuse(grpc.status.INVALID_ARGUMENT, `path endpoint: ${(err as Error).message}`);
      }
    }
    if (!isPeer(p.peerPublicKey)) continue;
    const sinceMs = Number.isSafeInteger(p.sinceUnixMs) && p.sinceUnixMs > 0 ? Math.min(p.sinceUnixMs, nowMs) : nowMs;
    paths.push({ peerPublicKey: p.peerPublicKey, kind, sinceMs, endpoint });
  }
  return { ok: true, publicKey: caller, report: { candidates, paths, atMs: nowMs } };
}
