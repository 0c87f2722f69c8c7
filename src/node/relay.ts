/**
 * When to relay a peer through the registry, and when to try direct again.
 * Pure: the agent carries the decisions out with its relay link
 * (src/node/relay-link.ts), which owns the sockets.
 *
 * Relaying a peer = pointing its WireGuard endpoint at a local socket of the
 * agent, which passes the (still encrypted) packets through our tunnel to the
 * registry and on to the peer. Allowed IPs, routes and keys never change.
 *
 * Rules, per peer (the registry's own peer is never relayed):
 *  1. Relay first when direct fails: a peer without a working session that
 *     this agent punched at every place it knows (one place, or the LAN
 *     candidates and then the public mapping), with no handshake within
 *     RELAY_AFTER_MS of the last punch, is relayed — when the registry
 *     answers our hellos and relays. Pairs that can punch have a handshake
 *     long before that (0.2-0.3 s), so they never relay first. A peer that is
 *     sending us authenticated packets is mid-handshake: it waits.
 *  2. A peer whose endpoint WireGuard moved onto one of our relay sockets by
 *     itself (the other end relays us) is relayed from then on: adopted.
 *  3. While relayed, direct is tried again in the background, at wall-clock
 *     multiples of a round that doubles with each failed try (40 s, 80 s, …,
 *     640 s), so both ends try in the same second; the first try waits at
 *     least QUIET_MS, so that stale NAT state (conntrack's 30 s for unreplied
 *     UDP) left by the failed punches has expired. A try re-creates the peer
 *     at its direct address (the relayed session drops) and lasts
 *     TRY_DIRECT_MS: with a handshake the pair is direct; without, it is
 *     relayed again at once. The relayed path is interrupted for about
 *     TRY_DIRECT_MS plus one handshake per failed try.
 *  4. A relayed peer that handshakes at a direct address (the other end's try
 *     reached us, and WireGuard roamed) is direct again.
 *  5. When the registry stops answering or stops relaying, relayed peers are
 *     handed back to decide(), which punches.
 *  6. Only one end initiates. When both ends re-create their peers at the
 *     same moment, both handshake initiations cross, each end answers the
 *     other's (which discards its own), and both answers are refused: nothing
 *     until WireGuard's next try 5 s later (seen in the lab, one run in ten).
 *     So the end with the lower public key re-creates the peer (it initiates
 *     at once); the other only sets the endpoint, so that it answers, and
 *     re-creates (initiates) only if no handshake came within KICK_MS. For a
 *     direct try, the agent makes the non-initiating end send a packet on
 *     its old session at once, which opens its NAT for the initiation.
 *  7. A relayed peer whose first place to look changed since it was relayed
 *     (it reported a new candidate, typically its IPv6 address, once its
 *     agent started) is tried there at once, not at the next round: the peer
 *     learned our candidates at the same moment and tries us now, so both
 *     ends' firewalls open together. So is a peer adopted (2) before this end
 *     punched anywhere, when its first place is a global IPv6 address: that
 *     is the end whose agent just started, and its first report is what
 *     makes the other end try. The try counts like any other.
 *  8. A direct try that has no handshake KICK_MS into it is initiated once
 *     more by the initiating end (re-created again): the two ends' tries
 *     never start at exactly the same moment, and the first packet of the
 *     earlier one meets the other's firewall still shut.
 *  9. A direct try at a global IPv6 address re-creates the peer at both
 *     ends, not only at the initiating one: behind a stateful IPv6 firewall
 *     the other end must send a packet to the peer to open it, and a poke
 *     sends nothing while its WireGuard waits out its handshake retry timer
 *     (seen in the lab). Initiations that cross (6) are rescued by 8.
 * 10. A peer that cannot be punched (decide.ts cannotPunch: this node's NAT
 *     maps per destination, and the peer is neither public nor reachable over
 *     a shared LAN or IPv6) is relayed as soon as the registry relays, without
 *     waiting for punches to fail (still not while it is heard from).
 *  Peers with a preshared key are relayed and tried by setting the endpoint
 *  only (re-creating would lose the key, which is never read): WireGuard's
 *  next handshake retry (5 s at most) then goes the new way.
 */
import { endpointsEqual } from "../wg/endpoint.js";
import type { Endpoint, WgDevice, WgPeer } from "../wg/types.js";
import { isGlobalIpv6 } from "./candidates.js";
import { HEALTHY_HANDSHAKE_MS, type AppliedRecord } from "./decide.js";

/** No handshake this long after the last punch: relay. */
export const RELAY_AFTER_MS = 1_000;
/** A direct try while relayed lasts this long. */
export const TRY_DIRECT_MS = 1_500;
/** Stale NAT state must expire before the first try (conntrack: 30 s for unreplied UDP). */
export const QUIET_MS = 35_000;
/** After a relay decision, the next look at the interface (to see and report the path it led to). */
export const LOOK_AGAIN_MS = 1_000;
/** The end that does not initiate re-creates the peer itself when no handshake came this long after relaying. */
export const KICK_MS = 1_000;
/** Tries happen at wall-clock multiples of ROUND_MS × 2^tries (tries capped at MAX_DOUBLINGS). */
export const ROUND_MS = 40_000;
export const MAX_DOUBLINGS = 4;

export interface RelayEntry {
  readonly sinceMs: number;
  /** relayed: the endpoint is our relay socket; trying: a direct try is under way since atMs. */
  readonly phase: "relayed" | "trying";
  readonly atMs: number;
  /** Failed direct tries so far. */
  readonly tries: number;
  readonly nextTryMs: number;
  /**
   * Relayed: this end has re-created the peer since it was (re)relayed (it
   * initiated). Trying: the try was sent once more (rule 8).
   */
  readonly initiated: boolean;
  /** The first place to look for the peer when it was relayed or last tried (rule 7); null: none known. */
  readonly lead: Endpoint | null;
}

export interface RelayInput {
  readonly device: WgDevice;
  /** The registries' keys on this interface (never relayed). */
  readonly registryKeys: ReadonlySet<string>;
  /** The registry answers our hellos and relays, and this node allows it. */
  readonly relayAvailable: boolean;
  readonly state: ReadonlyMap<string, RelayEntry>;
  /** What decide() wrote (its punch records). */
  readonly applied: ReadonlyMap<string, AppliedRecord>;
  /** Where each peer may be reached directly, best first (decide's targets). */
  readonly targets: ReadonlyMap<string, readonly Endpoint[]>;
  /** The peer a relay socket endpoint stands for, or null when the endpoint is no relay socket of ours. */
  readonly relayedKeyOf: (ep: Endpoint | null) => string | null;
  /** When each peer's receive counter last grew. */
  readonly rxGrewAtMs?: ReadonlyMap<string, number>;
  /** Peers without NAT: the registry sees them at an address of their own (one of their candidates). */
  readonly publicPeers?: ReadonlySet<string>;
  /** Peers that cannot be punched (rule 10). Default none. */
  readonly cannotPunch?: ReadonlySet<string>;
  readonly nowMs: number;
  readonly healthyHandshakeMs?: number;
  /** Defaults above (tests shorten them). */
  readonly relayAfterMs?: number;
  readonly kickMs?: number;
  readonly tryDirectMs?: number;
  readonly quietMs?: number;
  readonly roundMs?: number;
}

export type RelayAction = "relay" | "adopt" | "try-direct" | "relay-again" | "kick" | "direct-again" | "unrelay";

export interface RelayDecision {
  readonly publicKey: string;
  readonly action: RelayAction;
  /** For try-direct: where to. */
  readonly endpoint?: Endpoint;
  /**
   * Re-create the peer so it initiates a handshake at once: the end with the
   * lower key, or a kick; never for peers with a preshared key.
   */
  readonly recreate: boolean;
  readonly reason: string;
}

export interface RelayResult {
  readonly state: Map<string, RelayEntry>;
  readonly decisions: RelayDecision[];
  readonly nextDueMs: number | null;
}

/** The first wall-clock multiple of the round for try number `tries`, at or after `ms`. */
export function nextTry(ms: number, tries: number, roundMs = ROUND_MS): number {
  const round = roundMs * 2 ** Math.min(tries, MAX_DOUBLINGS);
  return Math.ceil(ms / round) * round;
}

function working(peer: WgPeer, now: number, healthyMs: number): boolean {
  return peer.lastHandshakeMs > 0 && now - peer.lastHandshakeMs < healthyMs;
}

export function planRelay(input: RelayInput): RelayResult {
  const now = input.nowMs;
  const healthyMs = input.healthyHandshakeMs ?? HEALTHY_HANDSHAKE_MS;
  const relayAfterMs = input.relayAfterMs ?? RELAY_AFTER_MS;
  const kickMs = input.kickMs ?? KICK_MS;
  const self = input.device.publicKey;
  const tryMs = input.tryDirectMs ?? TRY_DIRECT_MS;
  const quietMs = input.quietMs ?? QUIET_MS;
  const roundMs = input.roundMs ?? ROUND_MS;
  const state = new Map(input.state);
  const decisions: RelayDecision[] = [];
  let nextDueMs: number | null = null;
  const due = (ms: number) => {
    nextDueMs = nextDueMs === null ? ms : Math.min(nextDueMs, ms);
  };
  /** This end initiates with `peer` (rule 6). */
  const initiates = (peer: WgPeer) => !peer.hasPresharedKey && self < peer.publicKey;
  /**
   * A direct try re-creates the peer at the initiating end; at an IPv6 place
   * at both ends (rule 9): the other end's firewall opens only with a packet
   * it sends, and a poke sends nothing while its WireGuard waits out its
   * handshake retry timer.
   */
  const tryRecreates = (peer: WgPeer, to: Endpoint) => initiates(peer) || (!peer.hasPresharedKey && isGlobalIpv6(to.ip));
  const decide = (peer: WgPeer, action: RelayAction, recreate: boolean, reason: string, endpoint?: Endpoint) => {
    decisions.push({ publicKey: peer.publicKey, action, recreate, reason, ...(endpoint ? { endpoint } : {}) });
    // Look again soon: the path it leads to is then seen (and reported) without waiting for the next try.
    due(now + LOOK_AGAIN_MS);
  };
  const relayedEntry = (tries: number, sinceMs: number, initiated: boolean, lead: Endpoint | null): RelayEntry => {
    const nextTryMs = nextTry(now + quietMs, tries, roundMs);
    due(nextTryMs);
    if (!initiated) due(now + kickMs);
    return { sinceMs, phase: "relayed", atMs: now, tries, nextTryMs, initiated, lead };
  };
  const leadOf = (key: string): Endpoint | null => input.targets.get(key)?.[0] ?? null;
  /**
   * Rule 7: the first place differs from the one known when the peer was
   * relayed; or the peer was adopted before this end tried anything (the
   * other end relayed us first: it started earlier, or cannot punch) and one
   * initiation from here can make the pair direct: the peer is a public host,
   * or its first place is an IPv6 address (whose firewall our report opens).
   * Against a NATed peer that relays us, a try would only interrupt the
   * relay: those wait for the round.
   */
  const newLead = (key: string, entry: RelayEntry, lead: Endpoint | null): boolean =>
    lead !== null && (entry.lead === null ? isGlobalIpv6(lead.ip) || (input.publicPeers?.has(key) ?? false) : !endpointsEqual(entry.lead, lead));

  for (const peer of input.device.peers) {
    const key = peer.publicKey;
    if (input.registryKeys.has(key)) continue;
    const entry = state.get(key);
    const onRelay = input.relayedKeyOf(peer.endpoint) === key;
    if (entry) {
      if (!input.relayAvailable) {
        state.delete(key);
        decide(peer, "unrelay", false, "the registry no longer relays for us; trying the peer directly");
        continue;
      }
      if (entry.phase === "relayed") {
        if (!onRelay && working(peer, now, healthyMs) && peer.endpoint) {
          state.delete(key);
          decide(peer, "direct-again", false, "the peer reached us directly; no longer relayed");
        } else if (now >= entry.nextTryMs && leadOf(key)) {
          const to = leadOf(key) as Endpoint;
          state.set(key, { ...entry, phase: "trying", atMs: now, lead: to, initiated: false });
          due(now + (initiates(peer) ? Math.min(kickMs, tryMs) : tryMs));
          decide(peer, "try-direct", tryRecreates(peer, to), `relayed; trying the direct path again (try ${entry.tries + 1}), in step with the peer`, to);
        } else if (newLead(key, entry, leadOf(key))) {
          const to = leadOf(key) as Endpoint;
          state.set(key, { ...entry, phase: "trying", atMs: now, lead: to, initiated: false });
          due(now + (initiates(peer) ? Math.min(kickMs, tryMs) : tryMs));
          // Adopted, this end has tried nothing: it initiates, whatever the keys say (the other end relays, and sends nothing direct).
          const recreate = entry.lead === null ? !peer.hasPresharedKey : tryRecreates(peer, to);
          decide(peer, "try-direct", recreate, `relayed; the peer is to be found first at ${entry.lead ? "a new place" : "a place not tried yet"}: trying it directly now (try ${entry.tries + 1})`, to);
        } else if (!entry.initiated && !peer.hasPresharedKey && peer.lastHandshakeMs < entry.atMs && now - entry.atMs >= kickMs) {
          state.set(key, { ...entry, initiated: true });
          decide(peer, "kick", true, `no handshake through the relay ${kickMs} ms after relaying; initiating`);
        } else {
          due(entry.nextTryMs);
          if (!entry.initiated && !peer.hasPresharedKey && peer.lastHandshakeMs < entry.atMs) due(entry.atMs + kickMs);
        }
        continue;
      }
      // Trying: a handshake since the try began, away from the relay, makes it direct.
      if (!onRelay && peer.lastHandshakeMs >= entry.atMs && working(peer, now, healthyMs)) {
        state.delete(key);
        decide(peer, "direct-again", false, "a direct handshake succeeded; no longer relayed");
      } else if (now - entry.atMs >= tryMs) {
        const next = relayedEntry(entry.tries + 1, entry.sinceMs, initiates(peer), entry.lead);
        state.set(key, next);
        decide(peer, "relay-again", initiates(peer), `no direct handshake within ${tryMs} ms; relayed again, next try in ${Math.round((next.nextTryMs - now) / 1000)} s`);
      } else if (initiates(peer) && !entry.initiated && entry.lead && now - entry.atMs >= kickMs) {
        state.set(key, { ...entry, initiated: true });
        due(entry.atMs + tryMs);
        decide(peer, "try-direct", true, `no direct handshake ${kickMs} ms into the try; initiating once more`, entry.lead);
      } else {
        due(entry.atMs + (initiates(peer) && !entry.initiated ? Math.min(kickMs, tryMs) : tryMs));
      }
      continue;
    }
    if (onRelay) {
      // Adopted before this end punched anywhere: no place tried yet (rule 7).
      state.set(key, relayedEntry(0, now, true, null));
      decide(peer, "adopt", false, "the peer reaches us through the relay; relayed");
      continue;
    }
    if (!input.relayAvailable || working(peer, now, healthyMs)) continue;
    const record = input.applied.get(key);
    const places = Math.max(1, input.targets.get(key)?.length ?? 1);
    const hopeless = input.cannotPunch?.has(key) ?? false;
    if (!hopeless && (!record || record.attempts < places || !endpointsEqual(peer.endpoint, record.endpoint))) continue;
    // Authenticated packets from the peer: a handshake is under way.
    const grewAt = input.rxGrewAtMs?.get(key);
    const heard = grewAt === undefined ? 0 : grewAt + relayAfterMs;
    const waitUntil = hopeless ? heard : Math.max((record?.atMs ?? 0) + relayAfterMs, heard);
    if (now < waitUntil) {
      due(waitUntil);
      continue;
    }
    state.set(key, relayedEntry(0, now, initiates(peer), leadOf(key)));
    const why = hopeless || !record
      ? "our NAT maps per destination and the peer is not public, with no LAN or IPv6 path: punching cannot work; relaying through the registry at once (end to end encrypted)"
      : `no direct handshake ${Math.round((now - record.atMs) / 100) / 10} s after punching; relaying through the registry (end to end encrypted)`;
    decide(peer, "relay", initiates(peer), why);
  }
  return { state, decisions, nextDueMs };
}
