/**
 * `--auto-peers PREFIX`: which peers of the registries this node adds to its
 * WireGuard interface, and which of those it removes again. Pure (no I/O):
 * the runner (auto-peers-runner.ts) reads the interface and the record,
 * applies the plan and writes the record.
 *
 * The rules, in the order they are applied:
 * - A candidate is a peer a connected registry lists with exactly one
 *   single-host allowed IP (a /32 or /128) inside PREFIX; it would be added
 *   with that address only.
 * - Never the interface's own key nor a registry's key; never a key the
 *   interface has already (the user's peer, or ours from before).
 * - Never an address that overlaps any allowed IP of a peer the interface
 *   has, nor the interface's own address (refused: "overlap").
 * - Two keys for one address (from one registry or two), or two addresses for
 *   one key: none of them is added (refused: "conflict").
 * - A key this node removed more than once lately waits a hold-down that
 *   doubles with each removal (refused: "damped"), so a registry that churns
 *   peers in and out cannot make the interface churn as fast.
 * - At most `maxPeers` peers added by this node at a time (refused: "cap").
 * - A peer is removed only when this node added it (it is in the record and
 *   still has exactly the allowed IP it was given) and no connected registry
 *   has listed it for `graceMs`. With no registry connected nothing is
 *   removed and the time of absence starts again: silence proves nothing.
 * - A recorded peer no longer on the interface, or whose allowed IPs someone
 *   changed, leaves the record (it is not this node's to remove any more).
 */
import type { WgDevice } from "../wg/types.js";
import { prefixContains, singleHost } from "../util/prefix.js";
import type { RegistryView } from "./source.js";

/** One registry as the node sees it now; `view` null: not connected now. */
export interface NamedView {
  readonly name: string;
  readonly view: RegistryView | null;
}

/** A peer this node added. */
export interface AddedPeer {
  /** The single allowed IP it was given (canonical, e.g. "10.77.0.5/32"). */
  readonly allowedIp: string;
  readonly addedAtMs: number;
  /** Since when no connected registry lists it; null: listed at the last plan. */
  readonly absentSinceMs: number | null;
}

/** A key this node removed lately (for churn damping). */
export interface RemovedPeer {
  readonly atMs: number;
  /** Removals in a row, each within the hold-down window of the one before. */
  readonly count: number;
}

/** What this node added and removed: written to disk after every change. */
export interface AutoPeersRecord {
  readonly added: ReadonlyMap<string, AddedPeer>;
  readonly removed: ReadonlyMap<string, RemovedPeer>;
}

export const EMPTY_RECORD: AutoPeersRecord = { added: new Map(), removed: new Map() };

export type RefusalReason = "conflict" | "overlap" | "several-addresses" | "damped" | "cap";

export interface Refusal {
  /** The registry that named the peer. */
  readonly registry: string;
  readonly publicKey: string;
  readonly allowedIp: string | null;
  readonly reason: RefusalReason;
  /** For the log line. */
  readonly detail: string;
}

export interface AutoPeerAdd {
  readonly publicKey: string;
  readonly allowedIp: string;
  /** The registries that list it. */
  readonly registries: readonly string[];
}

export interface AutoPeerRemove {
  readonly publicKey: string;
  readonly allowedIp: string;
  readonly absentMs: number;
}

export interface AutoPeersInput {
  readonly device: WgDevice;
  /** Canonical prefix, e.g. "10.77.0.0/24". */
  readonly prefix: string;
  readonly registries: readonly NamedView[];
  /** Keys of the local peers that are registries (never added, never removed). */
  readonly registryKeys: ReadonlySet<string>;
  /** The interface's own addresses (never given to a peer). */
  readonly ownIps?: readonly string[];
  readonly record: AutoPeersRecord;
  readonly nowMs: number;
  readonly graceMs: number;
  /** Largest number of peers added by this node at a time. */
  readonly maxPeers: number;
  /** Hold-down after the second removal of a key in a row; doubles with each one more. Default `graceMs`. */
  readonly holdDownMs?: number;
  /** Longest hold-down. Default one hour. */
  readonly maxHoldDownMs?: number;
}

export interface AutoPeersPlan {
  readonly add: readonly AutoPeerAdd[];
  readonly remove: readonly AutoPeerRemove[];
  /** The record once the plan is applied. */
  readonly record: AutoPeersRecord;
  readonly refusals: readonly Refusal[];
  /** Recorded peers that left the record without being removed by this node, and why. */
  readonly forgotten: readonly { readonly publicKey: string; readonly why: string }[];
  /** When to plan again even if nothing else happens (a grace time or a hold-down ends); null: no need. */
  readonly nextDueMs: number | null;
}

export const DEFAULT_MAX_HOLD_DOWN_MS = 60 * 60_000;
/** Cap on peers added by one node whatever the prefix (a hostile registry must not grow the interface without bound). */
export const MAX_AUTO_PEERS = 1_000;
/** Removals remembered for churn damping, at most. */
export const MAX_REMOVED = 4 * MAX_AUTO_PEERS;

/** The cap for a prefix: its number of addresses (less the network and the node itself), at most MAX_AUTO_PEERS. */
export function capFor(prefix: string): number {
  const m = /\/(\d{1,3})$/.exec(prefix);
  const len = m ? Number(m[1]) : 0;
  const bits = (prefix.includes(":") ? 128 : 32) - len;
  if (bits >= 11) return MAX_AUTO_PEERS;
  return Math.max(0, Math.min(MAX_AUTO_PEERS, 2 ** bits - 1));
}

function short(key: string): string {
  return key.slice(0, 8);
}

/** The hold-down before a key removed `count` times in a row may be added again. */
function holdDown(count: number, baseMs: number, maxMs: number): number {
  if (count < 2) return 0;
  return Math.min(maxMs, baseMs * 2 ** Math.min(count - 2, 30));
}

export function planAutoPeers(input: AutoPeersInput): AutoPeersPlan {
  const { device, prefix, record, nowMs, graceMs } = input;
  const baseHoldMs = input.holdDownMs ?? graceMs;
  const maxHoldMs = input.maxHoldDownMs ?? DEFAULT_MAX_HOLD_DOWN_MS;
  const refusals: Refusal[] = [];
  const forgotten: { publicKey: string; why: string }[] = [];
  const connected = input.registries.filter((r): r is { name: string; view: RegistryView } => r.view !== null);

  // ---- what the interface has, and which of it is ours ----
  const onInterface = new Map(device.peers.map((p) => [p.publicKey, p]));
  const added = new Map<string, AddedPeer>();
  for (const [key, entry] of record.added) {
    const peer = onInterface.get(key);
    if (!peer) {
      forgotten.push({ publicKey: key, why: "no longer on the interface" });
    } else if (peer.allowedIps.length !== 1 || peer.allowedIps[0] !== entry.allowedIp) {
      forgotten.push({ publicKey: key, why: `its allowed IPs were changed (now ${peer.allowedIps.join(", ") || "none"}): left to whoever changed them` });
    } else if (input.registryKeys.has(key)) {
      forgotten.push({ publicKey: key, why: "it is a registry" });
    } else {
      added.set(key, entry);
    }
  }
  // Single-host allowed IPs of the interface go in a set; wider ones (routes) are checked one by one.
  const hostIps = new Map<string, string>();
  const wider: { cidr: string; key: string }[] = [];
  for (const p of device.peers) {
    for (const cidr of p.allowedIps) {
      const host = singleHost(cidr);
      if (host !== null) hostIps.set(host, p.publicKey);
      else wider.push({ cidr, key: p.publicKey });
    }
  }
  const holderOf = (host: string): string | null => hostIps.get(host) ?? wider.find((w) => prefixContains(w.cidr, host))?.key ?? null;

  // ---- candidates: (registry, key, address) ----
  const byKey = new Map<string, { hosts: Set<string>; registries: Set<string> }>();
  const listed = new Set<string>();
  for (const { name, view } of connected) {
    for (const key of view.endpoints.keys()) listed.add(key);
    for (const [key, ips] of view.allowedIps ?? []) {
      listed.add(key);
      const hosts = ips.flatMap((c) => {
        const h = singleHost(c);
        return h !== null && prefixContains(prefix, h) ? [h] : [];
      });
      if (hosts.length === 0 || key === device.publicKey || input.registryKeys.has(key)) continue;
      if (new Set(hosts).size > 1) {
        refusals.push({ registry: name, publicKey: key, allowedIp: null, reason: "several-addresses", detail: `the registry lists several addresses inside ${prefix} for it (${hosts.join(", ")}); added only with exactly one` });
        continue;
      }
      const c = byKey.get(key) ?? { hosts: new Set<string>(), registries: new Set<string>() };
      c.hosts.add(hosts[0] as string);
      c.registries.add(name);
      byKey.set(key, c);
    }
  }
  const keysByHost = new Map<string, Set<string>>();
  for (const [key, c] of byKey) {
    for (const h of c.hosts) {
      const s = keysByHost.get(h) ?? new Set<string>();
      s.add(key);
      keysByHost.set(h, s);
    }
  }

  // ---- removals (first: they make room under the cap) ----
  const remove: AutoPeerRemove[] = [];
  const nextAdded = new Map<string, AddedPeer>();
  for (const [key, entry] of added) {
    if (connected.length === 0 || listed.has(key)) {
      nextAdded.set(key, { ...entry, absentSinceMs: null });
      continue;
    }
    const since = entry.absentSinceMs ?? nowMs;
    if (nowMs - since >= graceMs) remove.push({ publicKey: key, allowedIp: entry.allowedIp, absentMs: nowMs - since });
    else nextAdded.set(key, { ...entry, absentSinceMs: since });
  }
  const removed = new Map<string, RemovedPeer>();
  for (const [key, r] of record.removed) {
    // Forgotten once its hold-down and a hold-down's worth of quiet after it are over.
    if (nowMs - r.atMs <= 2 * Math.max(holdDown(r.count + 1, baseHoldMs, maxHoldMs), baseHoldMs)) removed.set(key, r);
  }
  for (const r of remove) {
    const before = removed.get(r.publicKey);
    removed.delete(r.publicKey);
    removed.set(r.publicKey, { atMs: nowMs, count: (before?.count ?? 0) + 1 });
  }
  // Bounded whatever a registry does: the oldest removals are forgotten first.
  const excess = removed.size - MAX_REMOVED;
  if (excess > 0) for (const k of [...removed.entries()].sort((a, b) => a[1].atMs - b[1].atMs).slice(0, excess).map(([k]) => k)) removed.delete(k);

  let nextDueMs: number | null = null;
  const due = (atMs: number): void => {
    if (nextDueMs === null || atMs < nextDueMs) nextDueMs = atMs;
  };
  for (const entry of nextAdded.values()) if (entry.absentSinceMs !== null) due(entry.absentSinceMs + graceMs);

  // ---- additions ----
  const add: AutoPeerAdd[] = [];
  const cap = input.maxPeers;
  let count = nextAdded.size;
  const goingAway = new Set(remove.map((r) => r.publicKey));
  const capped: { key: string; cidr: string; registries: readonly string[] }[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const c = byKey.get(key) as { hosts: Set<string>; registries: Set<string> };
    if (onInterface.has(key)) continue; // the user's, or ours already
    const registries = [...c.registries].sort();
    const refuse = (reason: RefusalReason, allowedIp: string | null, detail: string): void => {
      for (const registry of registries) refusals.push({ registry, publicKey: key, allowedIp, reason, detail });
    };
    if (c.hosts.size > 1) {
      refuse("conflict", null, `registries list different addresses for it (${[...c.hosts].sort().join(", ")}): added with none`);
      continue;
    }
    const host = [...c.hosts][0] as string;
    const cidr = `${host}/${host.includes(":") ? 128 : 32}`;
    const rivals = [...(keysByHost.get(host) ?? [])].filter((k) => k !== key);
    if (rivals.length > 0) {
      refuse("conflict", cidr, `another key is listed for ${cidr} too (${rivals.map(short).join(", ")}): neither is added`);
      continue;
    }
    if ((input.ownIps ?? []).includes(host)) {
      refuse("overlap", cidr, `${cidr} is this interface's own address: not added`);
      continue;
    }
    const holder = holderOf(host);
    if (holder !== null && !goingAway.has(holder)) {
      refuse("overlap", cidr, `${cidr} overlaps an allowed IP of peer ${short(holder)} already on the interface${added.has(holder) ? "" : " (configured by the user)"}: not added`);
      continue;
    }
    if (holder !== null) continue; // freed in this very plan: added at the next one
    const gone = removed.get(key);
    if (gone) {
      const wait = holdDown(gone.count, baseHoldMs, maxHoldMs);
      if (nowMs - gone.atMs < wait) {
        refuse("damped", cidr, `it was removed ${gone.count} times lately: added again no sooner than ${Math.ceil((gone.atMs + wait - nowMs) / 1000)} s from now`);
        due(gone.atMs + wait);
        continue;
      }
    }
    if (count >= cap) {
      capped.push({ key, cidr, registries });
      continue;
    }
    count++;
    add.push({ publicKey: key, allowedIp: cidr, registries });
    nextAdded.set(key, { allowedIp: cidr, addedAtMs: nowMs, absentSinceMs: null });
  }
  // One line for all that the cap kept out (a hostile registry may list thousands).
  const first = capped[0];
  if (first) {
    for (const registry of first.registries) {
      refusals.push({ registry, publicKey: first.key, allowedIp: first.cidr, reason: "cap", detail: `this node has added ${count} peers, the most it adds (${cap}): ${capped.length} more not added` });
    }
  }
  return { add, remove, record: { added: nextAdded, removed }, refusals, forgotten, nextDueMs };
}
