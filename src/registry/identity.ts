/**
 * Tunnel identity: a caller that reaches the registry's API through its
 * WireGuard interface has a source address inside exactly one peer's allowed
 * IPs, and WireGuard has already checked that the packets came from that
 * peer's key (cryptokey routing). A TCP connection cannot be completed from a
 * spoofed tunnel address: the replies are routed into the tunnel, to the
 * real peer. So the source address names the caller.
 *
 * Only single-host allowed IPs (/32, /128: a node's tunnel address) identify.
 * A wider prefix (a peer routing a whole LAN, or 0.0.0.0/0) would also match
 * addresses that reach the registry from outside the tunnel with their real
 * source, so it never names a caller. This relies on the registry host
 * routing tunnel addresses into its WireGuard interface, as wg-quick sets up.
 *
 * Callers from anywhere else (the public address, loopback) are unidentified.
 */
import ipaddr from "ipaddr.js";
import type { PeerMap } from "./view.js";

/**
 * The IP of a grpc-js peer string: "ipv4:203.0.113.5:4242",
 * "ipv6:[2001:db8::1]:4242", "10.0.0.1:1", or (from a dual-stack listener)
 * "::ffff:10.0.0.1:4242" without brackets.
 */
export function callerIp(peer: string): string | null {
  const text = peer.replace(/^ipv[46]:/, "");
  const m = /^\[([^\]]+)\]:\d+$/.exec(text) ?? /^(.+):\d+$/.exec(text);
  const ip = m?.[1];
  if (!ip || !ipaddr.isValid(ip)) return null;
  const addr = ipaddr.parse(ip);
  return (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : addr).toString();
}

type Prefix = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Maps tunnel addresses to peer keys. Built once per change of the peer
 * table: identifying a caller is one map probe.
 */
export class IdentityIndex {
  private readonly hosts = new Map<string, string>();
  private readonly prefixes: Prefix[] = [];

  constructor(peers: PeerMap) {
    for (const p of peers.values()) {
      for (const cidr of p.allowedIps) {
        let prefix: Prefix;
        try {
          prefix = ipaddr.parseCIDR(cidr);
        } catch {
          continue;
        }
        const [addr, len] = prefix;
        if ((addr.kind() === "ipv4" && len === 32) || (addr.kind() === "ipv6" && len === 128)) this.hosts.set(addr.toString(), p.publicKey);
        this.prefixes.push(prefix);
      }
    }
  }

  /** The key of the peer whose tunnel address (a single-host allowed IP) is `ip`, or null. */
  keyOf(ip: string): string | null {
    return this.hosts.get(ip) ?? null;
  }

  /** Whether `ip` lies inside any peer's allowed IPs: the tunnel's own ranges, never a candidate. */
  inTunnel(ip: string): boolean {
    let addr: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      addr = ipaddr.process(ip);
    } catch {
      return false;
    }
    return this.prefixes.some((p) => p[0].kind() === addr.kind() && addr.match(p));
  }
}
