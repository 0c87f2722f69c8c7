/**
 * Relaying through the registry, for pairs that cannot punch (symmetric
 * NATs, two bare masquerade routers). Pure.
 *
 * A node relays a peer by moving the peer's allowed IPs to the registry's
 * peer, so WireGuard sends that traffic to the registry, which forwards it
 * (`wormhole registry --relay`) to the other node, which does the same. Both
 * ends must move, or the receiving WireGuard drops the packets (they would
 * arrive from the registry with a source routed to the direct peer); both
 * decide on the same evidence at about the same time, because both were
 * pushed each other's endpoint at once. When one end relays anyway while the
 * other still has a session (it handshook before the first end gave up and
 * re-created its peer), the registry passes the first end's report on, and
 * the other end punches afresh (decide(), `relayedBy`): a handshake brings
 * the first end back to direct at once, and no handshake relays this end
 * too, by the rule below.
 *
 * While relayed, the direct peer is kept quiet (no endpoint, no keepalive):
 * on a bare masquerade router every packet the peer sends refreshes the
 * stale conntrack entry that breaks the punch, so the entry only expires if
 * both sides stop (UDP unreplied timeout: 30 s). Punches are then retried at
 * wall-clock multiples of ROUND_MS, so both ends punch in step. A punch that
 * gets a handshake moves the addresses back: the pair is direct again.
 *
 * A peer with a preshared key is never relayed (its peer entry cannot be
 * re-created: the key is never read).
 */
import { endpointsEqual } from "../wg/endpoint.js";
import type { Endpoint, PeerUpdate, WgDevice, WgPeer } from "../wg/types.js";
import { DEFAULT_KEEPALIVE_SEC, HEALTHY_HANDSHAKE_MS, HEARING_GRACE_MS, MAX_PUNCH_ATTEMPTS, type AppliedRecord } from "./decide.js";

/** After the last punch attempt, this long without a handshake means: relay. */
export const RELAY_AFTER_MS = 5_000;
/** Longer than conntrack's 30 s timeout for unreplied UDP. */
export const QUIET_MS = 35_000;
/** Punches while relayed happen at multiples of this (wall clock), on both ends. */
export const ROUND_MS = 40_000;

export interface RelayEntry {
  /** The peer's own allowed IPs, to give back. */
  readonly allowedIps: readonly string[];
  readonly sinceMs: number;
  /** quiet: the direct peer sends nothing; punching: a direct punch is under way since `atMs`. */
  readonly phase: "quiet" | "punching";
  readonly atMs: number;
  /** When the next direct punch is due (quiet phase). */
  readonly nextPunchMs: number;
}

export interface RelayInput {
  readonly device: WgDevice;
  /** The registry's key on this interface ("" when unknown: then nothing is relayed). */
  readonly registryPublicKey: string;
  /** The registry forwards between peers. */
  readonly relayAvailable: boolean;
  /** Relayed peers (persisted across restarts). */
  readonly state: ReadonlyMap<string, RelayEntry>;
  /** What decide() wrote (its punch records). */
  readonly applied: ReadonlyMap<string, AppliedRecord>;
  /** Where the registry sees each peer (where a direct punch goes). */
  readonly registry: ReadonlyMap<string, Endpoint | null>;
  /** When each peer's receive counter last grew: a peer reaching us is not relayed. */
  readonly rxGrewAtMs?: ReadonlyMap<string, number>;
  readonly nowMs: number;
  readonly keepaliveSec?: number;
  readonly healthyHandshakeMs?: number;
  readonly maxPunchAttempts?: number;
  /** Defaults RELAY_AFTER_MS, QUIET_MS, ROUND_MS (tests shorten them). */
  readonly relayAfterMs?: number;
  readonly quietMs?: number;
  readonly roundMs?: number;
}

export interface RelayDecision {
  readonly publicKey: string;
  readonly action: "relay" | "direct-again" | "punch" | "quiet" | "unrelay";
  readonly reason: string;
}

export interface RelayResult {
  readonly updates: PeerUpdate[];
  readonly state: Map<string, RelayEntry>;
  readonly decisions: RelayDecision[];
  readonly nextDueMs: number | null;
}

export function nextRound(ms: number, roundMs = ROUND_MS): number {
  return Math.ceil(ms / roundMs) * roundMs;
}

function working(peer: WgPeer, now: number, healthyMs: number): boolean {
  return peer.lastHandshakeMs > 0 && now - peer.lastHandshakeMs < healthyMs;
}

export function planRelay(input: RelayInput): RelayResult {
  const now = input.nowMs;
  const healthyMs = input.healthyHandshakeMs ?? HEALTHY_HANDSHAKE_MS;
  const keepalive = input.keepaliveSec ?? DEFAULT_KEEPALIVE_SEC;
  const maxAttempts = input.maxPunchAttempts ?? MAX_PUNCH_ATTEMPTS;
  const relayAfterMs = input.relayAfterMs ?? RELAY_AFTER_MS;
  const quietMs = input.quietMs ?? QUIET_MS;
  const roundMs = input.roundMs ?? ROUND_MS;
  const state = new Map(input.state);
  const decisions: RelayDecision[] = [];
  const peerUpdates: PeerUpdate[] = [];
  let nextDueMs: number | null = null;
  const due = (ms: number) => {
    nextDueMs = nextDueMs === null ? ms : Math.min(nextDueMs, ms);
  };
  const registryPeer = input.device.peers.find((p) => p.publicKey === input.registryPublicKey);
  // The registry peer's allowed IPs after this pass: its own, plus those of every relayed peer.
  let registryIps = registryPeer ? [...registryPeer.allowedIps] : [];
  let registryIpsChanged = false;

  /** Moves the peer's addresses to the registry's peer and keeps the direct peer quiet until the next round. */
  const relay = (peer: WgPeer, reason: string): void => {
    const nextPunchMs = nextRound(now + quietMs, roundMs);
    registryIps = [...registryIps, ...peer.allowedIps.filter((c) => !registryIps.includes(c))];
    registryIpsChanged = true;
    peerUpdates.push({ publicKey: peer.publicKey, persistentKeepaliveSec: 0, recreate: { allowedIps: [] } });
    state.set(peer.publicKey, { allowedIps: [...peer.allowedIps], sinceMs: now, phase: "quiet", atMs: now, nextPunchMs });
    due(nextPunchMs);
    decisions.push({ publicKey: peer.publicKey, action: "relay", reason });
  };

  for (const peer of input.device.peers) {
    const key = peer.publicKey;
    if (key === input.registryPublicKey) continue;
    const entry = state.get(key);
    if (entry) {
      if (working(peer, now, healthyMs)) {
        // The direct path answers: give the addresses back (WireGuard moves them off the registry peer).
        peerUpdates.push({ publicKey: key, allowedIps: [...entry.allowedIps] });
        registryIps = registryIps.filter((c) => !entry.allowedIps.includes(c));
        state.delete(key);
        decisions.push({ publicKey: key, action: "direct-again", reason: "a direct handshake succeeded; routing the peer directly again" });
        continue;
      }
      if (!input.relayAvailable || !registryPeer) {
        peerUpdates.push({ publicKey: key, allowedIps: [...entry.allowedIps] });
        registryIps = registryIps.filter((c) => !entry.allowedIps.includes(c));
        state.delete(key);
        decisions.push({ publicKey: key, action: "unrelay", reason: "the registry no longer relays; routing the peer directly again" });
        continue;
      }
      const target = input.registry.get(key) ?? null;
      if (entry.phase === "quiet" && now >= entry.nextPunchMs && target && !peer.hasPresharedKey) {
        peerUpdates.push({ publicKey: key, endpoint: target, persistentKeepaliveSec: keepalive, recreate: { allowedIps: [] } });
        state.set(key, { ...entry, phase: "punching", atMs: now });
        due(now + relayAfterMs);
        decisions.push({ publicKey: key, action: "punch", reason: "relayed; trying the direct path again, in step with the peer" });
      } else if (entry.phase === "punching" && now - entry.atMs >= relayAfterMs) {
        const nextPunchMs = nextRound(now + quietMs, roundMs);
        peerUpdates.push({ publicKey: key, persistentKeepaliveSec: 0, recreate: { allowedIps: [] } });
        state.set(key, { ...entry, phase: "quiet", atMs: now, nextPunchMs });
        due(nextPunchMs);
        decisions.push({ publicKey: key, action: "quiet", reason: "no direct handshake; staying relayed and quiet so stale NAT state can expire" });
      } else {
        due(entry.phase === "quiet" ? entry.nextPunchMs : entry.atMs + relayAfterMs);
      }
      continue;
    }
    // Not relayed yet: relay when our punches at the registry's endpoint got no handshake.
    const record = input.applied.get(key);
    if (!input.relayAvailable || !registryPeer || peer.hasPresharedKey || !record || working(peer, now, healthyMs)) continue;
    if (record.attempts < maxAttempts || !endpointsEqual(peer.endpoint, record.endpoint)) continue;
    // The peer is reaching us directly: its handshake is under way, and relaying
    // alone (the peer would not) would break the pair.
    const grewAt = input.rxGrewAtMs?.get(key);
    const waitUntil = Math.max(record.atMs + relayAfterMs, grewAt === undefined ? 0 : grewAt + HEARING_GRACE_MS);
    if (now < waitUntil) {
      due(waitUntil);
      continue;
    }
    relay(peer, `no direct handshake after ${record.attempts} punches; relaying through the registry`);
  }
  const updates: PeerUpdate[] = [];
  // The registry peer takes the addresses first; then the direct peers are re-created without them.
  if (registryPeer && registryIpsChanged) updates.push({ publicKey: registryPeer.publicKey, allowedIps: registryIps });
  updates.push(...peerUpdates);
  return { updates, state, decisions, nextDueMs };
}

/** Updates that give every relayed peer its addresses back (on exit, or after a crash). */
export function restoreUpdates(state: ReadonlyMap<string, RelayEntry>): PeerUpdate[] {
  return [...state].map(([publicKey, entry]) => ({ publicKey, allowedIps: [...entry.allowedIps] }));
}
