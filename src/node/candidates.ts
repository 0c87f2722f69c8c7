/**
 * Local candidates: the addresses at which peers can reach this node's
 * WireGuard directly without going through its NAT — its LAN addresses (for
 * peers behind the same NAT) and its global IPv6 addresses (for any peer with
 * IPv6: there is no NAT there, only a stateful firewall that a punch opens) —
 * with WireGuard's listen port (wireguard-go listens on udp4 and udp6 on the
 * same port). Pure: the caller passes os.networkInterfaces().
 */
import type { NetworkInterfaceInfo } from "node:os";
import ipaddr from "ipaddr.js";
import type { Endpoint, WgDevice } from "../wg/types.js";

export const MAX_LOCAL_CANDIDATES = 8;
/** At most this many of them IPv6 (a host may carry many temporary addresses; any one reaches the same socket). */
export const MAX_IPV6_CANDIDATES = 2;

/**
 * IPv6 ranges that are never a way to reach a node from elsewhere: ULA
 * (fc00::/7) and site-local are private to a site, link-local to a link;
 * IPv4-mapped and translated ones are IPv4 in disguise.
 */
const NOT_GLOBAL6 = new Set(["unspecified", "linkLocal", "multicast", "loopback", "uniqueLocal", "deprecatedSiteLocal", "ipv4Mapped", "rfc6145", "rfc6052", "discard"]);

/**
 * A global IPv6 address: an IPv6 address outside loopback, link-local, ULA,
 * site-local, multicast, unspecified and the IPv4-in-IPv6 ranges. (The
 * documentation range 2001:db8::/32, which the lab uses, counts as global.)
 */
export function isGlobalIpv6(ip: string): boolean {
  if (!ipaddr.IPv6.isValid(ip) || ipaddr.IPv4.isValid(ip)) return false;
  let addr: ipaddr.IPv6;
  try {
    addr = ipaddr.IPv6.parse(ip);
  } catch {
    return false;
  }
  return !NOT_GLOBAL6.has(addr.range());
}

/**
 * Never offered: loopback, link-local, unspecified and multicast addresses;
 * IPv6 addresses that are not global (ULA above all: a LAN's private IPv6
 * that must never be handed out as a way to reach us); addresses of
 * WireGuard interfaces; and addresses inside the tunnel's own ranges (any
 * allowed IP of the device's peers): a peer reaching us there would be going
 * through the tunnel it is trying to set up. IPv4 ones come first, then at
 * most MAX_IPV6_CANDIDATES global IPv6 ones, MAX_LOCAL_CANDIDATES in all.
 */
export function localCandidates(
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  wireguardNames: ReadonlySet<string>,
  device: WgDevice,
): Endpoint[] {
  if (!device.listenPort) return [];
  const tunnel: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = [];
  for (const p of device.peers) {
    for (const cidr of p.allowedIps) {
      try {
        tunnel.push(ipaddr.parseCIDR(cidr));
      } catch {
        /* not a prefix: nothing to exclude */
      }
    }
  }
  const v4: Endpoint[] = [];
  const v6: Endpoint[] = [];
  for (const [name, infos] of Object.entries(interfaces)) {
    if (wireguardNames.has(name) || !infos) continue;
    for (const info of infos) {
      if (info.internal) continue;
      let addr: ipaddr.IPv4 | ipaddr.IPv6;
      try {
        addr = ipaddr.process(info.address);
      } catch {
        continue;
      }
      const range = addr.range();
      if (range === "loopback" || range === "linkLocal" || range === "unspecified" || range === "multicast") continue;
      if (addr.kind() === "ipv6" && !isGlobalIpv6(addr.toString())) continue;
      if (tunnel.some(([net, len]) => net.kind() === addr.kind() && addr.match(net, len))) continue;
      const ep = { ip: addr.toString(), port: device.listenPort };
      const list = addr.kind() === "ipv6" ? v6 : v4;
      if (!list.some((e) => e.ip === ep.ip)) list.push(ep);
    }
  }
  const six = v6.slice(0, MAX_IPV6_CANDIDATES);
  return [...v4.slice(0, MAX_LOCAL_CANDIDATES - six.length), ...six];
}

/** This node's global IPv6 addresses among its candidates: whether it can reach peers over IPv6. */
export function hasGlobalIpv6(candidates: readonly Endpoint[]): boolean {
  return candidates.some((c) => isGlobalIpv6(c.ip));
}
