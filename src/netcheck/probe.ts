/**
 * The I/O of `wormhole netcheck`: the STUN tests verdict.ts reads, run
 * against the registry over each address family. Every wait is bounded
 * (each Binding request `timeoutMs`); nothing here throws for network
 * trouble, it becomes an observation ("unknown: ...").
 */
import { createSocket, type Socket, type SocketType } from "node:dgram";
import { lookup } from "node:dns/promises";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { arrives, binding, showEndpoint, type BindingResult } from "../stun/client.js";
import { tryCanonicalIp } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";
import type { FamilyObservations, Heard, Observations, Probe, Skipped } from "./verdict.js";

export interface ProbeOptions {
  /** The registry: an IP address or a host name. */
  readonly host: string;
  /** Its STUN port (3478) and alternate port (3479). */
  readonly port: number;
  readonly altPort: number;
  /** Bound for each Binding request. Default 1 500 ms. */
  readonly timeoutMs?: number;
  /** Bound for resolving a host name. Default 5 000 ms. */
  readonly resolveTimeoutMs?: number;
  /** Default: the host's. */
  readonly interfaces?: Readonly<Record<string, readonly NetworkInterfaceInfo[] | undefined>>;
}

type Family = 4 | 6;
const isV6 = (ip: string): boolean => ip.includes(":");

/** Whether an IPv6 address is global unicast: not loopback, unspecified, link-local (fe80::/10) or ULA (fc00::/7). Pure. */
export function isGlobalIpv6(ip: string): boolean {
  const c = tryCanonicalIp(ip);
  if (c === null || !isV6(c) || c.includes("%")) return false;
  if (c === "::1" || c === "::") return false;
  return !/^(fe[89ab]|f[cd])/.test(c);
}

async function resolveRegistry(host: string, timeoutMs: number): Promise<{ v4: string | null; v6: string | null; problem: string | null }> {
  const literal = tryCanonicalIp(host);
  if (literal !== null) return isV6(literal) ? { v4: null, v6: literal, problem: null } : { v4: literal, v6: null, problem: null };
  let timer: NodeJS.Timeout | undefined;
  try {
    const all = await Promise.race([
      lookup(host, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return {
      v4: all.find((a) => a.family === 4)?.address ?? null,
      v6: all.find((a) => a.family === 6)?.address ?? null,
      problem: null,
    };
  } catch (err) {
    return { v4: null, v6: null, problem: `cannot resolve \`${host}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}

/** Sockets the tests open, closed at the end whatever happens. */
class Sockets {
  readonly #open: Socket[] = [];
  async udp(family: Family): Promise<Socket> {
    const type: SocketType = family === 4 ? "udp4" : "udp6";
    const s = family === 6 ? createSocket({ type, ipv6Only: true }) : createSocket({ type });
    this.#open.push(s);
    s.on("error", () => {}); // a send error reaches the send callback; nothing else is expected
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(0, () => {
        s.off("error", reject);
        resolve();
      });
    });
    return s;
  }
  /** The source address the kernel would use towards `to` (a connected socket sends nothing). */
  async localAddress(family: Family, to: Endpoint): Promise<string | { problem: string }> {
    const s = await this.udp(family);
    return new Promise((resolve) => {
      s.connect(to.port, to.ip, (err?: Error) => {
        if (err) resolve({ problem: `cannot send over IPv${family} to ${showEndpoint(to)}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
        else resolve(tryCanonicalIp(s.address().address) ?? s.address().address);
      });
    });
  }
  close(): void {
    for (const s of this.#open) {
      try {
        s.close();
      } catch {
        /* closed already */
      }
    }
  }
}

const asProbe = (r: BindingResult): Probe => ("problem" in r ? { problem: r.problem, timeout: r.timeout } : { mapped: r.mapped, rttMs: r.rttMs });
const asHeard = (r: BindingResult): Heard => ("problem" in r ? (r.timeout ? { heard: false } : { problem: r.problem }) : { heard: true });

/** One family's tests against `server`; also what the registry told of its address in the other family. */
async function probeFamily(
  sockets: Sockets,
  family: Family,
  server: Endpoint,
  altPort: number,
  timeoutMs: number,
): Promise<{ obs: FamilyObservations | Skipped; otherFamily: Endpoint | null }> {
  const localIp = await sockets.localAddress(family, server);
  if (typeof localIp !== "string") return { obs: { skipped: localIp.problem }, otherFamily: null };
  const s1 = await sockets.udp(family);
  const local = { ip: localIp, port: s1.address().port };
  const r1 = await binding(s1, server, { timeoutMs });
  const test1 = asProbe(r1);
  const base = { local, server, alternate: null, test1, test2: null, test3: null, filterBoth: null, filterPort: null, hairpin: null };
  if ("problem" in r1) return { obs: base, otherFamily: null };
  const alternate = r1.other !== null && isV6(r1.other.ip) === (family === 6) ? r1.other : null;

  // Mapping: test 2 (and 3) from the same socket.
  const test2 = asProbe(await binding(s1, alternate ? { ip: alternate.ip, port: server.port } : { ip: server.ip, port: altPort }, { timeoutMs }));
  let test3: Probe | null = null;
  if (alternate && "mapped" in test2 && !sameEndpoint(test2.mapped, r1.mapped)) test3 = asProbe(await binding(s1, alternate, { timeoutMs }));

  // Filtering: a fresh socket that has sent only to A:p, so no earlier test opened the NAT to the other addresses.
  const s2 = await sockets.udp(family);
  const opened = await binding(s2, server, { timeoutMs });
  let filterBoth: Heard | null = null;
  let filterPort: Heard | null = null;
  if ("problem" in opened) filterPort = { problem: `filtering test: ${opened.problem}` };
  else {
    if (alternate) filterBoth = asHeard(await binding(s2, server, { timeoutMs, change: { changeIp: true, changePort: true }, expectFrom: alternate }));
    if (filterBoth === null || ("heard" in filterBoth && !filterBoth.heard)) {
      filterPort = asHeard(await binding(s2, server, { timeoutMs, change: { changeIp: false, changePort: true }, expectFrom: { ip: server.ip, port: alternate ? alternate.port : altPort } }));
    }
  }

  // Hairpin: from a third socket to the first one's mapped address.
  const s3 = await sockets.udp(family);
  const h = await arrives(s3, s1, r1.mapped, Math.min(timeoutMs, 1_000));
  const hairpin: Heard = "problem" in h ? { problem: `hairpin test: ${h.problem}` } : h;

  const otherFamily = r1.otherFamily !== null && isV6(r1.otherFamily.ip) !== (family === 6) ? r1.otherFamily : null;
  return { obs: { ...base, alternate, test2, test3, filterBoth, filterPort, hairpin }, otherFamily };
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && tryCanonicalIp(a.ip) === tryCanonicalIp(b.ip);
}

/** Runs every test; IPv4 and IPv6 in turn (the first family tested tells the registry's address in the other). */
export async function probeNetwork(options: ProbeOptions): Promise<Observations> {
  const timeoutMs = options.timeoutMs ?? 1_500;
  const interfaces = options.interfaces ?? networkInterfaces();
  const hasGlobalIpv6 = Object.values(interfaces).some((list) => (list ?? []).some((a) => a.family === "IPv6" && isGlobalIpv6(a.address)));
  const sockets = new Sockets();
  try {
    const addrs = await resolveRegistry(options.host, options.resolveTimeoutMs ?? 5_000);
    if (addrs.problem) return { ipv4: { skipped: addrs.problem }, ipv6: { skipped: addrs.problem }, hasGlobalIpv6 };
    const results: Partial<Record<Family, FamilyObservations | Skipped>> = {};
    const known: Record<Family, string | null> = { 4: addrs.v4, 6: addrs.v6 };
    const order: Family[] = known[4] !== null ? [4, 6] : [6, 4];
    for (const family of order) {
      const ip = known[family];
      if (ip === null) {
        results[family] = {
          skipped: `the registry told no IPv${family} address for STUN${tryCanonicalIp(options.host) === null ? ` and \`${options.host}' has none` : ""}`,
        };
        continue;
      }
      const { obs, otherFamily } = await probeFamily(sockets, family, { ip, port: options.port }, options.altPort, timeoutMs);
      results[family] = obs;
      const other: Family = family === 4 ? 6 : 4;
      if (known[other] === null && otherFamily !== null) known[other] = otherFamily.ip;
    }
    return { ipv4: results[4] as FamilyObservations | Skipped, ipv6: results[6] as FamilyObservations | Skipped, hasGlobalIpv6 };
  } finally {
    sockets.close();
  }
}
