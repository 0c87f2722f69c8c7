/**
 * The node's one decision, as a pure function: given the local WireGuard
 * interface, what the registry says about each peer, what this agent wrote
 * before, and the time — which peers get which endpoint, and which are
 * punched afresh.
 *
 * Rules, in order, per local peer:
 *  1. Only endpoints (and a keepalive) are ever changed: never keys, allowed
 *     IPs or the set of peers. (A punch removes and re-adds a peer with the
 *     same key and allowed IPs; see 6.)
 *  2. A peer the registry does not know, or knows without an endpoint, is
 *     left alone.
 *  3. A working tunnel is never broken: a peer that handshook recently keeps
 *     its endpoint — unless that endpoint is exactly what this agent wrote
 *     earlier and the registry now reports another one (the peer's NAT mapping
 *     moved, e.g. its router rebooted). An endpoint that WireGuard found by
 *     roaming, or that the user set, is kept while it works.
 *  4. Otherwise (no endpoint, or no recent handshake) the registry's endpoint
 *     is written, with a keepalive so the NAT mapping stays open.
 *  5. A peer whose endpoint already equals the registry's is left alone,
 *     except that it gets a persistent keepalive if it has none, and that a
 *     punch this agent started is retried (6).
 *  6. Punching. WireGuard retries a handshake only every 5 s, and setting an
 *     endpoint does not make it send sooner; a peer added anew initiates at
 *     once. So an endpoint for a peer without a working session is written by
 *     re-creating the peer (same key, allowed IPs, keepalive), and when no
 *     handshake follows within `punchRetryMs` it is re-created again, up to
 *     `maxPunchAttempts` times; after that WireGuard's own retries and the
 *     keepalive carry on. Peers with a preshared key are never re-created (the
 *     key is never read, so it could not be restored): they get the endpoint
 *     only. When the registry reports that this node's own endpoint moved,
 *     every peer this agent punched is punched again: the paths the peers knew
 *     lead to a mapping that no longer exists. A peer without a working
 *     session that is sending us authenticated packets is not punched until
 *     HEARING_GRACE_MS after the last of them: its handshake is under way, and
 *     re-creating the peer would kill it.
 *  7. Where to look, in order (targetsFor): a peer behind the same public
 *     address as this node (the same NAT, which may not hairpin) at the LAN
 *     (IPv4) candidates it reported to the registry; then, when this node has
 *     a global IPv6 address, at the global IPv6 candidates the peer reported
 *     (no NAT there, only stateful firewalls, which both ends open by
 *     punching at once: the registry pushes each end's candidates to the
 *     other at the same moment); then at its public mapping. Each punch retry
 *     moves to the next. A working path is never moved to a better place
 *     (rule 3): IPv6 is preferred to IPv4 only for a peer not yet reached.
 *     ULA, link-local and other non-global IPv6 candidates are never tried.
 *  8. A new first place. When the first place to look for a peer without a
 *     working session is not where this agent's punching began (the peer
 *     reported a candidate only now, typically its IPv6 address once its
 *     agent started), or the peer sits at a later place that this agent did
 *     not write (an agent restarted), punching starts over at the first
 *     place, attempts counted afresh.
 *  9. A node without NAT (the registry sees it at one of its own addresses)
 *     does not punch first: it points the peer at its endpoint and waits
 *     PUBLIC_DEFER_MS for the peer's initiation, which gets through to it
 *     whatever the peer's NAT; only then does it punch (a firewall in front
 *     of it may need its packet). Both ends punching at once let the public
 *     end re-create its peer a moment after the other end's handshake had
 *     completed: the session was gone on the public side only, and the pair
 *     fell back to the relay (4 runs in 20, public host against a symmetric
 *     NAT, in the lab). On a LAN, where nothing drops either end's first
 *     packet, two initiations at once cross: each end answers the other's,
 *     which discards its own, and both answers are refused (5 s lost, 1 run
 *     in 10 in the lab): there the end with the higher key waits the same way.
 */
import ipaddr from "ipaddr.js";
import { endpointsEqual, formatEndpoint } from "../wg/endpoint.js";
import { isGlobalIpv6 } from "./candidates.js";
import type { PathKind } from "../util/path.js";
import type { Endpoint, PeerUpdate, WgDevice, WgPeer } from "../wg/types.js";

/**
 * WireGuard re-handshakes every 120 s (REKEY_AFTER_TIME) while traffic flows,
 * and a keepalive makes traffic flow; a handshake older than 120 s plus a few
 * retry ticks (REKEY_TIMEOUT, 5 s) means the session is not renewing.
 */
export const HEALTHY_HANDSHAKE_MS = 135_000;
export const DEFAULT_KEEPALIVE_SEC = 25;
export const PUNCH_RETRY_MS = 1_000;
export const MAX_PUNCH_ATTEMPTS = 3;
/** How long a node without NAT waits for a peer's initiation before punching itself (rule 9). */
export const PUBLIC_DEFER_MS = 300;
/**
 * Authenticated packets arriving from a peer without a working session (its
 * receive counter grew: WireGuard counts only handshake messages and data it
 * could decrypt) mean the peer is reaching us and a handshake is under way;
 * punching now would remove the peer and kill it, and the peer would then
 * keep sending on a session we no longer have until its own timers give up
 * (about 15 s). Wait this long after the last growth instead.
 */
export const HEARING_GRACE_MS = 10_000;

export interface DecideOptions {
  readonly healthyHandshakeMs?: number;
  readonly defaultKeepaliveSec?: number;
  /** Re-create peers to punch at once (rule 6). Default true. */
  readonly recreate?: boolean;
  readonly punchRetryMs?: number;
  readonly maxPunchAttempts?: number;
}

/** What this agent wrote for one peer, and how often it punched there. */
export interface AppliedRecord {
  readonly endpoint: Endpoint;
  /** When it was last written (or punched). */
  readonly atMs: number;
  /** Punches at this endpoint so far (0 when written without re-creating). */
  readonly attempts: number;
  /** The first place to look when this punching began (rule 8); absent: not written by decide(). */
  readonly lead?: Endpoint;
  /** Written without a punch by a node without NAT, which punches only if no handshake follows (rule 9). */
  readonly deferred?: boolean;
}

export interface DecideInput {
  readonly device: WgDevice;
  /** The registry's endpoint for each public key it knows. */
  readonly registry: ReadonlyMap<string, Endpoint | null>;
  /** What this agent last wrote per public key (on this interface). */
  readonly applied: ReadonlyMap<string, AppliedRecord>;
  readonly nowMs: number;
  /** The registry just reported that this interface's own endpoint changed. */
  readonly selfMoved?: boolean;
  /** When each peer's receive counter was last seen to grow (see rxGrowth). */
  readonly rxGrewAtMs?: ReadonlyMap<string, number>;
  /** Local candidates each peer reported to the registry (its LAN addresses). */
  readonly candidates?: ReadonlyMap<string, readonly Endpoint[]>;
  /** Where the registry sees this interface (its NAT's public address). */
  readonly selfEndpoint?: Endpoint | null;
  /** This node has a global IPv6 address (rule 7). Default false. */
  readonly selfIpv6?: boolean;
  /** This node has no NAT: the registry sees it at one of its own addresses (rule 9). Default false. */
  readonly selfPublic?: boolean;
  readonly options?: DecideOptions;
}

export type Verdict =
  | "set" // endpoint written
  | "punch" // endpoint written by re-creating the peer
  | "repunch" // same endpoint, punched again
  | "keepalive" // endpoint already right; keepalive added
  | "unchanged" // endpoint already right
  | "keep-working" // differs from the registry, but the tunnel works (rule 3)
  | "hearing" // the peer is reaching us since our write; its handshake is under way
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
  /** New records for the peers written in this pass (merge into `applied`). */
  readonly applied: ReadonlyMap<string, AppliedRecord>;
  /** When a pending punch retry is due (epoch ms), or null when none is. */
  readonly nextDueMs: number | null;
}

function show(e: Endpoint | null): string {
  return e ? formatEndpoint(e) : "(none)";
}

function age(ms: number): string {
  return Number.isFinite(ms) ? `${Math.round(ms / 1000)}s` : "ever";
}

export function decide(input: DecideInput): DecideResult {
  const o = input.options ?? {};
  const healthyMs = o.healthyHandshakeMs ?? HEALTHY_HANDSHAKE_MS;
  const keepaliveSec = o.defaultKeepaliveSec ?? DEFAULT_KEEPALIVE_SEC;
  const retryMs = o.punchRetryMs ?? PUNCH_RETRY_MS;
  const maxAttempts = o.maxPunchAttempts ?? MAX_PUNCH_ATTEMPTS;
  const now = input.nowMs;
  const updates: PeerUpdate[] = [];
  const decisions: PeerDecision[] = [];
  const applied = new Map<string, AppliedRecord>();
  let nextDueMs: number | null = null;
  const due = (ms: number) => {
    nextDueMs = nextDueMs === null ? ms : Math.min(nextDueMs, ms);
  };

  const canPunch = (peer: WgPeer) => o.recreate !== false && !peer.hasPresharedKey;
  /** The update that writes `to` into `peer`, punching when allowed. */
  const write = (peer: WgPeer, to: Endpoint, attempts: number, lead: Endpoint, now_ = false): { update: PeerUpdate; punched: boolean } => {
    const keepalive = peer.persistentKeepaliveSec > 0 ? peer.persistentKeepaliveSec : keepaliveSec;
    // Rule 9: a node without NAT lets the peer's initiation come first; so does the end with the higher key on a LAN.
    const lan = !isGlobalIpv6(to.ip) && (input.candidates?.get(peer.publicKey) ?? []).some((c) => endpointsEqual(c, to));
    const yields = input.selfPublic || (lan && input.device.publicKey > peer.publicKey);
    if (canPunch(peer) && attempts === 1 && yields && !input.selfMoved && !now_) {
      applied.set(peer.publicKey, { endpoint: to, atMs: now, attempts: 0, lead, deferred: true });
      due(now + PUBLIC_DEFER_MS);
      return { update: { publicKey: peer.publicKey, endpoint: to, persistentKeepaliveSec: keepalive }, punched: false };
    }
    if (canPunch(peer)) {
      applied.set(peer.publicKey, { endpoint: to, atMs: now, attempts, lead });
      if (attempts < maxAttempts) due(now + retryMs);
      return {
        update: { publicKey: peer.publicKey, endpoint: to, persistentKeepaliveSec: keepalive, recreate: { allowedIps: [...peer.allowedIps] } },
        punched: true,
      };
    }
    applied.set(peer.publicKey, { endpoint: to, atMs: now, attempts: 0, lead });
    return {
      update: { publicKey: peer.publicKey, endpoint: to, ...(peer.persistentKeepaliveSec > 0 ? {} : { persistentKeepaliveSec: keepaliveSec }) },
      punched: false,
    };
  };

  for (const peer of input.device.peers) {
    const key = peer.publicKey;
    const target = input.registry.get(key) ?? null;
    const current = peer.endpoint;
    const targets = target ? targetsFor(target, input.candidates?.get(key) ?? [], input.selfEndpoint ?? null, input.selfIpv6 ?? false) : [];
    const onTarget = targets.findIndex((t) => endpointsEqual(current, t));
    const note = (verdict: Verdict, reason: string) => decisions.push({ publicKey: key, verdict, from: current, to: target, reason });

    if (!target) {
      note("unknown", "the registry has no endpoint for this peer");
      continue;
    }
    const ageMs = peer.lastHandshakeMs > 0 ? now - peer.lastHandshakeMs : Infinity;
    const working = ageMs < healthyMs;
    const record = input.applied.get(key);
    const ours = record !== undefined && endpointsEqual(current, record.endpoint);
    const grewAt = input.rxGrewAtMs?.get(key);
    if (!working && !input.selfMoved && grewAt !== undefined && now - grewAt < HEARING_GRACE_MS) {
      due(grewAt + HEARING_GRACE_MS);
      note("hearing", `the peer is reaching us${current ? ` from ${show(current)}` : ""}; letting WireGuard finish the handshake`);
      continue;
    }

    const first = targets[0] as Endpoint;
    // Rule 8: a new first place (or a later place not of our making) for a peer not reached yet.
    const newLead = ours ? record.lead !== undefined && !endpointsEqual(record.lead, first) : onTarget > 0;
    if (onTarget > 0 && !working && !input.selfMoved && newLead) {
      const { update, punched } = write(peer, first, 1, first);
      updates.push(update);
      const why = ours ? `the peer is now to be found first at ${show(first)}` : `no handshake at ${show(current)}, which this agent did not write`;
      note(punched ? "punch" : "set", `${why}; trying ${show(first)}${placeNote(first, target)}`);
      continue;
    }
    if (onTarget >= 0) {
      const here = targets[onTarget] as Endpoint;
      // The next candidate to try when this one gets no answer (LAN first, then the public mapping).
      const next = targets[(onTarget + 1) % targets.length] as Endpoint;
      if (ours && canPunch(peer) && input.selfMoved && endpointsEqual(here, target)) {
        const { update } = write(peer, here, 1, first);
        updates.push(update);
        note("repunch", `this node's own mapping moved; punching ${show(here)} again`);
      } else if (ours && !working && canPunch(peer) && record.deferred) {
        if (now - record.atMs >= PUBLIC_DEFER_MS) {
          const { update } = write(peer, here, 1, record.lead ?? here, true);
          updates.push(update);
          note("punch", `no handshake ${age(now - record.atMs)} after pointing at ${show(here)}; punching it`);
        } else {
          due(record.atMs + PUBLIC_DEFER_MS);
          note("unchanged", `pointed at ${show(here)}; waiting for the peer's own punch first`);
        }
      } else if (ours && !working && canPunch(peer) && record.attempts > 0 && record.attempts < maxAttempts) {
        if (now - record.atMs >= retryMs) {
          const { update } = write(peer, next, record.attempts + 1, record.lead ?? first);
          updates.push(update);
          note("repunch", `no handshake ${age(now - record.atMs)} after punching ${show(here)}; punch ${record.attempts + 1} of ${maxAttempts} at ${show(next)}`);
        } else {
          due(record.atMs + retryMs);
          note("unchanged", `punched ${show(here)}; waiting for a handshake`);
        }
      } else if (peer.persistentKeepaliveSec > 0) {
        note("unchanged", `already at ${show(here)}`);
      } else {
        updates.push({ publicKey: key, persistentKeepaliveSec: keepaliveSec });
        note("keepalive", `already at ${show(here)}; adding a ${keepaliveSec}s keepalive`);
      }
      continue;
    }
    if (working && !ours) {
      note("keep-working", `handshook ${age(ageMs)} ago at ${show(current)}; not switching to ${show(target)}`);
      continue;
    }
    const { update, punched } = write(peer, first, 1, first);
    updates.push(update);
    const lan = placeNote(first, target);
    const why = working
      ? `registry moved it from ${show(current)} to ${show(first)}${lan}`
      : current
        ? `no handshake for ${age(ageMs)} at ${show(current)}; trying ${show(first)}${lan}`
        : `no endpoint yet; trying ${show(first)}${lan}`;
    note(punched ? "punch" : "set", why);
  }
  return { updates, decisions, applied, nextDueMs };
}

/** Why a place other than the registry's endpoint comes first, for the log. */
function placeNote(first: Endpoint, registryEndpoint: Endpoint): string {
  if (endpointsEqual(first, registryEndpoint)) return "";
  return isGlobalIpv6(first.ip) ? " (its IPv6 address first: both ends have IPv6)" : " (same public address as ours: its LAN address first)";
}

/**
 * Where to look for a peer, in order (rule 7). A peer behind the same public
 * address as ours is behind the same NAT, which may not hairpin: its LAN
 * (IPv4) candidates come first. Then, when this node has a global IPv6
 * address, the peer's global IPv6 candidates. Then its public mapping (the
 * registry's endpoint). Non-global IPv6 candidates (ULA, link-local) are
 * never tried, nor IPv6 ones when this node has no IPv6.
 */
export function targetsFor(registryEndpoint: Endpoint, candidates: readonly Endpoint[], self: Endpoint | null, selfIpv6 = false): Endpoint[] {
  const sameNat = self !== null && self.ip === registryEndpoint.ip;
  const lan = sameNat ? candidates.filter((c) => !c.ip.includes(":")) : [];
  const v6 = selfIpv6 ? candidates.filter((c) => isGlobalIpv6(c.ip)) : [];
  const out: Endpoint[] = [];
  for (const c of [...lan, ...v6, registryEndpoint]) if (!out.some((o) => endpointsEqual(o, c))) out.push(c);
  return out;
}

/**
 * Whether punching a peer cannot work, so that it is relayed at once (relay
 * rule 10): this node's NAT maps per destination (a symmetric NAT, from the
 * start-up probe), the peer is not public (it reported candidates, and none is
 * the address the registry sees it at), and there is nowhere else to try
 * (no shared LAN, no IPv6 on both ends: its targets are its public mapping
 * alone). A peer that reported nothing (a seed node, or one not started yet)
 * is not judged. Pure.
 */
export function cannotPunch(selfPerDestination: boolean, registryEndpoint: Endpoint | null, candidates: readonly Endpoint[], targets: readonly Endpoint[]): boolean {
  if (!selfPerDestination || !registryEndpoint || candidates.length === 0) return false;
  if (candidates.some((c) => c.ip === registryEndpoint.ip)) return false;
  return targets.length === 1 && endpointsEqual(targets[0] ?? null, registryEndpoint);
}

export interface RxSample {
  readonly rxBytes: number;
  /** When the counter last grew; -Infinity when never seen to. */
  readonly grewAtMs: number;
}

/**
 * Folds one observation of a peer's receive counter into its sample. The
 * first sight of a peer that never handshook yet has received something
 * counts as growth now: a peer answering our first look is mid-handshake.
 * A counter that went down was reset (the peer was re-created).
 */
export function rxGrowth(prev: RxSample | undefined, peer: WgPeer, nowMs: number): RxSample {
  if (!prev) return { rxBytes: peer.rxBytes, grewAtMs: peer.rxBytes > 0 && peer.lastHandshakeMs === 0 ? nowMs : -Infinity };
  if (peer.rxBytes > prev.rxBytes || (peer.rxBytes < prev.rxBytes && peer.rxBytes > 0)) return { rxBytes: peer.rxBytes, grewAtMs: nowMs };
  return { rxBytes: peer.rxBytes, grewAtMs: prev.grewAtMs };
}

/**
 * The path to a peer as this node sees it: down without a working session;
 * lan when WireGuard sends to one of the peer's LAN candidates (not its
 * global IPv6 ones); otherwise
 * direct (relayed paths come with the relay).
 */
export function pathOf(peer: WgPeer, candidates: readonly Endpoint[], nowMs: number, healthyMs = HEALTHY_HANDSHAKE_MS): PathKind {
  const working = peer.lastHandshakeMs > 0 && nowMs - peer.lastHandshakeMs < healthyMs;
  if (!working) return "down";
  // A global IPv6 candidate, or a public host's own IPv4 address, is a public address: reaching it is direct, not lan.
  if (candidates.some((c) => endpointsEqual(c, peer.endpoint) && isLanAddress(c.ip))) return "lan";
  return "direct";
}

/** A private address (RFC 1918, carrier-grade NAT space, IPv6 ULA): where only a LAN reaches. */
function isLanAddress(ip: string): boolean {
  try {
    return ["private", "carrierGradeNat", "uniqueLocal"].includes(ipaddr.parse(ip).range());
  } catch {
    return false;
  }
}
