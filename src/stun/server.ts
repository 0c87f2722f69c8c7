/**
 * The registry's STUN responder: UDP sockets that answer Binding requests
 * (answer.ts decides what to say), so a node — or any ordinary STUN client —
 * learns its public address and, with wormhole netcheck, what its NAT does.
 *
 * Each address it serves gets two sockets, on the STUN port and on the
 * alternate port. An address with another address of the same family on the
 * same network interface gets that one as its RFC 5780 alternate
 * (OTHER-ADDRESS, CHANGE-REQUEST change-IP); the interface's address of the
 * other family is told in wormhole's OTHER-FAMILY attribute. Each socket is
 * bound to one address, so a reply always leaves from the address the
 * request was sent to (a wildcard socket would let routing choose).
 */
import { createSocket, type Socket } from "node:dgram";
import type { NetworkInterfaceInfo } from "node:os";
import { tryCanonicalIp } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";
import type { Logger } from "../util/log.js";
import { answerStun, StunLimiter } from "./answer.js";

export const DEFAULT_STUN_PORT = 3478;

/** One address the responder serves, with its alternates. */
export interface StunAddressPlan {
  readonly ip: string;
  /** Another address of the same family on the same interface (RFC 5780 alternate), or null. */
  readonly alt: string | null;
  /** An address of the other family on the same interface, or null. */
  readonly otherFamily: string | null;
}

type Interfaces = Readonly<Record<string, readonly NetworkInterfaceInfo[] | undefined>>;

const isV6 = (ip: string): boolean => ip.includes(":");

/** Link-local addresses need a zone and mean nothing to anyone off the link: never served. */
function usable(a: NetworkInterfaceInfo): boolean {
  const ip = tryCanonicalIp(a.address);
  if (ip === null || ip.includes("%")) return false;
  if (isV6(ip)) return !/^fe[89ab]/.test(ip);
  return !ip.startsWith("169.254.");
}

/**
 * Which addresses to serve STUN on, from the host part of the listen address
 * (null, 0.0.0.0 or ::: every address of the host) and the host's interfaces.
 * A specific address brings its interface's other addresses along as
 * alternates. Pure; a string saying what is wrong when the host is not an
 * address of this machine.
 */
export function planStunAddresses(host: string | null, interfaces: Interfaces): StunAddressPlan[] | string {
  const byIface = new Map<string, string[]>();
  for (const [name, list] of Object.entries(interfaces)) {
    const ips = (list ?? []).filter(usable).map((a) => tryCanonicalIp(a.address) as string);
    if (ips.length) byIface.set(name, [...new Set(ips)]);
  }
  const wildcard = host === null || host === "0.0.0.0" || host === "::";
  let chosen: Array<{ ip: string; iface: string }>;
  if (wildcard) {
    chosen = [...byIface].flatMap(([iface, ips]) => ips.map((ip) => ({ ip, iface })));
  } else {
    const want = tryCanonicalIp(host === "localhost" ? "127.0.0.1" : host);
    if (want === null) return `STUN address \`${host}' is not an IP address`;
    const iface = [...byIface].find(([, ips]) => ips.includes(want))?.[0];
    if (iface === undefined) return `STUN address \`${host}' is not an address of this host`;
    const ips = byIface.get(iface) as string[];
    chosen = [want, ...ips.filter((ip) => ip !== want)].map((ip) => ({ ip, iface }));
  }
  return chosen.map(({ ip, iface }) => {
    const same = chosen.filter((c) => c.iface === iface && c.ip !== ip);
    return {
      ip,
      alt: same.find((c) => isV6(c.ip) === isV6(ip))?.ip ?? null,
      otherFamily: same.find((c) => isV6(c.ip) !== isV6(ip))?.ip ?? null,
    };
  });
}

export interface StunServerOptions {
  /** Host part of the STUN address: null, 0.0.0.0 or :: for every address. */
  readonly host: string | null;
  /** 0: any free port (tests). */
  readonly port: number;
  /** The alternate port; 0: any free port. */
  readonly altPort: number;
  readonly logger: Logger;
  /** Default: the host's (os.networkInterfaces()). */
  readonly interfaces?: Interfaces;
  readonly limiter?: StunLimiter;
  readonly now?: () => number;
  /** Told of every datagram handled (for metrics). */
  readonly onResult?: (result: "answered" | "dropped" | "limited") => void;
}

export interface StunServer {
  readonly port: number;
  readonly altPort: number;
  readonly addresses: readonly StunAddressPlan[];
  /** Requests answered, and datagrams dropped (not a Binding request, or over the rate limit). */
  readonly counts: { answered: number; dropped: number; limited: number };
  close(): Promise<void>;
}

function bind(ip: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = isV6(ip) ? createSocket({ type: "udp6", ipv6Only: true }) : createSocket({ type: "udp4" });
    s.once("error", reject);
    s.bind({ address: ip, port, exclusive: true }, () => {
      s.off("error", reject);
      resolve(s);
    });
  });
}

/** Binds every socket (failing as a whole if any cannot be bound), then answers. */
export async function startStunServer(options: StunServerOptions): Promise<StunServer> {
  const { logger } = options;
  const { networkInterfaces } = await import("node:os");
  const plan = planStunAddresses(options.host, options.interfaces ?? networkInterfaces());
  if (typeof plan === "string") throw new Error(plan);
  if (plan.length === 0) throw new Error("no address to serve STUN on");
  const sockets = new Map<string, Socket>();
  const key = (ep: Endpoint): string => `${ep.ip}|${ep.port}`;
  const closeAll = async (): Promise<void> => {
    await Promise.all([...sockets.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
  };
  let port = options.port;
  let altPort = options.altPort;
  try {
    for (const a of plan) {
      for (const which of ["port", "alt"] as const) {
        const want = which === "port" ? port : altPort;
        let s: Socket;
        try {
          s = await bind(a.ip, want);
        } catch (err) {
          throw new Error(`cannot answer STUN on ${isV6(a.ip) ? `[${a.ip}]` : a.ip}:${want}: ${(err as Error).message}`);
        }
        const got = s.address().port;
        if (which === "port") port = got;
        else altPort = got;
        sockets.set(key({ ip: a.ip, port: got }), s);
      }
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  const limiter = options.limiter ?? new StunLimiter();
  const now = options.now ?? Date.now;
  const counts = { answered: 0, dropped: 0, limited: 0 };
  for (const a of plan) {
    for (const localPort of [port, altPort]) {
      const s = sockets.get(key({ ip: a.ip, port: localPort })) as Socket;
      const otherPort = localPort === port ? altPort : port;
      s.on("message", (msg, rinfo) => {
        const source = { ip: tryCanonicalIp(rinfo.address) ?? rinfo.address, port: rinfo.port };
        const ans = answerStun(msg, {
          source,
          local: { ip: a.ip, port: localPort },
          other: a.alt === null ? null : { ip: a.alt, port: otherPort },
          altPort: otherPort,
          otherFamily: a.otherFamily === null ? null : { ip: a.otherFamily, port },
        });
        const tell = (result: "answered" | "dropped" | "limited"): void => {
          counts[result]++;
          options.onResult?.(result);
        };
        if ("drop" in ans) return tell("dropped");
        if (!limiter.allow(source.ip, now())) return tell("limited");
        const out = sockets.get(key(ans.from));
        if (!out) return tell("dropped");
        tell("answered");
        out.send(ans.reply, rinfo.port, rinfo.address);
      });
      s.on("error", (err) => logger.warn({ err: err.message, address: a.ip, port: localPort }, "STUN socket error"));
    }
  }
  logger.info(
    { stun: plan.map((a) => (isV6(a.ip) ? `[${a.ip}]` : a.ip)).join(", "), port, altPort, alternates: plan.filter((a) => a.alt).length },
    "answering STUN Binding requests",
  );
  return { port, altPort, addresses: plan, counts, close: closeAll };
}
