/**
 * `--auto-peers`: runs the planner (auto-peers.ts) for one interface, applies
 * its plan through WireGuard, keeps the record on disk (auto-peers-record.ts)
 * and says what it did. The agent calls {@link AutoPeers.pass} early in each
 * pass over an interface.
 *
 * Crash safety: the record is written before WireGuard is changed (with the
 * peers about to be added, and still with those about to be removed), and
 * again after. A crash in between leaves entries for peers the interface
 * does not have (dropped at the next pass) or for peers still to remove
 * (removed at the next pass): never a peer of ours that looks like the
 * user's, never a user's peer in the record.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import type { Logger } from "../util/log.js";
import type { PeerUpdate, WgDevice, WireGuard } from "../wg/types.js";
import { capFor, planAutoPeers, type AutoPeersRecord, type NamedView } from "./auto-peers.js";
import { loadRecord, recordToJson, saveRecord } from "./auto-peers-record.js";

export interface AutoPeersOptions {
  readonly wg: WireGuard;
  /** Canonical prefix, e.g. "10.77.0.0/24". */
  readonly prefix: string;
  /** Where the records are kept (the control socket's directory by default). */
  readonly recordDir: string;
  readonly logger: Logger;
  /** Persistent keepalive given to added peers. */
  readonly keepaliveSec: number;
  /** How long a peer must be missing from every connected registry before it is removed (`--auto-peers-grace`). */
  readonly graceMs: number;
  /** Most peers added to one interface. Default: the prefix's size, at most 1 000. */
  readonly maxPeers?: number;
  /** The machine's interfaces (os.networkInterfaces by default): an interface's own address is never given to a peer. */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export interface AutoPeersPass {
  readonly changed: boolean;
  readonly nextDueMs: number | null;
}

function short(key: string): string {
  return key.slice(0, 8);
}

export class AutoPeers {
  private readonly records = new Map<string, AutoPeersRecord>();
  /** Per interface: the refusals of the last pass (each is logged when it first appears). */
  private readonly refused = new Map<string, Set<string>>();
  /** Per interface: the error last logged. */
  private readonly failing = new Map<string, string>();

  constructor(private readonly options: AutoPeersOptions) {}

  get prefix(): string {
    return this.options.prefix;
  }

  /**
   * Adds and removes peers of `iface` as planned. `changed`: it changed (or
   * tried to change) the interface: read it again then. `nextDueMs`: when to
   * pass again even if nothing else happens (a grace time ends). Never throws: a
   * record that cannot be written means no peer is added (a peer not written
   * down would look like the user's); a WireGuard error is logged, and the
   * next pass plans again from what the interface has.
   */
  async pass(iface: string, device: WgDevice, registries: readonly NamedView[], registryKeys: ReadonlySet<string>, nowMs: number): Promise<AutoPeersPass> {
    const touched = { wg: false, nextDueMs: null as number | null };
    try {
      await this.passUnsafe(iface, device, registries, registryKeys, nowMs, touched);
      if (this.failing.delete(iface)) this.options.logger.info({ iface }, "auto peers work again");
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (this.failing.get(iface) !== message) this.options.logger.warn({ iface, err: message }, "auto peers: cannot add or remove peers now; trying again at the next pass");
      this.failing.set(iface, message);
    }
    return { changed: touched.wg, nextDueMs: touched.nextDueMs };
  }

  private async passUnsafe(iface: string, device: WgDevice, registries: readonly NamedView[], registryKeys: ReadonlySet<string>, nowMs: number, touched: { wg: boolean; nextDueMs: number | null }): Promise<void> {
    const { logger } = this.options;
    let record = this.records.get(iface);
    if (!record) {
      record = await loadRecord(this.options.recordDir, iface, logger);
      this.records.set(iface, record);
    }
    const plan = planAutoPeers({
      device,
      prefix: this.options.prefix,
      registries,
      registryKeys,
      ownIps: ((this.options.interfaces ?? networkInterfaces)()[iface] ?? []).map((a) => a.address),
      record,
      nowMs,
      graceMs: this.options.graceMs,
      maxPeers: this.options.maxPeers ?? capFor(this.options.prefix),
    });
    touched.nextDueMs = plan.nextDueMs;
    logger.debug(
      { iface, peers: device.peers.length, registries: registries.map((r) => `${r.name}: ${r.view ? `${r.view.allowedIps?.size ?? 0} peers` : "not connected"}`).join(", "), add: plan.add.length, remove: plan.remove.length, refused: plan.refusals.length },
      "auto peers planned",
    );
    this.logRefusals(iface, plan.refusals);
    for (const f of plan.forgotten) logger.info({ iface, peer: short(f.publicKey) }, `auto peer left the record: ${f.why}`);

    const updates: PeerUpdate[] = [
      ...plan.remove.map((r): PeerUpdate => ({ publicKey: r.publicKey, remove: true })),
      ...plan.add.map((a): PeerUpdate => ({ publicKey: a.publicKey, persistentKeepaliveSec: this.options.keepaliveSec, add: { allowedIps: [a.allowedIp] } })),
    ];
    if (updates.length > 0) {
      // First what is about to be: the adds recorded, the removes still recorded.
      const pending = new Map(plan.record.added);
      for (const r of plan.remove) {
        const was = record.added.get(r.publicKey);
        if (was) pending.set(r.publicKey, was);
      }
      const before: AutoPeersRecord = { added: pending, removed: plan.record.removed };
      await this.save(iface, before);
      // Should WireGuard fail half way, what it did add is ours all the same (and what it did not is dropped next time).
      this.records.set(iface, before);
      touched.wg = true;
      await this.options.wg.updatePeers(iface, updates);
      for (const r of plan.remove) {
        logger.info({ iface, peer: short(r.publicKey), allowedIp: r.allowedIp, absentSec: Math.round(r.absentMs / 1000) }, "auto peer removed: no registry has listed it for the grace time");
      }
      for (const a of plan.add) logger.info({ iface, peer: short(a.publicKey), allowedIp: a.allowedIp, registry: a.registries.join(", ") }, "auto peer added");
    }
    if (updates.length > 0 || recordToJson(iface, plan.record) !== recordToJson(iface, record)) await this.save(iface, plan.record);
    this.records.set(iface, plan.record);
  }

  private async save(iface: string, record: AutoPeersRecord): Promise<void> {
    await saveRecord(this.options.recordDir, iface, record);
  }

  private logRefusals(iface: string, refusals: ReturnType<typeof planAutoPeers>["refusals"]): void {
    const before = this.refused.get(iface) ?? new Set<string>();
    const now = new Set<string>();
    for (const r of refusals) {
      const id = `${r.registry}\n${r.publicKey}\n${r.reason}`;
      now.add(id);
      if (before.has(id)) continue;
      this.options.logger.warn({ iface, registry: r.registry, peer: short(r.publicKey), allowedIp: r.allowedIp, reason: r.reason }, `auto peer refused: ${r.detail}`);
    }
    // Only the refusals that still stand are remembered: bounded by what the registries list now.
    this.refused.set(iface, now);
  }
}
