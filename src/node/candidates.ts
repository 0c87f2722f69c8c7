/**
 * Local candidates: the addresses at which peers on the same LAN can reach
 * this node's WireGuard directly (its interface addresses with WireGuard's
 * listen port). Pure: the caller passes os.networkInterfaces().
 */
import type { NetworkInterfaceInfo } from "node:os";
import ipaddr from "ipaddr.js";
import type { Endpoint, WgDevice } from "../wg/types.js";

export const MAX_LOCAL_CANDIDATES = 8;

/**
 * Never offered: loopback and link-local addresses, addresses of WireGuard
 * interfaces, and addresses inside the tunnel's own ranges (any allowed IP of
 * the device's peers): a peer reaching us there would be going through the
 * tunnel it is trying to set up.
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
  const out: Endpoint[] = [];
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
      if (tunnel.some(([net, len]) => net.kind() === addr.kind() && addr.match(net, len))) continue;
      out.push({ ip: addr.toString(), port: device.listenPort });
      if (out.length === MAX_LOCAL_CANDIDATES) return out;
    }
  }
  return out;
}
