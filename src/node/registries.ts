/**
 * The registries a node watches, as one: their sources, their views merged
 * (src/node/merge.ts), which local peer is which registry (proven, never
 * taken on a registry's word), reports to each, and dialling a registry
 * again as soon as it answers hellos. The agent asks this; it never talks to
 * a source itself.
 */
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import type { PathState } from "../util/path.js";
import { formatEndpoint } from "../wg/endpoint.js";
import type { Endpoint, WgDevice } from "../wg/types.js";
import type { AppliedRecord } from "./decide.js";
import { ViewMerger } from "./merge.js";
import { tunnelAddress, type RouteCheck } from "./prober.js";
import { ReportError, type RegistrySource, type RegistryView } from "./source.js";
import type { RegistryStatus } from "./status.js";
import { MAX_PEER_PATHS } from "./validate.js";

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

/** The local peer that is a registry on one interface, once proven. */
export interface RegistryPeer {
  readonly publicKey: string;
  /** Its tunnel address: where reports and relayed packets go (null: it has no single-host allowed IP). */
  readonly tunnelIp: string | null;
}

/** A registry that answers hellos while its watch is down is told to reconnect at most this often. */
export const RECONNECT_GAP_MS = 5_000;

export interface RegistriesOptions {
  readonly refs: readonly RegistryRef[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** Checks that a tunnel address is routed into the interface (before watching and reporting there). */
  readonly routeCheck: RouteCheck;
  /** The merged view changed, or reports should go out again: the agent makes a pass. */
  readonly onChange: () => void;
}

function short(key: string): string {
  return key.slice(0, 8);
}

export class Registries {
  private view: RegistryView | null = null;
  private readonly merger: ViewMerger;
  /** When each registry's view last arrived. */
  private readonly viewAt = new Map<string, number>();
  /** When each registry was last told to reconnect. */
  private readonly reconnectedAt = new Map<string, number>();
  /** Per interface, each registry's peer (by registry name), once proven. */
  private readonly proven = new Map<string, Map<string, RegistryPeer>>();
  /** Per interface and registry: what was last reported, and the last refusal logged. */
  private readonly reportDigest = new Map<string, string>();
  private readonly reportRefused = new Map<string, string>();
  private readonly noticed = new Set<string>();
  /** The disagreement last logged per peer (only peers whose registries disagree now: bounded by the view). */
  private readonly disagreeing = new Map<string, string>();
  private stopped = false;

  constructor(private readonly options: RegistriesOptions) {
    if (options.refs.length === 0) throw new Error("the agent needs at least one registry");
    this.merger = new ViewMerger(options.refs.map((r) => r.name));
  }

  /** The registries' views merged; null until one arrives. */
  merged(): RegistryView | null {
    return this.view;
  }

  /** One registry's last view, or null. */
  viewOf(name: string): RegistryView | null {
    return this.merger.viewOf(name);
  }

  /** Whether the registry `name` sees the peer `key` at some endpoint. */
  knows(name: string, key: string): boolean {
    return (this.merger.viewOf(name)?.endpoints.get(key) ?? null) !== null;
  }

  /** Subscribes to every registry, asking for `keys` (none: every peer). */
  start(keys: readonly string[]): void {
    for (const ref of this.options.refs) ref.source.start((view) => this.arrived(ref.name, view), keys);
  }

  setInterest(keys: readonly string[]): void {
    for (const ref of this.options.refs) ref.source.setInterest?.(keys);
  }

  stop(): void {
    this.stopped = true;
    for (const ref of this.options.refs) ref.source.stop();
  }

  /** A registry's new view: merged with the others'; disagreements logged once per peer and pair of values. */
  private arrived(name: string, view: RegistryView): void {
    const now = this.options.clock.now();
    this.viewAt.set(name, now);
    this.merger.update(name, view, now);
    const merged = this.merger.merged();
    if (!merged) return;
    this.view = merged.view;
    const disagreeNow = new Set<string>();
    for (const d of merged.disagreements) {
      disagreeNow.add(d.peer);
      const what = `${d.chosen.registry} ${formatEndpoint(d.chosen.endpoint)} ${d.other.registry} ${formatEndpoint(d.other.endpoint)}`;
      if (this.disagreeing.get(d.peer) === what) continue;
      this.disagreeing.set(d.peer, what);
      this.options.logger.info(
        { peer: short(d.peer), registry: d.chosen.registry, endpoint: formatEndpoint(d.chosen.endpoint), other: d.other.registry, otherEndpoint: formatEndpoint(d.other.endpoint) },
        "registries disagree about a peer's endpoint; taking the one changed last",
      );
    }
    for (const peer of this.disagreeing.keys()) if (!disagreeNow.has(peer)) this.disagreeing.delete(peer);
    this.options.onChange();
  }

  /** Each registry's local peer on this interface, by registry name: those proven so far. */
  prove(iface: string, device: WgDevice, applied: ReadonlyMap<string, AppliedRecord>): ReadonlyMap<string, RegistryPeer> {
    let known = this.proven.get(iface);
    if (!known) this.proven.set(iface, (known = new Map()));
    for (const ref of this.options.refs) {
      const was = known.get(ref.name);
      if (was && device.peers.some((p) => p.publicKey === was.publicKey)) continue;
      known.delete(ref.name);
      const view = this.merger.viewOf(ref.name);
      const found = view ? this.proveOne(iface, device, ref, view, applied) : null;
      if (found) known.set(ref.name, found);
    }
    return known;
  }

  /**
   * The keys of the registries' peers on this interface: the one proven for
   * each registry, else the one it names as itself (a peer we have): neither
   * is ever pointed elsewhere, relayed, or reported on.
   */
  keysOn(iface: string, device: WgDevice): Set<string> {
    const proven = this.proven.get(iface);
    const keys = new Set<string>();
    for (const ref of this.options.refs) {
      const key = proven?.get(ref.name)?.publicKey ?? this.merger.viewOf(ref.name)?.registryPublicKey;
      if (key && device.peers.some((p) => p.publicKey === key)) keys.add(key);
    }
    return keys;
  }

  /** Each registry's last view, or null while it is not connected (its silence proves nothing). */
  views(): Array<{ readonly name: string; readonly view: RegistryView | null }> {
    return this.options.refs.map((ref) => ({ name: ref.name, view: ref.source.health?.() === "unreachable" ? null : this.merger.viewOf(ref.name) }));
  }

  /** Every key that is a registry's: proven on this interface, or named by a registry as its own (whether or not we have it as a peer). */
  allKeys(iface: string): Set<string> {
    const keys = new Set([...(this.proven.get(iface)?.values() ?? [])].map((p) => p.publicKey));
    for (const ref of this.options.refs) {
      const claimed = this.merger.viewOf(ref.name)?.registryPublicKey;
      if (claimed) keys.add(claimed);
    }
    return keys;
  }

  /** The host of the first registry (in the order given) whose peer is proven on this interface, or null. */
  firstProvenHost(iface: string): string | null {
    const proven = this.proven.get(iface);
    return this.options.refs.find((r) => proven?.has(r.name))?.host ?? null;
  }

  /**
   * The local peer that is the registry `ref`: the one it names as itself,
   * when its tunnel address is the host we dial, or its endpoint is that host
   * and was set by the user (not written by this agent). Kept once proven, so
   * a registry cannot later steer it to another peer. Once proven, watch and
   * reports move to its tunnel address when the machine routes it into the
   * interface.
   */
  private proveOne(iface: string, device: WgDevice, ref: RegistryRef, view: RegistryView, applied: ReadonlyMap<string, AppliedRecord>): RegistryPeer | null {
    const { logger } = this.options;
    const ips = ref.ips.length > 0 ? ref.ips : ref.host ? [ref.host] : [];
    const claimed = view.registryPublicKey;
    const peer = claimed ? device.peers.find((p) => p.publicKey === claimed) : undefined;
    if (!peer || ips.length === 0) return null;
    const ok = ips.some(
      (ip) => peer.allowedIps.includes(`${ip}/32`) || peer.allowedIps.includes(`${ip}/128`) || (peer.endpoint?.ip === ip && !applied.has(peer.publicKey)),
    );
    if (!ok) {
      this.notice(`registry:${iface}:${ref.name}`, () =>
        logger.warn({ iface, registry: ref.name }, "the peer the registry names as itself is neither at the registry's address nor its tunnel address; no reports, no relay"),
      );
      return null;
    }
    const tunnelIp = tunnelAddress(peer.allowedIps);
    if (!tunnelIp) {
      this.notice(`tunnel:${iface}:${ref.name}`, () =>
        logger.warn(
          { iface, registry: ref.name, allowedIps: peer.allowedIps },
          "the registry's peer has no single-host allowed IP (its tunnel address): no reports, no relay, and a new NAT mapping of ours reaches the registry only with the next keepalive",
        ),
      );
    }
    if (tunnelIp && !ips.includes(tunnelIp) && ref.source.useTunnel) {
      const useTunnel = ref.source.useTunnel.bind(ref.source);
      // Only where the machine routes the tunnel address into the interface: anywhere else it is some other network's address.
      void this.options.routeCheck(tunnelIp, iface).then((routed) => {
        if (!routed || this.stopped) return;
        logger.info({ iface, registry: ref.name, tunnel: tunnelIp }, "reaching the registry at its tunnel address (watch, reports, relay)");
        useTunnel(tunnelIp);
        // Report through the tunnel now (the report at the address given was refused), not after the next snapshot.
        this.reportDigest.delete(`${iface} ${ref.name}`);
        this.options.onChange();
      });
    }
    return { publicKey: peer.publicKey, tunnelIp };
  }

  /**
   * Tells every registry that names a peer of ours as itself this
   * interface's candidates and paths, when they changed or its connection is
   * new. Not awaited: a slow or refusing registry never holds up the
   * WireGuard work.
   */
  report(iface: string, device: WgDevice, candidates: readonly Endpoint[], all: ReadonlyMap<string, PathState>): void {
    // A registry takes at most MAX_PEER_PATHS paths: the ones that say most (down, then relayed) first.
    const order: Record<string, number> = { down: 0, relayed: 1, lan: 2, direct: 3 };
    const paths = [...all.values()].sort((a, b) => (order[a.kind] ?? 4) - (order[b.kind] ?? 4)).slice(0, MAX_PEER_PATHS);
    const proven = this.proven.get(iface);
    for (const ref of this.options.refs) {
      const view = this.merger.viewOf(ref.name);
      // Which it is needs no proof for reporting: that it names a peer we have as itself.
      if (!view || !(proven?.has(ref.name) || device.peers.some((p) => p.publicKey === view.registryPublicKey))) continue;
      this.reportTo(iface, ref, device.publicKey, view.generation, candidates, paths);
    }
  }

  private reportTo(iface: string, ref: RegistryRef, publicKey: string, generation: number, candidates: readonly Endpoint[], paths: readonly PathState[]): void {
    const at = `${iface} ${ref.name}`;
    const digest = JSON.stringify([generation, candidates, paths.map((p) => [p.peerPublicKey, p.kind])]);
    if (this.reportDigest.get(at) === digest) return;
    this.reportDigest.set(at, digest);
    ref.source
      .report({ publicKey, candidates, paths })
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

  /**
   * A registry whose watch is down but that answers hellos again (it is back)
   * is dialled now, not when the watch's backoff ends; at most every
   * RECONNECT_GAP_MS. Called on every hello tick.
   */
  reconnectAnswering(answering: (name: string) => boolean): void {
    const now = this.options.clock.now();
    for (const ref of this.options.refs) {
      if (ref.source.health?.() !== "unreachable" || !answering(ref.name)) continue;
      if (now - (this.reconnectedAt.get(ref.name) ?? -Infinity) < RECONNECT_GAP_MS) continue;
      this.reconnectedAt.set(ref.name, now);
      ref.source.reconnect?.();
    }
  }

  /** Each registry: its watch, its key, whether it answers hellos and relays, when its view last came. */
  status(answering: (name: string) => boolean, relays: (name: string) => boolean): RegistryStatus[] {
    return this.options.refs.map((ref) => {
      const peer = [...this.proven.values()].map((m) => m.get(ref.name)).find((p) => p !== undefined);
      return {
        name: ref.name,
        health: ref.source.health?.() ?? (this.viewAt.has(ref.name) ? "connected" : "connecting"),
        publicKey: peer?.publicKey ?? null,
        answering: answering(ref.name),
        relays: relays(ref.name),
        lastViewMs: this.viewAt.get(ref.name) ?? null,
      };
    });
  }

  private notice(topic: string, log: () => void): void {
    if (this.noticed.has(topic)) return;
    this.noticed.add(topic);
    log();
  }
}
