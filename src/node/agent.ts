/**
 * The node agent: keeps the local WireGuard peers pointed where the
 * registries say they are. It reconciles whenever a registry's view changes,
 * when a punch retry is due, and on every refresh tick (local state changes
 * too: handshakes age out). The decision is `decide()`, the registries' views
 * are joined by `Registries`; this file only does the I/O around them.
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
import { tunnelCheck } from "./validate.js";
import { interfaceStatus, type InterfaceStatus, type NodeStatus } from "./status.js";
import { planRelay, type RelayDecision, type RelayEntry } from "./relay.js";
import type { RttMeter } from "./rtt.js";
import { mapLimit } from "../util/limit.js";
import { cannotPunch, decide, MAX_PUNCH_ATTEMPTS, pathOf, rxGrowth, targetsFor, type AppliedRecord, type DecideOptions, type RxSample } from "./decide.js";
import { createRouteCheck, tunnelAddress, type Prober, type RouteCheck } from "./prober.js";
import { LOCAL_HOST, RelayLink } from "./relay-link.js";
import { freeLocalPort } from "./stale.js";
import type { PeerUpdate } from "../wg/types.js";
import type { RegistryView } from "./source.js";
import { Registries, type RegistryPeer, type RegistryRef } from "./registries.js";

export type { RegistryRef } from "./registries.js";
import type { AutoPeers } from "./auto-peers-runner.js";

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
  /** `--auto-peers`: adds the registries' peers inside a prefix (src/node/auto-peers-runner.ts); then the registry is asked for every peer. */
  readonly autoPeers?: AutoPeers | null;
}

function short(key: string): string {
  return key.slice(0, 8);
}

/** What the agent keeps about one WireGuard interface between passes. */
class IfaceState {
  /** The last state read. */
  device: WgDevice | null = null;
  /** Keys of its peers that relayed packets may come from (not the registries'), as of the last pass: checked per packet. */
  relayable: ReadonlySet<string> = new Set();
  /** What this agent wrote per peer. */
  readonly applied = new Map<string, AppliedRecord>();
  /** The registries' endpoint for the interface itself at the last pass (undefined: no pass yet). */
  self: Endpoint | null | undefined = undefined;
  /** Each peer's receive counter and when it last grew. */
  rx = new Map<string, RxSample>();
  /** Peers relayed through a registry. */
  relayed: ReadonlyMap<string, RelayEntry> = new Map();
  /** The relay link to the registries; null until a registry's peer with a tunnel address is proven. */
  link: RelayLink | null = null;
  /** Local ports of endpoints on this machine found with nothing listening (a crashed agent's relay), and all ports checked. */
  readonly stalePorts = new Set<number>();
  readonly checkedPorts = new Set<number>();
  /** The path to each peer, and since when. */
  paths = new Map<string, PathState>();
}

export class NodeAgent {
  private readonly registries: Registries;
  /** Per WireGuard interface, what the agent keeps between passes. */
  private readonly ifaces = new Map<string, IfaceState>();
  private running: Promise<void> | null = null;
  private again = false;
  private timer: Timer | null = null;
  private probeTimer: Timer | null = null;
  private dueTimer: { at: number; handle: Timer } | null = null;
  private stopped = false;
  /** Problems already logged, per interface (or "*" for listing interfaces). */
  private readonly failing = new Map<string, string>();
  private readonly routeCheck: RouteCheck;
  /** The start-up NAT probe: not started, under way, or its answer (this node's NAT maps per destination). */
  private natProbe: "no" | "running" | { readonly perDestination: boolean } = "no";

  constructor(private readonly options: AgentOptions) {
    this.routeCheck = options.routeCheck ?? createRouteCheck(options.logger);
    this.registries = new Registries({
      refs: options.registries,
      clock: options.clock,
      logger: options.logger,
      routeCheck: this.routeCheck,
      onChange: () => void this.reconcile(),
    });
  }

  start(): void {
    // The registries are asked only for the peers this node has: read them first (a failure asks for every peer).
    void this.interest().then((keys) => {
      if (this.stopped) return;
      this.registries.start(this.options.autoPeers ? [] : keys);
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
    this.registries.stop();
    this.options.prober?.close();
    await this.running?.catch(() => {});
    for (const state of this.ifaces.values()) state.link?.close();
    for (const hook of this.stopHooks.splice(0)) {
      try {
        await hook();
      } catch (err) {
        this.options.logger.warn({ err: (err as Error).message }, "error while stopping");
      }
    }
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
    const view = this.registries.merged();
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
    this.registries.setInterest(this.interestOf());
  }

  private async passInterface(iface: string, view: RegistryView): Promise<void> {
    const { wg, logger } = this.options;
    let device = await wg.getDevice(iface);
    // --auto-peers: the registries' peers inside the prefix added, those gone removed; then decide() and the relay see them.
    if (this.options.autoPeers) {
      const auto = await this.options.autoPeers.pass(iface, device, this.registries.views(), this.registries.allKeys(iface), this.options.clock.now());
      if (auto.changed) device = await wg.getDevice(iface);
      if (auto.nextDueMs !== null) this.wakeAt(auto.nextDueMs);
    }
    let state = this.ifaces.get(iface);
    if (!state) this.ifaces.set(iface, (state = new IfaceState()));
    state.device = device;
    const { applied } = state;
    const self = view.endpoints.get(device.publicKey) ?? null;
    const before = state.self;
    const selfMoved = before !== undefined && before !== null && self !== null && !endpointsEqual(before, self);
    state.self = self;
    if (selfMoved) logger.info({ iface, from: formatEndpoint(before), to: formatEndpoint(self) }, "the registry sees this node at a new address");

    const link = this.linkFor(iface, state, this.registries.prove(iface, device, applied));
    // The registries' own peers are never pointed, relayed or reported on.
    const registryKeys = this.registries.keysOn(iface, device);
    state.relayable = new Set(device.peers.flatMap((p) => (registryKeys.has(p.publicKey) ? [] : [p.publicKey])));
    const now = this.options.clock.now();
    const rxGrewAtMs = new Map([...this.rxSamples(state, device, now)].map(([k, v]) => [k, v.grewAtMs]));
    // An endpoint inside the tunnel's own addresses would send WireGuard into itself.
    // Only this device's peers matter: decide() looks at nothing else.
    const inTunnel = tunnelCheck(device);
    // Our own candidates: reported to the registry, and whether we have global IPv6 (then peers' IPv6 candidates are tried first).
    const own = localCandidates(this.options.interfaces?.() ?? networkInterfaces(), new Set(this.ifaces.keys()), device);
    const selfIpv6 = hasGlobalIpv6(own);
    // No NAT in front of us: the registry sees us at an address of our own.
    const selfPublic = self !== null && own.some((c) => c.ip === self.ip);
    // A network change (the registry sees us at a new address): ask again how the NAT maps.
    if (selfMoved && typeof this.natProbe === "object") this.natProbe = "no";
    this.probeNat(device, this.registries.firstProvenHost(iface));
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

    const relayedBefore = state.relayed;
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
    state.relayed = relay.state;
    // Relayed peers belong to the relay planner, not to decide(); a peer left
    // pointing at a dead local port (an agent that crashed while relaying it)
    // has no working path, whatever its last handshake says.
    const stale = await this.staleLocalPorts(state, device, endpoints, registryKeys);
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
    this.notePaths(state, device, view, registryKeys, now);
    this.registries.report(iface, device, own, state.paths);
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
    if (this.options.autoPeers) return []; // every peer: any may be one to add
    return [...this.ifaces.values()].flatMap((s) => (s.device ? [s.device.publicKey, ...s.device.peers.map((p) => p.publicKey)] : []));
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
        this.ifaces.get(iface)?.applied.delete(u.publicKey);
        skipped.add(u.publicKey);
        this.again = true;
        continue;
      }
      kept.push(u);
    }
    return { updates: kept, skipped };
  }

  /** The interface's relay link, with an uplink to every registry whose peer is proven and has a tunnel address; null while none has. */
  private linkFor(iface: string, state: IfaceState, registries: ReadonlyMap<string, RegistryPeer>): RelayLink | null {
    let link = state.link;
    if (this.options.probeIntervalMs === 0 || this.stopped) return link;
    for (const ref of this.options.registries) {
      const peer = registries.get(ref.name);
      if (!peer?.tunnelIp) continue;
      if (!link) {
        link = new RelayLink({
          iface,
          acceptsRelay: this.options.allowRelay ?? true,
          wgPort: () => state.device?.listenPort ?? 0,
          isPeer: (key) => state.relayable.has(key),
          knows: (registry, key) => this.registries.knows(registry, key),
          clock: this.options.clock,
          logger: this.options.logger,
          routed: this.routeCheck,
          ...(this.options.relayBindAddress ? { bindAddress: this.options.relayBindAddress } : {}),
          onAvailable: () => void this.reconcile(),
          // A registry that answers while its watch is down is back: dial it now, not at the next hello.
          onWelcome: () => this.registries.reconnectAnswering(this.registryAnswers),
        });
        state.link = link;
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
  private async staleLocalPorts(state: IfaceState, device: WgDevice, known: ReadonlyMap<string, Endpoint | null>, registryKeys: ReadonlySet<string>): Promise<ReadonlySet<number>> {
    const { stalePorts: stale, link } = state;
    const iface = device.name;
    for (const p of device.peers) {
      const ep = p.endpoint;
      if (registryKeys.has(p.publicKey) || !known.get(p.publicKey) || !ep || ep.ip !== LOCAL_HOST || stale.has(ep.port) || link?.relayedKeyOf(ep)) continue;
      if (state.checkedPorts.has(ep.port)) continue;
      state.checkedPorts.add(ep.port);
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
  private probeNat(device: WgDevice, api: string | null): void {
    const probe = this.options.natProbe;
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
  private notePaths(state: IfaceState, device: WgDevice, view: RegistryView, registryKeys: ReadonlySet<string>, now: number): void {
    const { paths: before, relayed, link } = state;
    const iface = device.name;
    const paths = new Map<string, PathState>();
    for (const p of device.peers) {
      if (registryKeys.has(p.publicKey)) continue;
      const entry = relayed.get(p.publicKey);
      // A direct try counts as relayed until it gets its handshake.
      const relayedNow = (entry !== undefined && (entry.phase === "relayed" || p.lastHandshakeMs < entry.atMs)) || (link?.relayedKeyOf(p.endpoint) ?? null) !== null;
      const health = pathOf(p, view.candidates.get(p.publicKey) ?? [], now, this.options.decideOptions?.healthyHandshakeMs);
      const kind = relayedNow && health !== "down" ? "relayed" : health;
      const old = before.get(p.publicKey);
      paths.set(p.publicKey, { peerPublicKey: p.publicKey, kind, sinceMs: old?.kind === kind ? old.sinceMs : now, endpoint: p.endpoint });
      if (old && old.kind !== kind) this.options.logger.info({ iface, peer: short(p.publicKey), from: old.kind, to: kind }, "path changed");
    }
    state.paths = paths;
  }

  /** The paths this agent last saw, per interface (for status). */
  pathStates(iface: string): readonly PathState[] {
    return [...(this.ifaces.get(iface)?.paths.values() ?? [])];
  }

  /** For `wormhole status`: every interface it manages, read now, with the paths it keeps. */
  async status(): Promise<NodeStatus> {
    const now = this.options.clock.now();
    const interfaces: InterfaceStatus[] = [];
    const view = this.registries.merged();
    for (const [iface, state] of this.ifaces) {
      const device = await this.options.wg.getDevice(iface);
      // Paths as of this read, not as of the last pass.
      const registryKeys = this.registries.keysOn(iface, device);
      if (view) this.notePaths(state, device, view, registryKeys, now);
      const paths = this.pathStates(iface);
      interfaces.push(interfaceStatus(device, paths, registryKeys, NO_NAMES, now, await this.roundTrips(iface, device, paths, registryKeys)));
    }
    const registries = this.registries.status(this.registryAnswers, (name) => this.allLinks().some((l) => l.relaysVia(name)));
    return { source: "agent", atMs: now, registries, interfaces };
  }

  private allLinks(): RelayLink[] {
    return [...this.ifaces.values()].flatMap((s) => (s.link ? [s.link] : []));
  }

  /** Whether the registry `name` answers hellos on some interface's relay link. */
  private readonly registryAnswers = (name: string): boolean => this.allLinks().some((l) => l.answering(name));

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

  private rxSamples(state: IfaceState, device: WgDevice, now: number): Map<string, RxSample> {
    const after = new Map<string, RxSample>();
    for (const p of device.peers) after.set(p.publicKey, rxGrowth(state.rx.get(p.publicKey), p, now));
    state.rx = after;
    return after;
  }

  private pokePeer(device: WgDevice, publicKey: string): void {
    const peer = device.peers.find((p) => p.publicKey === publicKey);
    const ip = peer ? tunnelAddress(peer.allowedIps) : null;
    if (ip) this.options.prober?.poke(ip, device.name);
  }

  /** One hello to the registries on every interface with a relay link; a registry that answers again while its watch is down is dialled now. */
  private hello(): void {
    for (const link of this.allLinks()) link.hello();
    this.registries.reconnectAnswering(this.registryAnswers);
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
