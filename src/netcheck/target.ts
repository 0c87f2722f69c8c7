/**
 * Where netcheck sends its STUN probes. A node that dials the registry at
 * its tunnel address (the recommended deployment) would probe through the
 * tunnel and learn nothing about its NAT; the probes must go where WireGuard
 * itself sends: the endpoint of the peer whose allowed IPs hold that address.
 * Pure: the caller reads the devices.
 */
import { prefixContains } from "../util/prefix.js";
import { tryCanonicalIp } from "../wg/endpoint.js";
import type { WgDevice } from "../wg/types.js";

export interface StunTarget {
  /** The address to probe. */
  readonly host: string;
  /** Why not the API's host: "the endpoint of peer kF3v0x2A… on wg0, whose allowed IPs hold 10.200.0.1"; null when it is the API's host. */
  readonly via: string | null;
}

/**
 * The STUN host for an API host: the endpoint IP of the WireGuard peer that
 * routes it (the most specific allowed IP; default routes /0 do not count:
 * a full tunnel routes WireGuard's own packets around itself), else the API
 * host itself.
 */
export function stunTargetFor(apiHost: string, devices: readonly WgDevice[]): StunTarget {
  const ip = tryCanonicalIp(apiHost);
  if (ip === null || ip.includes("%")) return { host: apiHost, via: null };
  let best: { len: number; host: string; via: string } | null = null;
  for (const d of devices) {
    for (const p of d.peers) {
      if (!p.endpoint) continue;
      for (const cidr of p.allowedIps) {
        const len = Number(cidr.slice(cidr.indexOf("/") + 1));
        if (len === 0 || !prefixContains(cidr, ip)) continue;
        if (best === null || len > best.len) best = { len, host: p.endpoint.ip, via: `the endpoint of peer ${p.publicKey.slice(0, 8)}… on ${d.name}, whose allowed IPs hold ${ip}` };
      }
    }
  }
  return best === null ? { host: apiHost, via: null } : { host: best.host, via: best.via };
}
