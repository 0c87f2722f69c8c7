/**
 * The registry's live view of its WireGuard interface. It re-reads the
 * interface on a timer and tells subscribers what changed; gRPC handlers
 * serve from it, so a thousand polling seed nodes cost one read per interval,
 * not a thousand.
 */
import type { Logger } from "../util/log.js";
import type { WgDevice, WireGuard } from "../wg/types.js";
import { endpointsEqual } from "../wg/endpoint.js";
import { IdentityIndex } from "./identity.js";
import type { NodeReport } from "./report.js";
import { diffPeers, nextPeerMap, type PeerChanges, type PeerMap } from "./view.js";

export interface PeerTableOptions {
  readonly wg: WireGuard;
  readonly iface: string;
  /** Shortest time between two reads of the interface. Default 250 ms. */
  readonly pollIntervalMs?: number;
  /**
   * The interval stretches to this many times the duration of the last read,
   * so a huge interface never eats the CPU, up to maxPollIntervalMs so a
   * change is still seen within about a second (10,000 peers: a read takes
   * 100-150 ms here, so one read every 400-600 ms, a fifth of a core).
   * Default 4.
   */
  readonly pollCostFactor?: number;
  /** Upper bound of the stretched interval. Default 1000 ms. */
  readonly maxPollIntervalMs?: number;
  /**
   * While nobody subscribes (no Watch stream), the interface is read only this
   * often on its own (for health and metrics), and otherwise on demand: see
   * {@link PeerTable.fresh}. A first subscriber brings back the usual interval
   * at once. Default: the usual interval (always polling).
   */
  readonly idlePollIntervalMs?: number;
  readonly logger: Logger;
}

export type ChangeListener = (changes: PeerChanges) => void;

export class PeerTable {
  private device: WgDevice | null = null;
  private map: PeerMap = new Map();
  private error: Error | null = null;
  private readonly listeners = new Set<ChangeListener>();
  /** The listeners that keep the table polling at the usual interval. */
  private readonly active = new Set<ChangeListener>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastReadMs = 0;
  /** performance.now() when the last read (good or not) finished. */
  private readAtMs = -Infinity;
  /** The read under way, if any. */
  private reading: Promise<void> | null = null;
  private readonly reports = new Map<string, NodeReport>();
  private reportCount = 0;
  private index: { of: PeerMap; index: IdentityIndex } | null = null;

  constructor(private readonly options: PeerTableOptions) {}

  /** The last successful read, or null before the first one. */
  get current(): WgDevice | null {
    return this.device;
  }
  get peers(): PeerMap {
    return this.map;
  }
  /** Set while the interface cannot be read; cleared by the next good read. */
  get lastError(): Error | null {
    return this.error;
  }
  get lastReadDurationMs(): number {
    return this.lastReadMs;
  }

  /** Tunnel identity for the current peers (rebuilt when they change). */
  get identity(): IdentityIndex {
    if (this.index?.of !== this.map) this.index = { of: this.map, index: new IdentityIndex(this.map) };
    return this.index.index;
  }

  /** Steps with every report kept (for caches of what shows reports). */
  get reportsVersion(): number {
    return this.reportCount;
  }

  /** What the node with this key last reported about itself. */
  reportOf(publicKey: string): NodeReport | undefined {
    return this.reports.get(publicKey);
  }

  /**
   * Keeps a node's (already checked) report. Watchers hear of it (and the
   * Watch snapshot changes) when its candidates changed; its paths are
   * served by GetPeers only.
   */
  report(publicKey: string, report: NodeReport): void {
    const peer = this.map.get(publicKey);
    if (!peer) return;
    const before = this.reports.get(publicKey) ?? NO_REPORT;
    this.reports.set(publicKey, report);
    this.reportCount++;
    const same =
      before.candidates.length === report.candidates.length &&
      before.candidates.every((c, i) => endpointsEqual(c, report.candidates[i]));
    if (!same) this.emit({ changed: [peer], removed: [] });
  }

  /**
   * Calls `listener` with each change. A passive listener (metrics) hears of
   * the changes polling finds but does not keep the table polling at the
   * usual interval; others (Watch) do, see idlePollIntervalMs.
   */
  subscribe(listener: ChangeListener, options: { readonly passive?: boolean } = {}): () => void {
    const wasIdle = this.timer !== null && this.idle();
    this.listeners.add(listener);
    if (!options.passive) this.active.add(listener);
    // The first active subscriber ends an idle wait: read now, then at the usual interval.
    if (wasIdle && !this.idle()) this.schedule(0);
    return () => {
      this.listeners.delete(listener);
      this.active.delete(listener);
    };
  }

  /**
   * Resolves once the last read is no older than the usual poll interval,
   * reading the interface first if it is (one read for any number of callers
   * at once). Polling keeps it so while someone subscribes; while nobody does,
   * this is what reads the interface for a caller. Never rejects: a failed
   * read is in lastError, as for a polled one.
   */
  fresh(): Promise<void> {
    if (this.stopped || performance.now() - this.readAtMs <= this.interval()) return Promise.resolve();
    // A read under way (polled or on demand) is fresh enough: no second one beside it.
    return this.reading ?? this.refresh();
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** Reads the interface once (errors propagate: start-up fails fast) and starts polling. */
  async start(): Promise<void> {
    await this.refresh(false);
    if (this.error) throw this.error;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One read of the interface; never throws (errors are kept in lastError and, by default, logged). */
  refresh(logErrors = true): Promise<void> {
    const started = performance.now();
    const reading = this.read(started, logErrors).finally(() => {
      this.readAtMs = performance.now();
      if (this.reading === reading) this.reading = null;
    });
    this.reading = reading;
    return reading;
  }

  private async read(started: number, logErrors: boolean): Promise<void> {
    try {
      const device = await this.options.wg.getDevice(this.options.iface);
      this.lastReadMs = performance.now() - started;
      const next = nextPeerMap(this.map, device.peers);
      const changes = diffPeers(this.map, next);
      this.device = device;
      this.map = next;
      for (const key of changes.removed) this.reports.delete(key);
      if (this.error) this.options.logger.info({ iface: this.options.iface }, "WireGuard interface readable again");
      this.error = null;
      if (changes.changed.length > 0 || changes.removed.length > 0) this.emit(changes);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (logErrors && this.error?.message !== error.message) {
        this.options.logger.error({ iface: this.options.iface, err: error.message }, "cannot read WireGuard interface");
      }
      this.error = error;
    }
  }

  private emit(changes: PeerChanges): void {
    for (const listener of this.listeners) {
      try {
        listener(changes);
      } catch (err) {
        this.options.logger.error({ err: String(err) }, "change listener failed");
      }
    }
  }

  /** The usual time between reads: the poll interval, stretched for a slow read. */
  private interval(): number {
    const base = this.options.pollIntervalMs ?? 250;
    const stretched = Math.min(this.lastReadMs * (this.options.pollCostFactor ?? 4), this.options.maxPollIntervalMs ?? 1_000);
    return Math.max(base, stretched);
  }

  /** Whether polling slows down now: nobody subscribes and an idle interval is set. */
  private idle(): boolean {
    const idleMs = this.options.idlePollIntervalMs;
    return idleMs !== undefined && idleMs > this.interval() && this.active.size === 0;
  }

  private schedule(delayMs?: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const delay = delayMs ?? (this.idle() ? (this.options.idlePollIntervalMs ?? 0) : this.interval());
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, delay);
    this.timer.unref?.();
  }
}

/** What watchers see of a node that has not reported. */
const NO_REPORT: NodeReport = { candidates: [], paths: [], atMs: 0 };

