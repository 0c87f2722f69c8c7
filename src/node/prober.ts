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
import { runCommand, type Runner } from "../util/runner.js";

/** The discard port (RFC 863): a datagram to it asks for nothing. */
export const PROBE_PORT = 9;
const PAYLOAD = Buffer.from("wormhole-probe");

export interface Prober {
  /**
   * Sends one datagram to a tunnel address, if the kernel routes it into
   * WireGuard interface `iface`. Never throws.
   */
  poke(ip: string, iface: string): void;
  close(): void;
}

/** The device in `ip -o route get` output ("... dev wg0 src ..."), or null. */
export function routeDevice(stdout: string): string | null {
  return /\bdev (\S+)/.exec(stdout)?.[1] ?? null;
}

/** How long a route check is trusted. */
const ROUTE_TTL_MS = 60_000;

/** Whether datagrams for tunnel address `ip` go into WireGuard interface `iface` (cached; logs once when not). */
export type RouteCheck = (ip: string, iface: string) => Promise<boolean>;

/**
 * A datagram for a tunnel address must go into the tunnel: if the machine
 * routed it elsewhere (a misconfigured interface, a node run outside the
 * tunnel's namespace), it would leave for a private address on some other
 * network. So each destination's route is checked with `ip route get`
 * (cached for a minute).
 */
export function createRouteCheck(logger: Logger, runner: Runner = runCommand): RouteCheck {
  const routes = new Map<string, { ok: boolean; atMs: number }>();
  const warned = new Set<string>();
  return async (ip, iface) => {
    const key = `${iface} ${ip}`;
    const cached = routes.get(key);
    if (cached && Date.now() - cached.atMs < ROUTE_TTL_MS) return cached.ok;
    let dev: string | null = null;
    try {
      dev = routeDevice((await runner(["ip", "-o", "route", "get", ip], { timeoutMs: 2_000 })).stdout);
    } catch (err) {
      dev = null;
      if (!warned.has(key)) logger.debug({ to: ip, err: (err as Error).message }, "cannot check the route of a probe");
    }
    const ok = dev === iface;
    routes.set(key, { ok, atMs: Date.now() });
    if (!ok && !warned.has(key)) {
      warned.add(key);
      logger.warn({ to: ip, iface, routedVia: dev }, "not sending: this tunnel address is not routed into the WireGuard interface");
    }
    return ok;
  };
}

/** Sends datagrams to tunnel addresses, only where {@link createRouteCheck} allows. */
export function createUdpProber(logger: Logger, port = PROBE_PORT, runner: Runner = runCommand): Prober {
  const routed = createRouteCheck(logger, runner);
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
  const send = (ip: string) => {
    try {
      socket(isIPv6(ip) ? "udp6" : "udp4").send(PAYLOAD, port, ip, (err) => {
        if (err) logger.debug({ to: ip, err: err.message }, "probe not sent");
      });
    } catch (err) {
      logger.debug({ to: ip, err: String(err) }, "probe not sent");
    }
  };
  return {
    poke(ip, iface) {
      void routed(ip, iface).then((ok) => {
        if (ok) send(ip);
      });
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
