/**
 * The registry's Prometheus metrics. Each registry has its own prom-client
 * Registry (not the global one), so tests can run several in one process.
 * Gauges are read from the PeerTable when scraped; counters are fed by the
 * table's change stream and by the gRPC handlers' hooks (auth failures and
 * rate-limited token attempts, Watch streams).
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { AuthRefusal } from "./server.js";
import type { PeerTable } from "./table.js";
import type { RelayCore, RelayDrop } from "./relay.js";

export interface RegistryMetricsOptions {
  readonly table: PeerTable;
  /** Also export prom-client's process_* and nodejs_* metrics. Default true. */
  readonly processMetrics?: boolean;
  /** When the TLS certificate being served expires; absent when the API is plaintext. */
  readonly tlsNotAfter?: () => Date;
  /** The relay's counters, once it listens (null: none). */
  readonly relay?: () => RelayCore | null;
}

/** Pairs of current peers of which at least one end reports the other as relayed. Pure. */
export function relayedPairs(table: Pick<PeerTable, "peers" | "reportOf">): number {
  const pairs = new Set<string>();
  for (const key of table.peers.keys()) {
    for (const path of table.reportOf(key)?.paths ?? []) {
      if (path.kind !== "relayed" || !table.peers.has(path.peerPublicKey)) continue;
      pairs.add(key < path.peerPublicKey ? `${key} ${path.peerPublicKey}` : `${path.peerPublicKey} ${key}`);
    }
  }
  return pairs.size;
}

export interface RegistryMetrics {
  /** The prom-client registry to serve (`metrics()`, `contentType`). */
  readonly registry: Registry;
  /** For RegistryServiceOptions.onAuthFailure: a call refused for its token, or by the failed-attempt limit. */
  readonly onAuthFailure: (reason: AuthRefusal) => void;
  /** For RegistryServiceOptions.onWatch: a Watch stream opened; counted until it ends. */
  readonly onWatch: (stream: NodeJS.EventEmitter) => void;
  /** For the STUN responder: one datagram handled (answered, not a Binding request it answers, or over the rate limit). */
  readonly onStun: (result: StunResult) => void;
  /** Open Watch streams now. */
  watchers(): number;
  /** Stops listening to the table. */
  close(): void;
}

/** Metric names, for the README and the tests. */
export const METRIC_NAMES = {
  peers: "wormhole_registry_peers",
  watchers: "wormhole_registry_watchers",
  endpointChanges: "wormhole_registry_endpoint_changes_total",
  authFailures: "wormhole_registry_auth_failures_total",
  authRateLimited: "wormhole_registry_auth_rate_limited_total",
  relayedPairs: "wormhole_registry_relayed_pairs",
  tlsNotAfter: "wormhole_registry_tls_cert_not_after_seconds",
  interfaceReadable: "wormhole_registry_interface_readable",
  pollDuration: "wormhole_registry_poll_duration_seconds",
  relayBytes: "wormhole_registry_relay_bytes_total",
  relayPackets: "wormhole_registry_relay_packets_total",
  relayDropped: "wormhole_registry_relay_dropped_total",
  relayActivePairs: "wormhole_registry_relay_active_pairs",
  relayNodes: "wormhole_registry_relay_nodes",
  stunRequests: "wormhole_registry_stun_requests_total",
} as const;

export type StunResult = "answered" | "dropped" | "limited";

/**
 * Creates the metrics for one registry. Call it after the table's first read
 * (the peers it has then are the baseline for endpoint changes).
 */
export function createRegistryMetrics(options: RegistryMetricsOptions): RegistryMetrics {
  const { table } = options;
  const registry = new Registry();
  const registers = [registry];

  new Gauge({
    name: METRIC_NAMES.peers,
    help: "Peers of the registry's WireGuard interface at the last successful read.",
    registers,
    collect() {
      this.set(table.peers.size);
    },
  });
  let openWatches = 0;
  const watchers = () => openWatches;
  const onWatch = (stream: NodeJS.EventEmitter) => {
    openWatches++;
    let open = true;
    const ended = () => {
      if (!open) return;
      open = false;
      openWatches--;
    };
    stream.once("close", ended);
    stream.once("cancelled", ended);
    stream.once("error", ended);
  };
  new Gauge({
    name: METRIC_NAMES.watchers,
    help: "Open wormhole.v1.Registry/Watch streams (nodes receiving pushed changes).",
    registers,
    collect() {
      this.set(watchers());
    },
  });
  const endpointChanges = new Counter({
    name: METRIC_NAMES.endpointChanges,
    help: "Times a known peer's endpoint changed as the registry's WireGuard saw it (a first endpoint, or a moved NAT mapping).",
    registers,
  });
  const authFailures = new Counter({
    name: METRIC_NAMES.authFailures,
    help: "gRPC calls refused for a wrong or missing token.",
    registers,
  });
  const stunRequests = new Counter({
    name: METRIC_NAMES.stunRequests,
    help: "Datagrams to the STUN responder, by result: answered, dropped (not a Binding request it answers), limited (over the per-source or global rate).",
    labelNames: ["result"],
    registers,
  });
  // Not auth failures: these calls' tokens were never checked (a node behind
  // the same address as a guesser is refused too, with the right token).
  const authRateLimited = new Counter({
    name: METRIC_NAMES.authRateLimited,
    help: "gRPC calls refused (RESOURCE_EXHAUSTED) before their token was checked, their source address having made too many failed token attempts.",
    registers,
  });
  new Gauge({
    name: METRIC_NAMES.relayedPairs,
    help: "Pairs of peers whose traffic goes through the registry, as their nodes report it (either end saying relayed counts the pair once).",
    registers,
    collect() {
      this.set(relayedPairs(table));
    },
  });
  if (options.tlsNotAfter) {
    const notAfter = options.tlsNotAfter;
    new Gauge({
      name: METRIC_NAMES.tlsNotAfter,
      help: "When the TLS certificate being served expires, in Unix seconds.",
      registers,
      collect() {
        this.set(notAfter().getTime() / 1000);
      },
    });
  }
  new Gauge({
    name: METRIC_NAMES.interfaceReadable,
    help: "1 when the last read of the WireGuard interface succeeded, else 0.",
    registers,
    collect() {
      this.set(table.current !== null && table.lastError === null ? 1 : 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.pollDuration,
    help: "Duration of the last successful read of the WireGuard interface, in seconds.",
    registers,
    collect() {
      this.set(table.lastReadDurationMs / 1000);
    },
  });
  if (options.relay) addRelayMetrics(options.relay, registers);
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  // endpointRevision steps each time the table sees a peer's endpoint change;
  // a new peer starts at 1 and is not a change.
  const revisions = new Map<string, number>();
  for (const [key, peer] of table.peers) revisions.set(key, peer.endpointRevision);
  const unsubscribe = table.subscribe((changes) => {
    for (const peer of changes.changed) {
      const before = revisions.get(peer.publicKey);
      if (before !== undefined && peer.endpointRevision > before) endpointChanges.inc(peer.endpointRevision - before);
      revisions.set(peer.publicKey, peer.endpointRevision);
    }
    for (const key of changes.removed) revisions.delete(key);
  }, { passive: true });

  return {
    registry,
    onAuthFailure: (reason) => (reason === "rate_limited" ? authRateLimited : authFailures).inc(),
    onWatch,
    onStun: (result) => stunRequests.inc({ result }),
    watchers,
    close: () => {
      unsubscribe();
    },
  };
}

/** Counters that mirror the relay's own (read when scraped). */
function addRelayMetrics(relay: () => RelayCore | null, registers: Registry[]): void {
  /** A counter set from a running total: it steps by what the total grew since the last scrape. */
  const mirror = (name: string, help: string, read: (core: RelayCore) => number) => {
    let last = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const core = relay();
        const now = core ? read(core) : last;
        if (now > last) this.inc(now - last);
        last = now;
      },
    });
  };
  mirror(METRIC_NAMES.relayBytes, "Bytes of WireGuard packets relayed between nodes (payload, still encrypted end to end).", (c) => c.stats.bytes);
  mirror(METRIC_NAMES.relayPackets, "WireGuard packets relayed between nodes.", (c) => c.stats.packets);
  const lastDropped = new Map<RelayDrop, number>();
  new Counter({
    name: METRIC_NAMES.relayDropped,
    help: "Relay datagrams refused, by reason: unidentified sender, malformed, relaying off, unknown destination, an end not relaying, over the rate limit.",
    labelNames: ["reason"],
    registers,
    collect() {
      const core = relay();
      if (!core) return;
      for (const [reason, n] of Object.entries(core.stats.dropped) as [RelayDrop, number][]) {
        const before = lastDropped.get(reason) ?? 0;
        if (n > before) this.inc({ reason }, n - before);
        else if (n === 0) this.inc({ reason }, 0);
        lastDropped.set(reason, n);
      }
    },
  });
  new Gauge({
    name: METRIC_NAMES.relayActivePairs,
    help: "Pairs of nodes that passed a relayed packet in the last 30 s.",
    registers,
    collect() {
      this.set(relay()?.activePairs() ?? 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.relayNodes,
    help: "Nodes whose hello (accepting relayed packets) arrived in the last 10 s.",
    registers,
    collect() {
      this.set(relay()?.relayingNodes() ?? 0);
    },
  });
}
