/**
 * Which path traffic from node A to node B takes, read off A's WireGuard and
 * proved with a ping over the tunnel (a handshake alone is no proof).
 *
 *   direct   recent handshake with B, B's endpoint is a public (NAT-mapped, or global IPv6) address, ping works
 *   lan      recent handshake with B, B's endpoint is a private LAN address, ping works
 *   relayed  ping works but not over a direct session with B: B's endpoint is on this
 *            host's loopback (wormhole's relay socket, which passes the packets through
 *            the registry), or a relay's address, or there is no recent handshake with B
 *   down     no working ping within the bounded wait
 *
 * A direct or lan path also has an address family (its endpoint's): ipv4 or
 * ipv6 ("direct6" in the matrix).
 */
import ipaddr from "ipaddr.js";
import type { Endpoint, WgPeer } from "../wg/types.js";
import type { Lab } from "./lab.js";
import { mapLimit } from "../util/limit.js";
import { setTimeout as delay } from "node:timers/promises";

export const PATH_KINDS = ["direct", "lan", "relayed", "down"] as const;
export type PathKind = (typeof PATH_KINDS)[number];

/** How good a path is, for "worse than expected": direct and lan are both a working direct session. */
export function pathRank(p: PathKind): number {
  return { direct: 2, lan: 2, relayed: 1, down: 0 }[p];
}

/** WireGuard keeps a session for 180 s (REJECT_AFTER_TIME); an older handshake is not "recent". */
export const RECENT_HANDSHAKE_MS = 180_000;

const PRIVATE_RANGES = new Set(["private", "carrierGradeNat", "linkLocal", "loopback", "uniqueLocal"]);

export function isPrivateAddress(ip: string): boolean {
  return PRIVATE_RANGES.has(ipaddr.process(ip).range());
}

export interface ClassifyInput {
  /** A's peer entry for B (undefined when A has no such peer). */
  readonly peer: WgPeer | undefined;
  readonly nowMs: number;
  readonly pingOk: boolean;
  /** Addresses of relays: an endpoint there means relayed. Default none. */
  readonly relayIps?: readonly string[];
  readonly recentMs?: number;
}

export function classifyPath(input: ClassifyInput): PathKind {
  if (!input.pingOk) return "down";
  const p = input.peer;
  const recent = p !== undefined && p.lastHandshakeMs > 0 && input.nowMs - p.lastHandshakeMs <= (input.recentMs ?? RECENT_HANDSHAKE_MS);
  if (!recent || !p.endpoint) return "relayed";
  if (input.relayIps?.includes(p.endpoint.ip) || ipaddr.process(p.endpoint.ip).range() === "loopback") return "relayed";
  return isPrivateAddress(p.endpoint.ip) ? "lan" : "direct";
}

/** The address family a path runs over. */
export type PathFamily = "ipv4" | "ipv6";

/**
 * The address family of a direct or lan path: its endpoint's. Null for
 * relayed and down paths (a relayed one runs over the registry's tunnel, not
 * over an endpoint of the peer's).
 */
export function pathFamily(path: PathKind, endpoint: Endpoint | null): PathFamily | null {
  if ((path !== "direct" && path !== "lan") || !endpoint) return null;
  return ipaddr.process(endpoint.ip).kind() === "ipv6" ? "ipv6" : "ipv4";
}

/** A path with its family, for matrix cells and logs: direct, direct6, lan6, relayed, ... */
export function pathLabel(path: PathKind, family: PathFamily | null): string {
  return family === "ipv6" ? `${path}6` : path;
}

export interface PairResult {
  readonly from: string;
  readonly to: string;
  readonly path: PathKind;
  /** The address family of a direct or lan path (null: relayed or down). */
  readonly family: PathFamily | null;
  /** A's endpoint for B when the path was decided. */
  readonly endpoint: Endpoint | null;
  /** ms from `startMs` to the first handshake seen on A's side (null: none). */
  readonly handshakeMs: number | null;
  /** ms from `startMs` to the first successful ping A → B (null: none). */
  readonly pingMs: number | null;
  readonly rttMs: number | null;
  /** Why it is down, when it is. */
  readonly note?: string;
}

export interface MeasureOptions {
  /** Directed pairs [from, to]. */
  readonly pairs: readonly (readonly [string, string])[];
  /** Reference time the results' times count from (e.g. when the agents were started). */
  readonly startMs: number;
  /** Per pair, the time its times count from instead (e.g. when the later of its two agents started). */
  readonly pairStartMs?: (from: string, to: string) => number;
  /** Give up on pairs still without a ping at startMs + timeoutMs. */
  readonly timeoutMs: number;
  /** Pause between rounds. Default 250. */
  readonly intervalMs?: number;
  /** Pings in flight at once. Default 8. */
  readonly concurrency?: number;
  readonly relayIps?: readonly string[];
  /** Called with each pair as soon as it is decided. */
  readonly onResult?: (r: PairResult) => void;
}

/**
 * Reads every pair off the lab in one bounded wait: each round reads every
 * involved node's peers once, pings the pairs that show a handshake, and keeps
 * the rest waiting; a peer whose allowed IPs were moved away (the product
 * relays it) is pinged too. At the deadline, each undecided pair gets one
 * last ping before it is called down.
 */
export async function measurePaths(lab: Lab, options: MeasureOptions): Promise<PairResult[]> {
  const deadline = options.startMs + options.timeoutMs;
  const froms = [...new Set(options.pairs.map(([a]) => a))];
  const pending = new Map(options.pairs.map(([a, b]) => [`${a}>${b}`, { from: a, to: b, handshakeMs: null as number | null, t0: options.pairStartMs?.(a, b) ?? options.startMs }]));
  const done = new Map<string, PairResult>();
  const peerOf = (peers: Map<string, readonly WgPeer[]>, a: string, b: string): WgPeer | undefined =>
    peers.get(a)?.find((p) => p.publicKey === lab.publicKey(b));

  const readAll = async (): Promise<Map<string, readonly WgPeer[]>> => {
    const lists = await mapLimit(froms, 6, async (a) => [a, await lab.readPeers(a)] as const);
    return new Map(lists);
  };

  const decide = (key: string, r: PairResult): void => {
    pending.delete(key);
    done.set(key, r);
    options.onResult?.(r);
  };

  while (pending.size > 0 && Date.now() < deadline) {
    lab.checkOpen("measure paths");
    const peers = await readAll();
    const now = Date.now();
    const ready: [string, { from: string; to: string; handshakeMs: number | null; t0: number }][] = [];
    for (const [key, p] of pending) {
      const peer = peerOf(peers, p.from, p.to);
      if (peer && peer.lastHandshakeMs > 0) {
        p.handshakeMs ??= now - p.t0;
        ready.push([key, p]);
      }
    }
    await mapLimit(ready, options.concurrency ?? 8, async ([key, p]) => {
      const ping = await lab.ping(p.from, p.to);
      if (!ping.ok) return;
      const pingAt = Date.now();
      const peer = peerOf(peers, p.from, p.to);
      const path = classifyPath({ peer, nowMs: pingAt, pingOk: true, ...(options.relayIps ? { relayIps: options.relayIps } : {}) });
      decide(key, { from: p.from, to: p.to, path, family: pathFamily(path, peer?.endpoint ?? null), endpoint: peer?.endpoint ?? null, handshakeMs: p.handshakeMs, pingMs: pingAt - p.t0, rttMs: ping.rttMs });
    });
    const left = deadline - Date.now();
    if (pending.size > 0 && left > 0) await delay(Math.min(options.intervalMs ?? 250, left));
  }

  if (pending.size > 0) {
    const last = [...pending];
    const pings = await mapLimit(last, options.concurrency ?? 8, ([, p]) => lab.ping(p.from, p.to));
    // Read after pinging: a ping that got through over a session it just started is direct, not relayed.
    const peers = await readAll();
    const now = Date.now();
    last.forEach(([key, p], i) => {
      const ping = pings[i] as { ok: boolean; rttMs: number | null };
      const peer = peerOf(peers, p.from, p.to);
      const path = classifyPath({ peer, nowMs: now, pingOk: ping.ok, ...(options.relayIps ? { relayIps: options.relayIps } : {}) });
      const note = path !== "down" ? undefined : p.handshakeMs !== null ? "handshake seen but no ping got through" : peer?.endpoint ? "no handshake" : "no endpoint";
      decide(key, {
        from: p.from,
        to: p.to,
        path,
        family: pathFamily(path, peer?.endpoint ?? null),
        endpoint: peer?.endpoint ?? null,
        handshakeMs: p.handshakeMs,
        pingMs: ping.ok ? now - p.t0 : null,
        rttMs: ping.rttMs,
        ...(note ? { note } : {}),
      });
    });
  }
  return options.pairs.map(([a, b]) => done.get(`${a}>${b}`) as PairResult);
}
