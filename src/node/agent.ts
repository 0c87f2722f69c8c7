/**
 * The node agent: keeps the local WireGuard peers pointed where the registry
 * says they are. It reconciles whenever the registry's view changes and on
 * every refresh tick (local state changes too: handshakes age out). The
 * decision is `decide()`; this file only does the I/O around it.
 */
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { formatEndpoint } from "../wg/endpoint.js";
import type { Endpoint, WireGuard } from "../wg/types.js";
import { decide, type DecideOptions } from "./decide.js";
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
}

function short(key: string): string {
  return key.slice(0, 8);
}

export class NodeAgent {
  private view: RegistryView | null = null;
  /** Per interface: what this agent last wrote per peer. */
  private readonly applied = new Map<string, Map<string, Endpoint>>();
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly reported = new Map<string, string>();

  constructor(private readonly options: AgentOptions) {}

  start(): void {
    this.options.source.start((view) => {
      this.view = view;
      void this.reconcile();
    });
    this.timer = setInterval(() => void this.reconcile(), this.options.refreshMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.options.source.stop();
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
        const device = await wg.getDevice(iface);
        let applied = this.applied.get(iface);
        if (!applied) this.applied.set(iface, (applied = new Map()));
        const { updates, decisions } = decide({
          device,
          registry: view.endpoints,
          applied,
          nowMs: this.options.clock.now(),
          ...(this.options.decideOptions ? { options: this.options.decideOptions } : {}),
        });
        if (updates.length > 0) await wg.updatePeers(iface, updates);
        for (const u of updates) if (u.endpoint) applied.set(u.publicKey, u.endpoint);
        for (const d of decisions) {
          if (d.verdict === "set" || d.verdict === "keepalive") {
            logger.info({ iface, peer: short(d.publicKey), endpoint: d.to ? formatEndpoint(d.to) : null, via: view.via }, d.reason);
          } else {
            logger.debug({ iface, peer: short(d.publicKey), verdict: d.verdict }, d.reason);
          }
        }
        this.solved(iface);
      } catch (err) {
        this.problem(iface, err instanceof Error ? err.message : String(err));
      }
    }
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
