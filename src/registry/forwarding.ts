import { readFile } from "node:fs/promises";

/**
 * `--relay` makes the registry's kernel forward packets between its
 * WireGuard peers, which needs IP forwarding. This checks the sysctl and says
 * how to turn it on; it does not change it (that is the host's policy). A
 * firewall that drops forwarded packets cannot be seen from here: README says
 * what to allow.
 */
export async function forwardingProblem(read: (path: string) => Promise<string> = (p) => readFile(p, "utf8")): Promise<string | null> {
  let v4: string;
  try {
    v4 = (await read("/proc/sys/net/ipv4/ip_forward")).trim();
  } catch (err) {
    return `--relay: cannot read /proc/sys/net/ipv4/ip_forward (${(err as Error).message})`;
  }
  if (v4 !== "1") {
    return "--relay needs IP forwarding on this host: sysctl -w net.ipv4.ip_forward=1 (and net.ipv6.conf.all.forwarding=1 for IPv6 tunnel addresses)";
  }
  return null;
}
