/**
 * The node agent: keeps the local WireGuard peers pointed where the
 * registries say they are. It reconciles whenever a registry's view changes,
 * when a punch retry is due, and on every refresh tick (local state changes
 * too: handshakes age out). The decision is `decide()`, the registries' views
 * are joined by `ViewMerger`; this file only does the I/O around them.
 */
import type { Clock, Timer } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { endpointsEqual, formatEndpoint } from "../wg/endpoint.js";
import type { Endpoint, WgDevice, WireGuard } from "../wg/types.js";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import type { PathState } from "../util/path.js";
import { NO_NAMES } from "../config/names.js";
import { hasGlobalIpv6, localCandidates } from "./candidates.js";
import type { NatProbeResult } from "./natprobe.js";
import { stunTargetFor } from "../netcheck/target.js";
import { MAX_PEER_PATHS, tunnelCheck } from "./validate.js";
import { interfaceStatus, type InterfaceStatus, type NodeStatus, type RegistryStatus } from "./status.js";
import { planRelay, type RelayDecision, type RelayEntry } from "./relay.js";
import type { RttMeter } from "./rtt.js";
import { mapLimit } from "../util/limit.js";
import { cannotPunch, decide, MAX_PUNCH_ATTEMPTS, pathOf, rxGrowth, targetsFor, type AppliedRecord, type DecideOptions, type RxSample } from "./decide.js";
import { createRouteCheck, tunnelAddress, type Prober, type RouteCheck } from "./prober.js";
import { LOCAL_HOST, RelayLink } from "./relay-link.js";
import { freeLocalPort } from "./stale.js";
import type { PeerUpdate } from "../wg/types.js";
import { ReportError, type RegistrySource, type RegistryView } from "./source.js";
import { ViewMerger } from "./merge.js";

/** One registry the node watches. */
export interface RegistryRef {
  /** Its address as given (host:port): names it in logs and status. */
  readonly name: string;
  readonly source: RegistrySource;
  /**
   * Its host as dialled, and that host's IP addresses (the host itself, or
   * what its name resolved to). The local peer that is this registry is the
   * one whose tunnel address (a /32 or /128 allowed IP) or configured
   * endpoint IP is one of these; the registry's own word about its key is not
   * enough. Its tunnel address is where watch, reports and relayed packets go.
   */
  readonly host: string | null;
  readonly ips: readonly string[];
  /** Its gRPC port, which is also its relay port. */
  readonly port: number;
}

export interface AgentOptions {
  readonly wg: WireGuard;
  /** The registries, in the order given (one or more): watched at once, their views merged, reported to all. */
  readonly registries: readonly RegistryRef[];
  /** One interface, or null for every WireGuard interface on the machine. */
  readonly iface: string | null;
  /** Local re-check interval. */
  readonly refreshMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly decideOptions?: DecideOptions;
  /** Sends a datagram through the tunnel to a peer whose endpoint was written without a punch. Null: none. */
  readonly prober?: Prober | null;
  /**
   * How often the relay link says hello to the registry through the tunnel
   * (so its WireGuard sees a new NAT mapping of ours within that time, and it
   * knows where to hand us relayed packets). Default 1000; 0: never (then
   * nothing is relayed).
   */
  readonly probeIntervalMs?: number;
  /**
   * Relaying through the registry when a peer cannot be reached directly
   * (default true). The registry passes on WireGuard's packets still
   * encrypted: it can delay or drop them, never read or alter them.
   */
  readonly allowRelay?: boolean;
  /** Relay timings (tests shorten them); see src/node/relay.ts. */
  readonly relayTimings?: { readonly relayAfterMs?: number; readonly tryDirectMs?: number; readonly quietMs?: number; readonly roundMs?: number };
  /** Checks that a tunnel address is routed into the interface (`ip route get` by default). */
  readonly routeCheck?: RouteCheck;
  /** Source address of the relay links (tests); default any. */
  readonly relayBindAddress?: string;
  /** The machine's interfaces (os.networkInterfaces by default); tests pass their own. */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Measures round trips for `status()`; none: no RTT shown. */
  readonly rttMeter?: RttMeter | null;
  /**
   * Asks the registry's STUN responder, at start and after each network change, how this node's NAT maps (at
   * the registry's public address, as `wormhole netcheck` does). A NAT that
   * maps per destination makes peers that cannot be punched go straight to
   * the relay. Null or absent: never asked.
   */
  readonly natProbe?: ((host: string) => Promise<NatProbeResult>) | null;
}

function short(key: string): string {
  return key.slice(0, 8);
}

/** The local peer that is the registry on one interface, once proven (see AgentOptions.registryHost). */
interface RegistryPeer {
  readonly publicKey: string;
  /** Its tunnel address: where reports and relayed packets go. */
  readonly tunnelIp: string | null;
}

/** A registry that answers hellos while its watch is down is told to reconnect at most this often. */
export const RECONNECT_GAP_MS = 5_000;

export class NodeAgent {
  /** The registries' views, merged; null until one arrives. */
  private view: RegistryView | null = null;
  private readonly merger: ViewMerger;
  /** When each registry's view last arrived. */
  private readonly viewAt = new Map<string, number>();
  /** When each registry was last told to reconnect (it answered hellos while its watch was down). */
  private readonly reconnectedAt = new Map<string, number>();
  /** Per interface: what this agent wrote per peer. */
  private readonly applied = new Map<string, Map<string, AppliedRecord>>();
  /** Per interface: the registry's endpoint for the interface itself, at the last pass. */
  private readonly selfSeen = new Map<string, Endpoint | null>();
  /** Per interface: the last state read. */
  private readonly devices = new Map<string, WgDevice>();
  /** Per interface: each peer's receive counter and when it last grew. */
  private readonly rx = new Map<string, Map<string, RxSample>>();
  /** Per interface: peers relayed through the registry. */
  private readonly relayed = new Map<string, ReadonlyMap<string, RelayEntry>>();
  /** Per interface: each registry's peer (by registry name), once proven. */
  private readonly registryPeers = new Map<string, Map<string, RegistryPeer>>();
  /** Per interface: the relay link to the registries. */
  private readonly links = new Map<string, RelayLink>();
  /** Per interface: local ports of endpoints on this machine found with nothing listening (a crashed agent's relay). */
  private readonly stalePorts = new Map<string, Set<number>>();
  /** Per interface: the path to each peer, and since when. */
  private readonly paths = new Map<string, Map<string, PathState>>();
  /** Per interface and registry: what was last reported (to report only changes). */
  private readonly reportDigest = new Map<string, string>();
  private readonly reportRefused = new Map<string, string>();
  private running: Promise<void> | null = null;
  private again = false;
  private timer: Timer | null = null;
  private probeTimer: Timer | null = null;
  private dueTimer: { at: number; handle: Timer } | null = null;
  private stopped = false;
  /** Problems already logged, per interface (or "*" for listing interfaces). */
  private readonly failing = new Map<string, string>();
  /** One-time notices already logged, by topic and interface. */
  private readonly noticed = new Set<string>();
  private readonly routeCheck: RouteCheck;
  /** The start-up NAT probe: not started, under way, or its answer (this node's NAT maps per destination). */
  private natProbe: "no" | "running" | { readonly perDestination: boolean } = "no";

  constructor(private readonly options: AgentOptions) {
    if (options.registries.length === 0) throw new Error("the agent needs at least one registry");
    this.routeCheck = options.routeCheck ?? createRouteCheck(options.logger);
    this.merger = new ViewMerger(options.registries.map((r) => r.name));
  }

  start(): void {
    // The registries are asked only for the peers this node has: read them first (a failure asks for every peer).
    void this.interest().then((keys) => {
      if (this.stopped) return;
      for (const registry of this.options.registries) {
        registry.source.start((view) => this.viewArrived(registry.name, view), keys);
      }
    });
    this.timer = this.options.clock.every(this.options.refreshMs, () => void this.reconcile());
    const probeMs = this.options.probeIntervalMs ?? 1_000;
    if (probeMs > 0) this.probeTimer = this.options.clock.every(probeMs, () => this.hello());
  }

  private readonly stopHooks: Array<() => Promise<void> | void> = [];

  /** Runs `hook` when the agent stops. */
  onStop(hook: () => Promise<void> | void): void {
    this.stopHooks.push(hook);
  }

  /**
   * Stops. Relayed peers keep pointing at the closed local sockets: their
   * sessions end, and the next agent punches them afresh (nothing to undo).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.cancel(this.timer);
    if (this.probeTimer) this.options.clock.cancel(this.probeTimer);
    if (this.dueTimer) this.options.clock.cancel(this.dueTimer.handle);
    for (const r of this.options.registries) r.source.stop();
    this.options.prober?.close();
    await this.running?.catch(() => {});
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const hook of this.stopHooks.splice(0)) {
      try {
        await hook();
      } catch (err) {
        this.options.logger.warn({ err: (err as Error).message }, "error while stopping");
      }
    }
  }

  /** A registry's new view: merged with the others', then a pass. */
  private viewArrived(name: string, view: RegistryView): void {
    const now = this.options.clock.now();
    this.viewAt.set(name, now);
    this.merger.update(name, view, now);
    const merged = this.merger.merged();
    if (!merged) return;
    this.view = merged.view;
    for (const d of merged.disagreements) {
      this.notice(`disagree:${d.peer}:${formatEndpoint(d.chosen.endpoint)}:${formatEndpoint(d.other.endpoint)}`, () =>
        this.options.logger.info(
          { peer: short(d.peer), registry: d.chosen.registry, endpoint: formatEndpoint(d.chosen.endpoint), other: d.other.registry, otherEndpoint: formatEndpoint(d.other.endpoint) },
          "registries disagree about a peer's endpoint; taking the one changed last",
        ),
      );
    }
    void this.reconcile();
  }

  /** Resolves when the pass under way, if any (and any it queued), is done; starts none. Never rejects. */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** Resolves when the reconcile pass this call started or joined is done. Never rejects. */
  reconcile(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    const view = this.view;
    if (!view || this.stopped) return;
    let ifaces: string[];
    if (this.options.iface) {
      ifaces = [this.options.iface];
    } else {
      try {
        ifaces = await this.options.wg.listDevices();
        this.solved("*", "WireGuard interfaces can be listed again");
      } catch (err) {
        this.problem("*", `cannot list WireGuard interfaces: ${String(err instanceof Error ? err.message : err)}`);
        return;
      }
    }
    for (const iface of ifaces) {
      try {
        await this.passInterface(iface, view);
        this.solved(iface, "WireGuard interface works again");
      } catch (err) {
        this.problem(iface, err instanceof Error ? err.message : String(err));
      }
    }
    // A peer added to (or removed from) WireGuard: the registries are asked again, for the new set.
    const interest = this.interestOf();
    for (const r of this.options.registries) r.source.setInterest?.(interest);
  }

  private async passInterface(iface: string, view: RegistryView): Promise<void> {
    const { wg, logger } = this.options;
    const device = await wg.getDevice(iface);
    this.devices.set(iface, device);
    let applied = this.applied.get(iface);
    if (!applied) this.applied.set(iface, (applied = new Map()));
    const self = view.endpoints.get(device.publicKey) ?? null;
    const before = this.selfSeen.get(iface);
    const selfMoved = before !== undefined && before !== null && self !== null && !endpointsEqual(before, self);
    this.selfSeen.set(iface, self);
    if (selfMoved) logger.info({ iface, from: formatEndpoint(before), to: formatEndpoint(self) }, "the registry sees this node at a new address");

    const registries = this.registryPeersOf(iface, device, applied);
    const link = this.linkFor(iface, registries);
    // The registries' own peers are never pointed, relayed or reported on.
    const registryKeys = this.registryKeysOf(iface, device);
    const now = this.options.clock.now();
    const rxGrewAtMs = new Map([...this.rxSamples(iface, device, now)].map(([k, v]) => [k, v.grewAtMs]));
    // An endpoint inside the tunnel's own addresses would send WireGuard into itself.
    // Only this device's peers matter: decide() looks at nothing else.
    const inTunnel = tunnelCheck(device);
    // Our own candidates: reported to the registry, and whether we have global IPv6 (then peers' IPv6 candidates are tried first).
    const own = localCandidates(this.options.interfaces?.() ?? networkInterfaces(), new Set(this.devices.keys()), device);
    const selfIpv6 = hasGlobalIpv6(own);
    // No NAT in front of us: the registry sees us at an address of our own.
    const selfPublic = self !== null && own.some((c) => c.ip === self.ip);
    // A network change (the registry sees us at a new address): ask again how the NAT maps.
    if (selfMoved && typeof this.natProbe === "object") this.natProbe = "no";
    this.probeNat(device, registries);
    const perDestination = typeof this.natProbe === "object" && this.natProbe.perDestination;
    const endpoints = new Map<string, Endpoint | null>();
    const candidates = new Map<string, readonly Endpoint[]>();
    const targets = new Map<string, readonly Endpoint[]>();
    const hopeless = new Set<string>();
    for (const p of device.peers) {
      if (registryKeys.has(p.publicKey)) continue;
      const ep = view.endpoints.get(p.publicKey);
      if (ep !== undefined && (ep === null || !inTunnel(ep))) endpoints.set(p.publicKey, ep);
      const cs = view.candidates.get(p.publicKey)?.filter((c) => !inTunnel(c));
      if (cs && cs.length > 0) candidates.set(p.publicKey, cs);
      if (ep) targets.set(p.publicKey, targetsFor(ep, cs ?? [], self, selfIpv6));
      if (ep && cannotPunch(perDestination, ep, cs ?? [], targets.get(p.publicKey) ?? [])) hopeless.add(p.publicKey);
    }

    const relayedBefore = this.relayed.get(iface) ?? new Map<string, RelayEntry>();
    // Peers without NAT: the registry sees them at one of the addresses they report as their own.
    const publicPeers = new Set([...endpoints].flatMap(([key, ep]) => (ep && (candidates.get(key) ?? []).some((c) => c.ip === ep.ip) ? [key] : [])));
    const relay = planRelay({
      device,
      registryKeys,
      relayAvailable: link?.available() ?? false,
      state: relayedBefore,
      applied,
      targets,
      relayedKeyOf: (ep) => link?.relayedKeyOf(ep) ?? null,
      publicPeers,
      rxGrewAtMs,
      cannotPunch: hopeless,
      nowMs: now,
      ...(this.options.decideOptions?.healthyHandshakeMs !== undefined ? { healthyHandshakeMs: this.options.decideOptions.healthyHandshakeMs } : {}),
      ...this.options.relayTimings,
    });
    this.relayed.set(iface, relay.state);
    // Relayed peers belong to the relay planner, not to decide(); a peer left
    // pointing at a dead local port (an agent that crashed while relaying it)
    // has no working path, whatever its last handshake says.
    const stale = await this.staleLocalPorts(iface, device, link, endpoints, registryKeys);
    const direct: WgDevice = {
      ...device,
      peers: device.peers
        .filter((p) => !relay.state.has(p.publicKey))
        .map((p) => (p.endpoint && p.endpoint.ip === LOCAL_HOST && stale.has(p.endpoint.port) ? { ...p, lastHandshakeMs: 0 } : p)),
    };
    const result = decide({
      device: direct,
      registry: endpoints,
      candidates,
      selfEndpoint: self,
      selfIpv6,
      selfPublic,
      applied,
      nowMs: now,
      selfMoved,
      rxGrewAtMs,
      ...(this.options.decideOptions ? { options: this.options.decideOptions } : {}),
    });
    for (const [key, record] of result.applied) applied.set(key, record);
    const relayUpdates = link ? await this.relayUpdates(device, relay.decisions, link, applied, now) : [];
    const { updates, skipped } = await this.withoutLateRecreates(iface, device, [...result.updates, ...relayUpdates]);
    if (updates.length > 0) await wg.updatePeers(iface, updates);
    // A relay step not taken is planned again in the next pass, from where it was.
    for (const key of skipped) {
      const was = relayedBefore.get(key);
      if (was) relay.state.set(key, was);
      else relay.state.delete(key);
    }
    for (const d of relay.decisions) {
      if (skipped.has(d.publicKey)) continue;
      logger.info({ iface, peer: short(d.publicKey), action: d.action }, d.reason);
      // The end that does not initiate a direct try sends on its old session now: that opens its NAT for the initiation.
      if (d.action === "try-direct" && !d.recreate) this.pokePeer(device, d.publicKey);
    }
    if (relay.nextDueMs !== null) this.wakeAt(relay.nextDueMs);
    for (const d of result.decisions) {
      const fields = { iface, peer: short(d.publicKey), endpoint: d.to ? formatEndpoint(d.to) : null, via: view.via };
      if (d.verdict === "unchanged" || d.verdict === "unknown" || d.verdict === "keep-working" || d.verdict === "hearing") {
        logger.debug({ ...fields, verdict: d.verdict }, d.reason);
      } else {
        logger.info({ ...fields, verdict: d.verdict }, d.reason);
      }
      // Written without a punch: make WireGuard want to send there now.
      if (d.verdict === "set") this.pokePeer(device, d.publicKey);
    }
    if (result.nextDueMs !== null) this.wakeAt(result.nextDueMs);
    link?.prune(new Set(relay.state.keys()));
    this.notePaths(iface, device, view, registryKeys, now, link);
    // Reports go to every registry we talk to (which it is needs no proof for that): when it names a peer we have as itself.
    for (const ref of this.options.registries) {
      const own_view = this.merger.viewOf(ref.name);
      if (own_view && (registries.has(ref.name) || device.peers.some((p) => p.publicKey === own_view.registryPublicKey))) this.reportIfChanged(iface, ref, device, own_view, own);
    }
  }

  /**
   * The keys of the registries' peers on this interface: those proven, and
   * those a registry names as itself (a peer we have): neither is ever
   * pointed elsewhere, relayed, or reported on.
   */
  private registryKeysOf(iface: string, device: WgDevice): Set<string> {
    const proven = this.registryPeers.get(iface);
    const keys = new Set<string>();
    for (const ref of this.options.registries) {
      const key = proven?.get(ref.name)?.publicKey ?? this.merger.viewOf(ref.name)?.registryPublicKey;
      if (key && device.peers.some((p) => p.publicKey === key)) keys.add(key);
    }
    return keys;
  }

  /** The keys of this node's interfaces and of their peers, read now; none when they cannot be read. */
  private async interest(): Promise<string[]> {
    try {
      const ifaces = this.options.iface ? [this.options.iface] : await this.options.wg.listDevices();
      const keys: string[] = [];
      for (const iface of ifaces) {
        const device = await this.options.wg.getDevice(iface);
        keys.push(device.publicKey, ...device.peers.map((p) => p.publicKey));
      }
      return keys;
    } catch {
      return [];
    }
  }

  /** The keys the registry must tell this node about, from the interfaces as last read. */
  private interestOf(): string[] {
    return [...this.devices.values()].flatMap((d) => [d.publicKey, ...d.peers.map((p) => p.publicKey)]);
  }

  /** The WireGuard updates that carry out the relay planner's decisions. */
  private async relayUpdates(device: WgDevice, decisions: readonly RelayDecision[], link: RelayLink, applied: Map<string, AppliedRecord>, now: number): Promise<PeerUpdate[]> {
    const keepaliveSec = this.options.decideOptions?.defaultKeepaliveSec ?? 25;
    const updates: PeerUpdate[] = [];
    for (const d of decisions) {
      const peer = device.peers.find((p) => p.publicKey === d.publicKey);
      if (!peer) continue;
      let to: Endpoint;
      if (d.action === "relay" || d.action === "relay-again" || d.action === "kick") to = await link.endpointFor(peer.publicKey);
      else if (d.action === "try-direct" && d.endpoint) to = d.endpoint;
      else continue;
      const keepalive = peer.persistentKeepaliveSec > 0 ? peer.persistentKeepaliveSec : keepaliveSec;
      updates.push({ publicKey: peer.publicKey, endpoint: to, persistentKeepaliveSec: keepalive, ...(d.recreate ? { recreate: { allowedIps: [...peer.allowedIps] } } : {}) });
      // A direct try is ours in decide()'s eyes (it may move it when the registry does), but never punched again by it.
      if (d.action === "try-direct") applied.set(peer.publicKey, { endpoint: to, atMs: now, attempts: this.options.decideOptions?.maxPunchAttempts ?? MAX_PUNCH_ATTEMPTS });
    }
    return updates;
  }

  /**
   * Re-creating a peer drops its session. The decision to do so was taken on
   * a read of the interface that may be a few milliseconds old: a peer that
   * handshook (or heard from its peer) since then is left alone, and looked at
   * again in the next pass. Without this, a handshake that completed between
   * the read and the write was destroyed (seen in the lab: a public host
   * against a symmetric NAT stayed down for seconds).
   */
  private async withoutLateRecreates(iface: string, read: WgDevice, updates: readonly PeerUpdate[]): Promise<{ updates: PeerUpdate[]; skipped: Set<string> }> {
    const skipped = new Set<string>();
    if (!updates.some((u) => u.recreate)) return { updates: [...updates], skipped };
    const fresh = await this.options.wg.getDevice(iface);
    const kept: PeerUpdate[] = [];
    for (const u of updates) {
      const was = read.peers.find((p) => p.publicKey === u.publicKey);
      const now = fresh.peers.find((p) => p.publicKey === u.publicKey);
      if (u.recreate && was && now && (now.lastHandshakeMs > was.lastHandshakeMs || now.rxBytes > was.rxBytes)) {
        this.options.logger.debug({ iface, peer: short(u.publicKey) }, "not re-creating the peer: it handshook since the decision; looking again");
        this.applied.get(iface)?.delete(u.publicKey);
        skipped.add(u.publicKey);
        this.again = true;
        continue;
      }
      kept.push(u);
    }
    return { updates: kept, skipped };
  }

  /** Each registry's local peer on this interface, by registry name: those proven so far (see {@link registryPeer}). */
  private registryPeersOf(iface: string, device: WgDevice, applied: ReadonlyMap<string, AppliedRecord>): Map<string, RegistryPeer> {
    let known = this.registryPeers.get(iface);
    if (!known) this.registryPeers.set(iface, (known = new Map()));
    for (const ref of this.options.registries) {
      const was = known.get(ref.name);
      if (was && device.peers.some((p) => p.publicKey === was.publicKey)) continue;
      known.delete(ref.name);
      const view = this.merger.viewOf(ref.name);
      const found = view ? this.registryPeer(iface, device, ref, view, applied) : null;
      if (found) known.set(ref.name, found);
    }
    return known;
  }

  /**
   * The local peer that is the registry `ref`: the one it names as itself,
   * when its tunnel address is the host we dial, or its endpoint is that host
   * and was set by the user (not written by this agent). Kept once proven, so
   * a registry cannot later steer it to another peer.
   */
  private registryPeer(iface: string, device: WgDevice, ref: RegistryRef, view: RegistryView, applied: ReadonlyMap<string, AppliedRecord>): RegistryPeer | null {
    const ips = ref.ips.length > 0 ? ref.ips : ref.host ? [ref.host] : [];
    const claimed = view.registryPublicKey;
    const peer = claimed ? device.peers.find((p) => p.publicKey === claimed) : undefined;
    if (!peer || ips.length === 0) return null;
    const ok = ips.some(
      (ip) => peer.allowedIps.includes(`${ip}/32`) || peer.allowedIps.includes(`${ip}/128`) || (peer.endpoint?.ip === ip && !applied.has(peer.publicKey)),
    );
    if (!ok) {
      this.notice(`registry:${iface}:${ref.name}`, () =>
        this.options.logger.warn(
          { iface, registry: ref.name },
          "the peer the registry names as itself is neither at the registry's address nor its tunnel address; no reports, no relay",
        ),
      );
      return null;
    }
    const tunnelIp = tunnelAddress(peer.allowedIps);
    if (!tunnelIp) {
      this.notice(`tunnel:${iface}:${ref.name}`, () =>
        this.options.logger.warn(
          { iface, registry: ref.name, allowedIps: peer.allowedIps },
          "the registry's peer has no single-host allowed IP (its tunnel address): no reports, no relay, and a new NAT mapping of ours reaches the registry only with the next keepalive",
        ),
      );
    }
    const found = { publicKey: peer.publicKey, tunnelIp };
    if (tunnelIp && !ips.includes(tunnelIp) && ref.source.useTunnel) {
      const useTunnel = ref.source.useTunnel.bind(ref.source);
      // Only where the machine routes the tunnel address into the interface: anywhere else it is some other network's address.
      void this.routeCheck(tunnelIp, iface).then((ok) => {
        if (!ok || this.stopped) return;
        this.options.logger.info({ iface, registry: ref.name, tunnel: tunnelIp }, "reaching the registry at its tunnel address (watch, reports, relay)");
        useTunnel(tunnelIp);
        // Report through the tunnel now (the report at the address given was refused), not after the next snapshot.
        this.reportDigest.delete(`${iface} ${ref.name}`);
        void this.reconcile();
      });
    }
    return found;
  }

  /** The interface's relay link, with an uplink to every registry whose peer is proven and has a tunnel address; null while none has. */
  private linkFor(iface: string, registries: ReadonlyMap<string, RegistryPeer>): RelayLink | null {
    let link = this.links.get(iface) ?? null;
    if (this.options.probeIntervalMs === 0 || this.stopped) return link;
    for (const ref of this.options.registries) {
      const peer = registries.get(ref.name);
      if (!peer?.tunnelIp) continue;
      if (!link) {
        link = new RelayLink({
          iface,
          acceptsRelay: this.options.allowRelay ?? true,
          wgPort: () => this.devices.get(iface)?.listenPort ?? 0,
          isPeer: (key) => {
            const device = this.devices.get(iface);
            return device?.peers.some((p) => p.publicKey === key) === true && !this.registryKeysOf(iface, device).has(key);
          },
          knows: (registry, key) => (this.merger.viewOf(registry)?.endpoints.get(key) ?? null) !== null,
          clock: this.options.clock,
          logger: this.options.logger,
          routed: this.routeCheck,
          ...(this.options.relayBindAddress ? { bindAddress: this.options.relayBindAddress } : {}),
          onAvailable: () => void this.reconcile(),
        });
        this.links.set(iface, link);
      }
      link.addRegistry(ref.name, peer.tunnelIp, ref.port);
    }
    return link;
  }

  /**
   * Ports on this machine where nothing listens and that peers the registry
   * knows point at (checked once per port): only a relay of ours ever points
   * such a peer there.
   */
  private async staleLocalPorts(
    iface: string,
    device: WgDevice,
    link: RelayLink | null,
    known: ReadonlyMap<string, Endpoint | null>,
    registryKeys: ReadonlySet<string>,
  ): Promise<ReadonlySet<number>> {
    let stale = this.stalePorts.get(iface);
    if (!stale) this.stalePorts.set(iface, (stale = new Set()));
    for (const p of device.peers) {
      const ep = p.endpoint;
      if (registryKeys.has(p.publicKey) || !known.get(p.publicKey) || !ep || ep.ip !== LOCAL_HOST || stale.has(ep.port) || link?.relayedKeyOf(ep)) continue;
      if (this.noticed.has(`port:${iface}:${ep.port}`)) continue;
      this.noticed.add(`port:${iface}:${ep.port}`);
      if (await freeLocalPort(ep.port)) {
        stale.add(ep.port);
        this.options.logger.info({ iface, peer: short(p.publicKey), endpoint: formatEndpoint(ep) }, "the peer points at a local port where nothing listens (left by an agent that stopped while relaying it); punching afresh");
      }
    }
    return stale;
  }

  /**
   * Starts the NAT probe once (and again after a network change), when the registry's peer is known: at the
   * address the node dials, or, when that is inside the tunnel, at the
   * registry peer's endpoint (where WireGuard's own packets go and the STUN
   * responder answers). A NAT that maps per destination starts a new pass.
   */
  private probeNat(device: WgDevice, registries: ReadonlyMap<string, RegistryPeer>): void {
    const probe = this.options.natProbe;
    // The first registry (in the order given) whose peer is proven.
    const api = this.options.registries.find((r) => registries.has(r.name))?.host;
    // It serves only to relay sooner: without relaying, nothing is probed.
    const relaying = this.options.allowRelay !== false && this.options.probeIntervalMs !== 0;
    if (!probe || !relaying || this.natProbe !== "no" || !api) return;
    // As netcheck does: an API address inside the tunnel is probed at the registry peer's endpoint, where WireGuard sends.
    const host = stunTargetFor(api, [device]).host;
    this.natProbe = "running";
    void probe(host).then((r) => {
      this.natProbe = { perDestination: r.mapping === "per-destination" };
      this.options.logger.info(
        { iface: device.name, mapping: r.mapping, stun: host },
        r.mapping === "per-destination" ? `our NAT maps per destination (${r.detail}): peers that are not public, with no LAN or IPv6 path, are relayed at once` : `NAT probe: ${r.detail}`,
      );
      if (r.mapping === "per-destination" && !this.stopped) void this.reconcile();
    });
  }

  /** Works out the path to every peer (for status and reports), logging changes. */
  private notePaths(iface: string, device: WgDevice, view: RegistryView, registryKeys: ReadonlySet<string>, now: number, link: RelayLink | null): void {
    const before = this.paths.get(iface) ?? new Map<string, PathState>();
    const paths = new Map<string, PathState>();
    const relayed = this.relayed.get(iface);
    for (const p of device.peers) {
      if (registryKeys.has(p.publicKey)) continue;
      const entry = relayed?.get(p.publicKey);
      // A direct try counts as relayed until it gets its handshake.
      const relayedNow = (entry !== undefined && (entry.phase === "relayed" || p.lastHandshakeMs < entry.atMs)) || (link?.relayedKeyOf(p.endpoint) ?? null) !== null;
      const health = pathOf(p, view.candidates.get(p.publicKey) ?? [], now, this.options.decideOptions?.healthyHandshakeMs);
      const kind = relayedNow && health !== "down" ? "relayed" : health;
      const old = before.get(p.publicKey);
      paths.set(p.publicKey, { peerPublicKey: p.publicKey, kind, sinceMs: old?.kind === kind ? old.sinceMs : now, endpoint: p.endpoint });
      if (old && old.kind !== kind) this.options.logger.info({ iface, peer: short(p.publicKey), from: old.kind, to: kind }, "path changed");
    }
    this.paths.set(iface, paths);
  }

  /**
   * Tells the registry this interface's candidates (LAN and global IPv6 addresses) and its paths, when
   * they changed or the registry connection is new. Not awaited: a slow or
   * refusing registry never holds up the WireGuard work.
   */
  private reportIfChanged(iface: string, ref: RegistryRef, device: WgDevice, view: RegistryView, candidates: readonly Endpoint[]): void {
    const at = `${iface} ${ref.name}`;
    const all = this.paths.get(iface) ?? new Map<string, PathState>();
    // The registry takes at most MAX_PEER_PATHS paths: the ones that say most (down, then relayed) first.
    const order: Record<string, number> = { down: 0, relayed: 1, lan: 2, direct: 3 };
    const paths = new Map([...all].sort(([, a], [, b]) => (order[a.kind] ?? 4) - (order[b.kind] ?? 4)).slice(0, MAX_PEER_PATHS));
    const digest = JSON.stringify([view.generation, candidates, [...paths.values()].map((p) => [p.peerPublicKey, p.kind])]);
    if (this.reportDigest.get(at) === digest) return;
    this.reportDigest.set(at, digest);
    ref.source
      .report({ publicKey: device.publicKey, candidates, paths: [...paths.values()] })
      .then(() => this.reportRefused.delete(at))
      .catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        // Refusals are final for this connection; other failures retry on the next change or pass.
        if (!(err instanceof ReportError && err.refused)) this.reportDigest.delete(at);
        if (this.reportRefused.get(at) === why) return;
        this.reportRefused.set(at, why);
        this.options.logger.info(
          { iface, registry: ref.name, err: why },
          "the registry does not take reports from this node, so peers behind our NAT cannot learn our LAN address (is the registry's tunnel address routed into the interface?)",
        );
      });
  }

  /** The paths this agent last saw, per interface (for status). */
  pathStates(iface: string): readonly PathState[] {
    return [...(this.paths.get(iface)?.values() ?? [])];
  }

  /** For `wormhole status`: every interface it manages, read now, with the paths it keeps. */
  async status(): Promise<NodeStatus> {
    const now = this.options.clock.now();
    const interfaces: InterfaceStatus[] = [];
    for (const iface of this.devices.keys()) {
      const device = await this.options.wg.getDevice(iface);
      // Paths as of this read, not as of the last pass.
      const registryKeys = this.registryKeysOf(iface, device);
      if (this.view) this.notePaths(iface, device, this.view, registryKeys, now, this.links.get(iface) ?? null);
      const paths = this.pathStates(iface);
      interfaces.push(interfaceStatus(device, paths, registryKeys, NO_NAMES, now, await this.roundTrips(iface, device, paths, registryKeys)));
    }
    return { source: "agent", atMs: now, registries: this.registryStatus(), interfaces };
  }

  /** Each registry: its watch, its key, whether it answers hellos and relays, when its view last came. */
  registryStatus(): RegistryStatus[] {
    return this.options.registries.map((ref) => {
      const peer = [...this.registryPeers.values()].map((m) => m.get(ref.name)).find((p) => p !== undefined);
      const links = [...this.links.values()];
      return {
        name: ref.name,
        health: ref.source.health?.() ?? (this.viewAt.has(ref.name) ? "connected" : "connecting"),
        publicKey: peer?.publicKey ?? null,
        answering: links.some((l) => l.answering(ref.name)),
        relays: links.some((l) => l.relaysVia(ref.name)),
        lastViewMs: this.viewAt.get(ref.name) ?? null,
      };
    });
  }

  /** One ping to the tunnel address of every peer with a working path (and the registry), at most 16 at a time. */
  private async roundTrips(iface: string, device: WgDevice, paths: readonly PathState[], registryKeys: ReadonlySet<string>): Promise<Map<string, number>> {
    const meter = this.options.rttMeter;
    if (!meter) return new Map();
    const working = new Set(paths.filter((p) => p.kind !== "down").map((p) => p.peerPublicKey));
    const targets: Array<[string, string]> = [];
    for (const p of device.peers) {
      if (!working.has(p.publicKey) && !registryKeys.has(p.publicKey)) continue;
      const host = tunnelAddress(p.allowedIps);
      if (host) targets.push([p.publicKey, host]);
    }
    const rtts = await mapLimit(targets, 16, ([, host]) => meter(host, iface));
    return new Map(targets.flatMap(([key], i) => (rtts[i] === null || rtts[i] === undefined ? [] : [[key, rtts[i] as number]])));
  }

  private rxSamples(iface: string, device: WgDevice, now: number): Map<string, RxSample> {
    const before = this.rx.get(iface) ?? new Map<string, RxSample>();
    const after = new Map<string, RxSample>();
    for (const p of device.peers) after.set(p.publicKey, rxGrowth(before.get(p.publicKey), p, now));
    this.rx.set(iface, after);
    return after;
  }

  private pokePeer(device: WgDevice, publicKey: string): void {
    const peer = device.peers.find((p) => p.publicKey === publicKey);
    const ip = peer ? tunnelAddress(peer.allowedIps) : null;
    if (ip) this.options.prober?.poke(ip, device.name);
  }

  /**
   * One hello to the registries on every interface with a relay link. A
   * registry whose watch is down but that answers hellos again (it is back)
   * is dialled now, not when the watch's backoff ends; at most every
   * RECONNECT_GAP_MS.
   */
  private hello(): void {
    const links = [...this.links.values()];
    for (const link of links) link.hello();
    const now = this.options.clock.now();
    for (const ref of this.options.registries) {
      if (ref.source.health?.() !== "unreachable" || !links.some((l) => l.answering(ref.name))) continue;
      if (now - (this.reconnectedAt.get(ref.name) ?? -Infinity) < RECONNECT_GAP_MS) continue;
      this.reconnectedAt.set(ref.name, now);
      ref.source.reconnect?.();
    }
  }

  private wakeAt(atMs: number): void {
    if (this.stopped) return;
    if (this.dueTimer && this.dueTimer.at <= atMs) return;
    if (this.dueTimer) this.options.clock.cancel(this.dueTimer.handle);
    const delay = Math.max(0, atMs - this.options.clock.now());
    const handle = this.options.clock.after(delay, () => {
      this.dueTimer = null;
      void this.reconcile();
    });
    this.dueTimer = { at: atMs, handle };
  }


  /** Logs once per topic. */
  private notice(topic: string, log: () => void): void {
    if (this.noticed.has(topic)) return;
    this.noticed.add(topic);
    log();
  }

  /** Logs a problem once per distinct message, not on every pass. */
  private problem(scope: string, message: string): void {
    if (this.failing.get(scope) === message) {
      this.options.logger.debug({ iface: scope, err: message }, "still failing");
      return;
    }
    this.failing.set(scope, message);
    this.options.logger.warn({ iface: scope, err: message }, scope === "*" ? "cannot list WireGuard interfaces; will retry" : "cannot update WireGuard interface; will retry");
  }

  private solved(scope: string, message: string): void {
    if (this.failing.delete(scope)) this.options.logger.info({ iface: scope }, message);
  }
}
