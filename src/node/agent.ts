/**
 * The node agent: keeps the local WireGuard peers pointed where the registry
 * says they are. It reconciles whenever the registry's view changes, when a
 * punch retry is due, and on every refresh tick (local state changes too:
 * handshakes age out). The decision is `decide()`; this file only does the
 * I/O around it.
 */
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { endpointsEqual, formatEndpoint } from "../wg/endpoint.js";
import type { Endpoint, WgDevice, WireGuard } from "../wg/types.js";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { PathState } from "../util/path.js";
import { NO_NAMES } from "../config/names.js";
import { localCandidates } from "./candidates.js";
import { tunnelCheck } from "./validate.js";
import { interfaceStatus, type InterfaceStatus, type NodeStatus } from "./status.js";
import { planRelay, restoreUpdates, type RelayEntry } from "./relay.js";
import type { RttMeter } from "./rtt.js";
import { mapLimit } from "../util/limit.js";
import { loadRelayState, saveRelayState } from "./relay-state.js";
import { decide, pathOf, rxGrowth, type AppliedRecord, type DecideOptions, type RxSample } from "./decide.js";
import { tunnelAddress, type Prober } from "./prober.js";
import type { RegistrySource, RegistryView } from "./source.js";

export interface AgentOptions {
  readonly wg: WireGuard;
  readonly source: RegistrySource;
  /** One interface, or null for every WireGuard interface on the machine. */
  readonly iface: string | null;
  /** Local re-check interval. */
  readonly refreshMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly decideOptions?: DecideOptions;
  /**
   * Sends datagrams through the tunnel: to the registry every
   * `probeIntervalMs` (so it notices a new NAT mapping of ours within that
   * time), and to a peer whose endpoint was written without a punch.
   * Null: none.
   */
  readonly prober?: Prober | null;
  /** Default 1000; 0 turns the registry probe off. */
  readonly probeIntervalMs?: number;
  /** Where relay state is kept across restarts; null: not kept. */
  readonly relayStateDir?: string | null;
  /**
   * The host part of the registry's address as the node dials it. Relaying
   * goes only through the local peer that is provably the registry: the one
   * whose tunnel address (a /32 or /128 allowed IP) or endpoint IP is this
   * host. A registry's own word about its key is not enough: a hostile one
   * could name another peer and have traffic moved to it.
   */
  readonly registryHost?: string | null;
  /**
   * The user allows relaying through the registry. Off by default: a relayed
   * peer's traffic is decrypted and re-encrypted by the registry's WireGuard.
   */
  readonly allowRelay?: boolean;
  /** Relay timings (tests shorten them); see src/node/relay.ts. */
  readonly relayTimings?: { readonly relayAfterMs?: number; readonly quietMs?: number; readonly roundMs?: number };
  /** The machine's interfaces (os.networkInterfaces by default); tests pass their own. */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Measures round trips for `status()`; none: no RTT shown. */
  readonly rttMeter?: RttMeter | null;
}

function short(key: string): string {
  return key.slice(0, 8);
}

export class NodeAgent {
  private view: RegistryView | null = null;
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
  /** Per interface: the peers that report relaying this interface, and when that was first heard. */
  private readonly relayedBy = new Map<string, Map<string, number>>();
  /** Per interface: the path to each peer, and since when. */
  private readonly paths = new Map<string, Map<string, PathState>>();
  /** Per interface: what was last reported (to report only changes). */
  private readonly reportDigest = new Map<string, string>();
  private readonly reportRefused = new Map<string, string>();
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private dueTimer: { at: number; handle: NodeJS.Timeout } | null = null;
  private stopped = false;
  private readonly reported = new Map<string, string>();

  constructor(private readonly options: AgentOptions) {}

  start(): void {
    this.options.source.start((view) => {
      this.view = view;
      void this.reconcile();
    });
    this.timer = setInterval(() => void this.reconcile(), this.options.refreshMs);
    const probeMs = this.options.probeIntervalMs ?? 1_000;
    if (this.options.prober && probeMs > 0) this.probeTimer = setInterval(() => this.probeRegistry(), probeMs);
  }

  private readonly stopHooks: Array<() => Promise<void> | void> = [];

  /** Runs `hook` when the agent stops (after the relay is undone). */
  onStop(hook: () => Promise<void> | void): void {
    this.stopHooks.push(hook);
  }

  /** Stops, and undoes what only a running agent may keep: relayed addresses go back to their peers. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (this.dueTimer) clearTimeout(this.dueTimer.handle);
    this.options.source.stop();
    this.options.prober?.close();
    await this.running?.catch(() => {});
    await this.unrelayAll();
    for (const hook of this.stopHooks.splice(0)) {
      try {
        await hook();
      } catch (err) {
        this.options.logger.warn({ err: (err as Error).message }, "error while stopping");
      }
    }
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
    const { wg, logger } = this.options;
    let ifaces: string[];
    if (this.options.iface) {
      ifaces = [this.options.iface];
    } else {
      try {
        ifaces = await wg.listDevices();
      } catch (err) {
        this.problem("*", `cannot list WireGuard interfaces: ${String(err instanceof Error ? err.message : err)}`);
        return;
      }
    }
    for (const iface of ifaces) {
      try {
        let device = await wg.getDevice(iface);
        // Undoing a crashed run's relay changes allowed IPs: decide on the state after it.
        if (await this.repairRelay(iface, device)) device = await wg.getDevice(iface);
        this.devices.set(iface, device);
        let applied = this.applied.get(iface);
        if (!applied) this.applied.set(iface, (applied = new Map()));
        const self = view.endpoints.get(device.publicKey) ?? null;
        const before = this.selfSeen.get(iface);
        const selfMoved = before !== undefined && before !== null && self !== null && !endpointsEqual(before, self);
        this.selfSeen.set(iface, self);
        if (selfMoved) logger.info({ iface, from: formatEndpoint(before), to: formatEndpoint(self) }, "the registry sees this node at a new address");

        const relayed = this.relayed.get(iface) ?? new Map<string, RelayEntry>();
        const now = this.options.clock.now();
        const rxGrewAtMs = new Map([...this.rxSamples(iface, device, now)].map(([k, v]) => [k, v.grewAtMs]));
        // Relayed peers belong to the relay planner below, not to decide().
        const direct: WgDevice = relayed.size === 0 ? device : { ...device, peers: device.peers.filter((p) => !relayed.has(p.publicKey)) };
        // An endpoint inside the tunnel's own addresses would send WireGuard into itself.
        // Only this device's peers matter: decide() looks at nothing else.
        const inTunnel = tunnelCheck(device);
        const endpoints = new Map<string, Endpoint | null>();
        const candidates = new Map<string, readonly Endpoint[]>();
        for (const p of device.peers) {
          const ep = view.endpoints.get(p.publicKey);
          if (ep !== undefined && (ep === null || !inTunnel(ep))) endpoints.set(p.publicKey, ep);
          const cs = view.candidates.get(p.publicKey)?.filter((c) => !inTunnel(c));
          if (cs && cs.length > 0) candidates.set(p.publicKey, cs);
        }
        const result = decide({
          device: direct,
          registry: endpoints,
          candidates,
          selfEndpoint: self,
          applied,
          nowMs: now,
          selfMoved,
          rxGrewAtMs,
          relayedBy: this.heardRelaying(iface, device.publicKey, view, now),
          ...(this.options.decideOptions ? { options: this.options.decideOptions } : {}),
        });
        for (const [key, record] of result.applied) applied.set(key, record);
        const relay = planRelay({
          device,
          registryPublicKey: this.confirmedRegistry(device, view.registryPublicKey),
          relayAvailable: view.relay && (this.options.allowRelay ?? false),
          state: relayed,
          applied,
          registry: endpoints,
          rxGrewAtMs,
          nowMs: now,
          ...(this.options.decideOptions?.defaultKeepaliveSec !== undefined ? { keepaliveSec: this.options.decideOptions.defaultKeepaliveSec } : {}),
          ...(this.options.decideOptions?.healthyHandshakeMs !== undefined ? { healthyHandshakeMs: this.options.decideOptions.healthyHandshakeMs } : {}),
          ...(this.options.decideOptions?.maxPunchAttempts !== undefined ? { maxPunchAttempts: this.options.decideOptions.maxPunchAttempts } : {}),
          ...this.options.relayTimings,
        });
        const updates = [...result.updates, ...relay.updates];
        if (updates.length > 0) await wg.updatePeers(iface, updates);
        if (relay.decisions.length > 0) {
          for (const d of relay.decisions) logger.info({ iface, peer: short(d.publicKey), action: d.action }, d.reason);
          await this.saveRelayed(iface, relay.state);
        }
        this.relayed.set(iface, relay.state);
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
        this.solved(iface);
        if (view.registryPublicKey && device.peers.some((p) => p.publicKey === view.registryPublicKey)) {
          this.reportIfChanged(iface, device, view, now);
        }
      } catch (err) {
        this.problem(iface, err instanceof Error ? err.message : String(err));
      }
    }
  }

  /** The peers whose reports (passed on by the registry) say they relay this interface, with when each was first heard. */
  private heardRelaying(iface: string, self: string, view: RegistryView, now: number): Map<string, number> {
    const before = this.relayedBy.get(iface);
    const heard = new Map<string, number>();
    for (const [peer, relays] of view.relaying) if (relays.has(self)) heard.set(peer, before?.get(peer) ?? now);
    this.relayedBy.set(iface, heard);
    return heard;
  }

  /**
   * Tells the registry this interface's LAN candidates and its paths, when
   * they changed or the registry connection is new. Not awaited: a slow or
   * refusing registry never holds up the WireGuard work.
   */
  private reportIfChanged(iface: string, device: WgDevice, view: RegistryView, now: number): void {
    const wgNames = new Set(this.devices.keys());
    const candidates = localCandidates(this.options.interfaces?.() ?? networkInterfaces(), wgNames, device);
    const before = this.paths.get(iface) ?? new Map<string, PathState>();
    const paths = new Map<string, PathState>();
    for (const p of device.peers) {
      if (p.publicKey === view.registryPublicKey) continue;
      const relayedNow = this.relayed.get(iface)?.has(p.publicKey) ?? false;
      const kind = relayedNow ? "relayed" : pathOf(p, view.candidates.get(p.publicKey) ?? [], now, this.options.decideOptions?.healthyHandshakeMs);
      const old = before.get(p.publicKey);
      paths.set(p.publicKey, { peerPublicKey: p.publicKey, kind, sinceMs: old?.kind === kind ? old.sinceMs : now, endpoint: p.endpoint });
      if (old && old.kind !== kind) this.options.logger.info({ iface, peer: short(p.publicKey), from: old.kind, to: kind }, "path changed");
    }
    this.paths.set(iface, paths);
    const digest = JSON.stringify([view.generation, candidates, [...paths.values()].map((p) => [p.peerPublicKey, p.kind])]);
    if (this.reportDigest.get(iface) === digest) return;
    this.reportDigest.set(iface, digest);
    this.options.source
      .report({ publicKey: device.publicKey, candidates, paths: [...paths.values()] })
      .then(() => this.reportRefused.delete(iface))
      .catch((err: { code?: number; details?: string; message?: string }) => {
        const why = err.details || err.message || String(err);
        // Refusals are final for this connection; other failures retry on the next change or pass.
        if (err.code !== grpcStatus.PERMISSION_DENIED && err.code !== grpcStatus.UNIMPLEMENTED) this.reportDigest.delete(iface);
        if (this.reportRefused.get(iface) === why) return;
        this.reportRefused.set(iface, why);
        this.options.logger.info(
          { iface, err: why },
          "the registry does not take reports from this node, so peers behind our NAT cannot learn our LAN address (reach the registry at its tunnel address)",
        );
      });
  }

  /**
   * On first sight of an interface, undoes a relay that a previous run left
   * behind (it did not stop cleanly): the peers get their addresses back.
   * Returns whether it changed anything.
   */
  private async repairRelay(iface: string, device: WgDevice): Promise<boolean> {
    if (this.relayed.has(iface)) return false;
    const dir = this.options.relayStateDir;
    let repaired = false;
    if (dir) {
      const left = await loadRelayState(dir, iface);
      const present = new Map([...left].filter(([key]) => device.peers.some((p) => p.publicKey === key)));
      if (present.size > 0) {
        await this.options.wg.updatePeers(iface, restoreUpdates(present));
        this.options.logger.warn({ iface, peers: [...present.keys()].map(short) }, "gave relayed peers their addresses back after an unclean stop");
        repaired = true;
      }
      await saveRelayState(dir, iface, new Map());
    }
    this.relayed.set(iface, new Map());
    return repaired;
  }

  private async saveRelayed(iface: string, state: ReadonlyMap<string, RelayEntry>): Promise<void> {
    if (!this.options.relayStateDir) return;
    try {
      await saveRelayState(this.options.relayStateDir, iface, state);
    } catch (err) {
      this.options.logger.error({ iface, err: (err as Error).message }, "cannot save relay state; a crash now would leave relayed addresses on the registry peer");
    }
  }

  /** Gives every relayed peer its addresses back (on stop). Never throws. */
  private async unrelayAll(): Promise<void> {
    for (const [iface, state] of this.relayed) {
      if (state.size === 0) continue;
      try {
        await this.options.wg.updatePeers(iface, restoreUpdates(state));
        this.relayed.set(iface, new Map());
        await this.saveRelayed(iface, new Map());
        this.options.logger.info({ iface, peers: state.size }, "gave relayed peers their addresses back");
      } catch (err) {
        this.options.logger.error({ iface, err: (err as Error).message }, "could not give relayed peers their addresses back; the next start will");
      }
    }
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
      const paths = this.pathStates(iface);
      interfaces.push(interfaceStatus(device, paths, this.view?.registryPublicKey ?? "", NO_NAMES, now, await this.roundTrips(iface, device, paths)));
    }
    return { source: "agent", atMs: now, interfaces };
  }

  /** One ping to the tunnel address of every peer with a working path (and the registry), at most 16 at a time. */
  private async roundTrips(iface: string, device: WgDevice, paths: readonly PathState[]): Promise<Map<string, number>> {
    const meter = this.options.rttMeter;
    if (!meter) return new Map();
    const working = new Set(paths.filter((p) => p.kind !== "down").map((p) => p.peerPublicKey));
    const registry = this.view?.registryPublicKey ?? "";
    const relayed = this.relayed.get(iface);
    const targets: Array<[string, string]> = [];
    for (const p of device.peers) {
      if (!working.has(p.publicKey) && p.publicKey !== registry) continue;
      // A relayed peer's addresses sit on the registry's peer; its own are in the relay state.
      const host = tunnelAddress(relayed?.get(p.publicKey)?.allowedIps ?? p.allowedIps);
      if (host) targets.push([p.publicKey, host]);
    }
    const rtts = await mapLimit(targets, 16, ([, host]) => meter(host, iface));
    return new Map(targets.flatMap(([key], i) => (rtts[i] === null || rtts[i] === undefined ? [] : [[key, rtts[i] as number]])));
  }

  /**
   * The registry's key when the local peer with that key is provably the
   * registry (its tunnel address or endpoint IP is the host we dial), else "".
   */
  private confirmedRegistry(device: WgDevice, claimed: string): string {
    const host = this.options.registryHost;
    const peer = claimed ? device.peers.find((p) => p.publicKey === claimed) : undefined;
    if (!peer || !host) return "";
    const ok = peer.allowedIps.includes(`${host}/32`) || peer.allowedIps.includes(`${host}/128`) || peer.endpoint?.ip === host;
    if (!ok && !this.reported.has(`registry:${device.name}`)) {
      this.reported.set(`registry:${device.name}`, "unconfirmed");
      this.options.logger.warn(
        { iface: device.name, registry: host },
        "the peer the registry names as itself is neither at the registry's address nor its tunnel address; not relaying through it",
      );
    }
    return ok ? claimed : "";
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

  /** One datagram to the registry's tunnel address on each interface that peers with it. */
  private probeRegistry(): void {
    const key = this.view?.registryPublicKey;
    if (!key) return;
    for (const [iface, device] of this.devices) {
      const peer = device.peers.find((p) => p.publicKey === key);
      if (!peer) continue;
      const ip = tunnelAddress(peer.allowedIps);
      if (ip) {
        this.options.prober?.poke(ip, iface);
      } else if (!this.reported.has(`probe:${iface}`)) {
        this.reported.set(`probe:${iface}`, "no host address");
        this.options.logger.info(
          { iface, allowedIps: peer.allowedIps },
          "the registry peer has no single-host allowed IP to probe; a new NAT mapping of ours reaches the registry only with the next keepalive",
        );
      }
    }
  }

  private wakeAt(atMs: number): void {
    if (this.stopped) return;
    if (this.dueTimer && this.dueTimer.at <= atMs) return;
    if (this.dueTimer) clearTimeout(this.dueTimer.handle);
    const delay = Math.max(0, atMs - this.options.clock.now());
    const handle = setTimeout(() => {
      this.dueTimer = null;
      void this.reconcile();
    }, delay);
    this.dueTimer = { at: atMs, handle };
  }

  /** Logs a problem once per distinct message, not on every pass. */
  private problem(iface: string, message: string): void {
    if (this.reported.get(iface) === message) {
      this.options.logger.debug({ iface, err: message }, "still failing");
      return;
    }
    this.reported.set(iface, message);
    this.options.logger.warn({ iface, err: message }, "cannot update WireGuard interface; will retry");
  }

  private solved(iface: string): void {
    if (this.reported.delete(iface)) this.options.logger.info({ iface }, "WireGuard interface works again");
  }
}
