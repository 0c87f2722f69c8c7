/**
 * The node's one decision, as a pure function: given the local WireGuard
 * interface, what the registry says about each peer, what this agent wrote
 * before, and the time — which peers get which endpoint.
 *
 * Rules, in order, per local peer:
 *  1. Only endpoints (and a keepalive) are ever changed: never keys, allowed
 *     IPs or the set of peers.
 *  2. A peer the registry does not know, or knows without an endpoint, is
 *     left alone.
 *  3. A peer whose endpoint already equals the registry's is left alone,
 *     except that it gets a persistent keepalive if it has none.
 *  4. A working tunnel is never broken: a peer that handshook recently keeps
 *     its endpoint — unless that endpoint is exactly what this agent wrote
 *     earlier and the registry now reports another one (the peer's NAT mapping
 *     moved, e.g. its router rebooted). An endpoint that WireGuard found by
 *     roaming, or that the user set, is kept while it works.
 *  5. Otherwise (no endpoint, or no recent handshake) the registry's endpoint
 *     is written, with a keepalive so the NAT mapping stays open.
 */
import { endpointsEqual, formatEndpoint } from "../wg/endpoint.js";
import type { Endpoint, PeerUpdate, WgDevice } from "../wg/types.js";

/**
 * WireGuard re-handshakes every 120 s (REKEY_AFTER_TIME) while traffic flows,
 * and a keepalive makes traffic flow; a handshake older than 120 s plus a few
 * retry ticks (REKEY_TIMEOUT, 5 s) means the session is not renewing.
 */
export const HEALTHY_HANDSHAKE_MS = 135_000;
export const DEFAULT_KEEPALIVE_SEC = 25;

export interface DecideOptions {
  readonly healthyHandshakeMs?: number;
  readonly defaultKeepaliveSec?: number;
}

export interface DecideInput {
  readonly device: WgDevice;
  /** The registry's endpoint for each public key it knows. */
  readonly registry: ReadonlyMap<string, Endpoint | null>;
  /** What this agent last wrote per public key (on this interface). */
  readonly applied: ReadonlyMap<string, Endpoint>;
  readonly nowMs: number;
  readonly options?: DecideOptions;
}

export type Verdict =
  | "set" // endpoint written
  | "keepalive" // endpoint already right; keepalive added
  | "unchanged" // endpoint already right
  | "keep-working" // differs from the registry, but the tunnel works (rule 4)
  | "unknown"; // registry has nothing for this peer

export interface PeerDecision {
  readonly publicKey: string;
  readonly verdict: Verdict;
  readonly from: Endpoint | null;
  readonly to: Endpoint | null;
  /** A sentence for the log. */
  readonly reason: string;
}

export interface DecideResult {
  readonly updates: PeerUpdate[];
  readonly decisions: PeerDecision[];
}

function show(e: Endpoint | null): string {
  return e ? formatEndpoint(e) : "(none)";
}

export function decide(input: DecideInput): DecideResult {
  const healthyMs = input.options?.healthyHandshakeMs ?? HEALTHY_HANDSHAKE_MS;
  const keepaliveSec = input.options?.defaultKeepaliveSec ?? DEFAULT_KEEPALIVE_SEC;
  const updates: PeerUpdate[] = [];
  const decisions: PeerDecision[] = [];

  for (const peer of input.device.peers) {
    const key = peer.publicKey;
    const target = input.registry.get(key) ?? null;
    const current = peer.endpoint;
    const keepalive = peer.persistentKeepaliveSec > 0 ? {} : { persistentKeepaliveSec: keepaliveSec };
    const note = (verdict: Verdict, reason: string) =>
      decisions.push({ publicKey: key, verdict, from: current, to: target, reason });

    if (!target) {
      note("unknown", "the registry has no endpoint for this peer");
      continue;
    }
    if (endpointsEqual(current, target)) {
      if (peer.persistentKeepaliveSec > 0) {
        note("unchanged", `already at ${show(target)}`);
      } else {
        updates.push({ publicKey: key, ...keepalive });
        note("keepalive", `already at ${show(target)}; adding a ${keepaliveSec}s keepalive`);
      }
      continue;
    }
    const ageMs = peer.lastHandshakeMs > 0 ? input.nowMs - peer.lastHandshakeMs : Infinity;
    const working = ageMs < healthyMs;
    const ours = endpointsEqual(current, input.applied.get(key) ?? null);
    if (working && !ours) {
      note("keep-working", `handshook ${Math.round(ageMs / 1000)}s ago at ${show(current)}; not switching to ${show(target)}`);
      continue;
    }
    updates.push({ publicKey: key, endpoint: target, ...keepalive });
    note(
      "set",
      working
        ? `registry moved it from ${show(current)} to ${show(target)}`
        : current
          ? `no handshake for ${Number.isFinite(ageMs) ? `${Math.round(ageMs / 1000)}s` : "ever"} at ${show(current)}; trying ${show(target)}`
          : `no endpoint yet; trying ${show(target)}`,
    );
  }
  return { updates, decisions };
}
