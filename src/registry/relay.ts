/**
 * The registry's relay: for pairs of nodes that cannot reach each other
 * directly, it passes their WireGuard packets on, still encrypted end to end.
 *
 * A node's agent sends relay datagrams (src/relay/wire.ts) through its own
 * tunnel to the registry's tunnel address, UDP port = the gRPC port. They
 * arrive on the registry's WireGuard interface with the node's tunnel address
 * as source, which names the sender: WireGuard accepted them only from the
 * peer whose allowed IPs hold that address (the socket is bound to the tunnel
 * addresses only). The registry rewrites "to KEY" into "from SENDER" and sends
 * it through the destination's tunnel to the port the destination's last hello
 * came from. It never decrypts anything: it holds no key of the nodes'
 * sessions, so it can drop, delay or count relayed packets, and nothing more.
 *
 * Refused (and counted by reason): a sender that is not a peer's tunnel
 * address; a destination that is not a peer; a sender or destination that has
 * not said hello lately with relaying accepted (a node started with
 * `--no-relay` never does); a pair or the whole relay over its byte rate.
 *
 * Memory is bounded by the peers of the interface: one hello record per peer,
 * one rate bucket per active pair, both pruned when idle.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { decode, encode, keyBytes, toFrom } from "../relay/wire.js";
import type { PeerTable } from "./table.js";

/** A hello older than this means the node is gone (they come every second). */
export const HELLO_TTL_MS = 10_000;
/** A pair with no packet for this long loses its rate bucket and stops counting as active. */
export const PAIR_IDLE_MS = 30_000;
/** Defaults: 100 Mbit/s per pair, 1 Gbit/s in all. */
export const DEFAULT_PAIR_BYTES_PER_SEC = 12_500_000;
export const DEFAULT_TOTAL_BYTES_PER_SEC = 125_000_000;

export type RelayDrop = "unidentified" | "malformed" | "off" | "unknown_destination" | "sender_not_relaying" | "destination_not_relaying" | "rate_limited";

export interface RelayStats {
  packets: number;
  bytes: number;
  readonly dropped: Record<RelayDrop, number>;
}

/**
 * A token bucket of bytes: `rate` per second, bursts up to one second's worth
 * (at least 64 KiB, so one large datagram always fits). Pure apart from the
 * times it is given.
 */
export class ByteBucket {
  private tokens: number;
  private atMs: number;
  private readonly burst: number;
  constructor(
    private readonly rate: number,
    nowMs: number,
  ) {
    this.burst = Math.max(rate, 65_536);
    this.tokens = this.burst;
    this.atMs = nowMs;
  }
  /** Whether `bytes` may pass now (and takes them when so). A rate of 0 means no limit. */
  take(bytes: number, nowMs: number): boolean {
    if (this.rate <= 0) return true;
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.atMs) / 1000) * this.rate);
    this.atMs = nowMs;
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }
}

interface Hello {
  readonly address: string;
  readonly port: number;
  readonly acceptsRelay: boolean;
  readonly atMs: number;
}

export interface RelayOptions {
  readonly table: Pick<PeerTable, "identity" | "peers">;
  /** Relay packets between peers; false: only hellos are answered (they keep NAT mappings fresh). */
  readonly enabled: boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Bytes per second per pair (both directions together); 0: no limit. */
  readonly pairBytesPerSec?: number;
  /** Bytes per second for all pairs together; 0: no limit. */
  readonly totalBytesPerSec?: number;
}

/**
 * The relay's decisions, without sockets: what to do with one datagram from
 * one source. Table-tested in test/unit/registry-relay.test.ts.
 */
export class RelayCore {
  private readonly hellos = new Map<string, Hello>();
  private readonly pairs = new Map<string, { bucket: ByteBucket; lastMs: number }>();
  private readonly total: ByteBucket;
  readonly stats: RelayStats = {
    packets: 0,
    bytes: 0,
    dropped: { unidentified: 0, malformed: 0, off: 0, unknown_destination: 0, sender_not_relaying: 0, destination_not_relaying: 0, rate_limited: 0 },
  };

  /** It relays (false: it only answers hellos). */
  get enabled(): boolean {
    return this.options.enabled;
  }

  constructor(private readonly options: RelayOptions) {
    this.total = new ByteBucket(options.totalBytesPerSec ?? DEFAULT_TOTAL_BYTES_PER_SEC, options.clock.now());
  }

  /**
   * What to send for datagram `bytes` from `from` (address, port): a reply or
   * a relayed datagram with its destination, or null (dropped, and counted).
   * May reuse `bytes` for the datagram it returns.
   */
  handle(bytes: Buffer, from: { address: string; port: number }): { bytes: Buffer; address: string; port: number } | null {
    const now = this.options.clock.now();
    const sender = this.options.table.identity.keyOf(from.address);
    if (sender === null) return this.drop("unidentified");
    const message = decode(bytes);
    if (message === null) return this.drop("malformed");
    if (message.type === "hello") {
      this.hellos.set(sender, { address: from.address, port: from.port, acceptsRelay: message.acceptsRelay, atMs: now });
      return { bytes: encode({ type: "welcome", relays: this.options.enabled }), address: from.address, port: from.port };
    }
    if (message.type !== "to") return this.drop("malformed");
    if (!this.options.enabled) return this.drop("off");
    const fresh = (h: Hello | undefined): h is Hello => h?.acceptsRelay === true && now - h.atMs < HELLO_TTL_MS;
    if (!fresh(this.hellos.get(sender))) return this.drop("sender_not_relaying");
    if (message.key === sender || !this.options.table.peers.has(message.key)) return this.drop("unknown_destination");
    const to = this.hellos.get(message.key);
    if (!fresh(to)) return this.drop("destination_not_relaying");
    const pairKey = sender < message.key ? `${sender} ${message.key}` : `${message.key} ${sender}`;
    let pair = this.pairs.get(pairKey);
    if (!pair) {
      pair = { bucket: new ByteBucket(this.options.pairBytesPerSec ?? DEFAULT_PAIR_BYTES_PER_SEC, now), lastMs: now };
      this.pairs.set(pairKey, pair);
    }
    pair.lastMs = now;
    if (!pair.bucket.take(bytes.length, now) || !this.total.take(bytes.length, now)) return this.drop("rate_limited");
    this.stats.packets += 1;
    this.stats.bytes += message.payload.length;
    return { bytes: toFrom(bytes, keyBytes(sender) as Buffer), address: to.address, port: to.port };
  }

  /** Pairs that passed a packet within PAIR_IDLE_MS. */
  activePairs(): number {
    return this.pairs.size;
  }

  /** Nodes whose hello (accepting relay) is fresh. */
  relayingNodes(): number {
    const now = this.options.clock.now();
    let n = 0;
    for (const h of this.hellos.values()) if (h.acceptsRelay && now - h.atMs < HELLO_TTL_MS) n++;
    return n;
  }

  /** Forgets hellos and pairs that went quiet, and nodes that are no longer peers. */
  prune(): void {
    const now = this.options.clock.now();
    const peers = this.options.table.peers;
    for (const [key, h] of this.hellos) if (now - h.atMs >= HELLO_TTL_MS || !peers.has(key)) this.hellos.delete(key);
    for (const [key, p] of this.pairs) if (now - p.lastMs >= PAIR_IDLE_MS) this.pairs.delete(key);
  }

  private drop(reason: RelayDrop): null {
    this.stats.dropped[reason] += 1;
    return null;
  }
}

export interface RelayServer {
  readonly core: RelayCore;
  /** The UDP port it listens on. */
  readonly port: number;
  /** The addresses it listens on. */
  readonly addresses: readonly string[];
  close(): Promise<void>;
}

/**
 * Listens on `port` of each of `addresses` (the registry's tunnel addresses)
 * and relays. Start-up fails when none can be bound; a datagram it cannot
 * send is counted lost, never fatal.
 */
export async function startRelay(addresses: readonly string[], port: number, options: RelayOptions): Promise<RelayServer> {
  const core = new RelayCore(options);
  const sockets: Socket[] = [];
  const byFamily = new Map<"udp4" | "udp6", Socket>();
  const bound: string[] = [];
  let actualPort = port;
  for (const address of addresses) {
    const family = isIPv6(address) ? "udp6" : "udp4";
    const socket = createSocket({ type: family });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind({ address, port: actualPort }, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      options.logger.warn({ address, port: actualPort, err: (err as Error).message }, "relay cannot listen on this tunnel address");
      continue;
    }
    actualPort = socket.address().port;
    socket.on("error", (err) => options.logger.debug({ err: err.message }, "relay socket error"));
    socket.on("message", (bytes: Buffer, rinfo: RemoteInfo) => {
      const out = core.handle(bytes, rinfo);
      // The destination may be of the other family than the sender.
      if (out) (byFamily.get(isIPv6(out.address) ? "udp6" : "udp4") ?? socket).send(out.bytes, out.port, out.address, () => {});
    });
    if (!byFamily.has(family)) byFamily.set(family, socket);
    sockets.push(socket);
    bound.push(address);
  }
  if (sockets.length === 0) throw new Error(`relay: cannot listen on UDP port ${port} of any tunnel address (${addresses.join(", ") || "the interface has none"})`);
  const pruner = setInterval(() => core.prune(), 5_000);
  pruner.unref();
  return {
    core,
    port: actualPort,
    addresses: bound,
    close: async () => {
      clearInterval(pruner);
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
