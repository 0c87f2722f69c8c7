/**
 * Tiny UDP datagrams sent to tunnel addresses, so that WireGuard carries
 * them. Used to keep the registry hearing from this node every second (its
 * WireGuard learns a new NAT mapping only from packets this node sends it),
 * and to make WireGuard send toward a peer now. Nothing listens for them: the
 * receiver drops them (or answers ICMP port unreachable through the tunnel).
 */
import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { Logger } from "../util/log.js";

/** The discard port (RFC 863): a datagram to it asks for nothing. */
export const PROBE_PORT = 9;
const PAYLOAD = Buffer.from("wormhole-probe");

export interface Prober {
  /** Sends one datagram to a tunnel address. Never throws. */
  poke(ip: string): void;
  close(): void;
}

export function createUdpProber(logger: Logger, port = PROBE_PORT): Prober {
  const sockets = new Map<"udp4" | "udp6", Socket>();
  const socket = (type: "udp4" | "udp6"): Socket => {
    let s = sockets.get(type);
    if (!s) {
      s = createSocket(type);
      // Unreachable routes, ICMP errors: a probe is best effort.
      s.on("error", (err) => logger.debug({ err: err.message }, "probe socket error"));
      s.unref();
      sockets.set(type, s);
    }
    return s;
  };
  return {
    poke(ip) {
      try {
        socket(isIPv6(ip) ? "udp6" : "udp4").send(PAYLOAD, port, ip, (err) => {
          if (err) logger.debug({ to: ip, err: err.message }, "probe not sent");
        });
      } catch (err) {
        logger.debug({ to: ip, err: String(err) }, "probe not sent");
      }
    },
    close() {
      for (const s of sockets.values()) s.close();
      sockets.clear();
    },
  };
}

/**
 * The tunnel address of a peer: the first single-host prefix among its
 * allowed IPs (a /32 or /128), or null when it routes only whole networks.
 */
export function tunnelAddress(allowedIps: readonly string[]): string | null {
  for (const cidr of allowedIps) {
    const [ip, len] = cidr.split("/");
    if (ip && ((len === "32" && !ip.includes(":")) || (len === "128" && ip.includes(":")))) return ip;
  }
  return null;
}
