/**
 * IP prefixes (CIDR) as WireGuard writes them: the network of a prefix,
 * whether an address lies inside one, and the address of a single-host one.
 * IPv4 and IPv6 never match each other.
 */
import ipaddr from "ipaddr.js";

type Parsed = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parse(cidr: string): Parsed | null {
  try {
    return ipaddr.parseCIDR(cidr);
  } catch {
    return null;
  }
}

/** The prefix with its host bits cleared ("10.77.0.5/24" → "10.77.0.0/24"); the input when it is not a prefix. */
export function networkOf(cidr: string): string {
  const p = parse(cidr);
  if (!p) return cidr;
  const [addr, len] = p;
  const net = addr.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  const text = net.kind() === "ipv6" ? (net as ipaddr.IPv6).toRFC5952String() : net.toString();
  return `${text}/${len}`;
}

/** Whether the address `ip` lies inside `prefix`. */
export function prefixContains(prefix: string, ip: string): boolean {
  const p = parse(prefix);
  if (!p || !ipaddr.isValid(ip)) return false;
  const addr = ipaddr.parse(ip);
  return addr.kind() === p[0].kind() && addr.match(p);
}

/** The address of a single-host prefix (a /32 or /128), or null. */
export function singleHost(cidr: string): string | null {
  const p = parse(cidr);
  if (!p) return null;
  const [addr, len] = p;
  if (len !== (addr.kind() === "ipv4" ? 32 : 128)) return null;
  return addr.kind() === "ipv6" ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}
