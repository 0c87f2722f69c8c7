import type { Server } from "@grpc/grpc-js";
import { networkInterfaces } from "node:os";
import { tryCanonicalIp } from "../wg/endpoint.js";
import { NO_NAMES, type PeerNames } from "../config/names.js";
import { addressHost, formatListen, type ListenAddress } from "../config/values.js";
import type { Logger } from "../util/log.js";
import type { WireGuard } from "../wg/types.js";
import { addReflection, HealthService, type ServingStatus } from "./grpc-standard.js";
import { startRegistryHttp, unhealthyReason, type RegistryHttp } from "./http.js";
import { createRegistryMetrics, type RegistryMetrics } from "./metrics.js";
import { startRelay, type RelayServer } from "./relay.js";
import { systemClock } from "../util/clock.js";
import { bindServer, createRegistryServer } from "./server.js";
import { PeerTable } from "./table.js";
import { FailureLimiter } from "./ratelimit.js";
import { startSeedHttp, type SeedHttp } from "./seed-http.js";
import { startStunServer, type StunServer } from "../stun/server.js";
import { describeIdentity, ReloadingIdentity, serverCredentials, type TlsFiles } from "../tls/server.js";

export interface RegistryConfig {
  /** Listen address: ":1638", "0.0.0.0:1638", "[::1]:0", ... */
  readonly address: string;
  readonly iface: string;
  /** Shared token; null accepts every caller. */
  readonly token: string | null;
  readonly pollIntervalMs: number;
  /** While no Watch stream is open, read the interface this often and on demand (PeerTable's idlePollIntervalMs). Default: always poll. */
  readonly idlePollIntervalMs?: number;
  /** Where to serve /metrics, /healthz and the status page; null or absent: nowhere. */
  readonly http?: ListenAddress | null;
  /** Peer names for the status page. Default none. */
  readonly names?: PeerNames;
  /** Relay (end to end encrypted) between nodes that cannot reach each other directly. Default true. */
  readonly relay?: boolean;
  /** Relayed Mbit/s per pair and in all; 0: no limit. Defaults 100 and 1000. */
  readonly relayPairMbps?: number;
  readonly relayMbps?: number;
  /** Serve the API over TLS with this certificate and key; null or absent: plaintext. */
  readonly tls?: TlsFiles | null;
  /** How often the TLS files are read again (renewals). Default 60 s. */
  readonly tlsReloadMs?: number;
  /**
   * Answer STUN Binding requests on this address (host null: every address)
   * and on `altPort`; null or absent: no STUN. Ports 0: any free ones (tests).
   */
  readonly stun?: {
    readonly host: string | null;
    readonly port: number;
    readonly altPort: number;
    /** Only the default, not asked for: when it cannot be bound, warn and serve without STUN. */
    readonly optional?: boolean;
  } | null;
  /** The seed's HTTP watch (`-A`, `-w`); null or absent: nothing listens. See seed-http.ts. */
  readonly seedHttp?: { readonly address: ListenAddress; readonly watchPeerKey: string | null } | null;
}

export interface RegistryDeps {
  readonly wg: WireGuard;
  readonly logger: Logger;
  /** Where the relay listens: the interface's addresses by default (tests give loopback ones). */
  readonly relayAddresses?: readonly string[];
}

export interface RunningRegistry {
  readonly port: number;
  readonly table: PeerTable;
  readonly server: Server;
  readonly metrics: RegistryMetrics;
  readonly health: HealthService;
  /** The HTTP port, or null when HTTP is off. */
  readonly httpPort: number | null;
  /** The relay (it also answers the nodes' hellos), or null when it could not listen. */
  readonly relay: RelayServer | null;
  /** The STUN responder, or null when it is off. */
  readonly stun: StunServer | null;
  /** The seed's HTTP watch port, or null when it is off. */
  readonly seedHttpPort: number | null;
  stop(): Promise<void>;
}

/**
 * How often `wormhole registry` reads its interface while no Watch stream is
 * open (seed nodes only, or no client at all): GetEndpoint, GetPeers, Report
 * and /healthz read it on demand, at most once per poll interval; this keeps
 * gRPC health and the metrics within 10 s.
 */
export const IDLE_POLL_INTERVAL_MS = 10_000;

/** The services grpc.health.v1.Health reports on: the server as a whole ("") and each API. */
export const HEALTH_SERVICES = ["", "wormhole.v1.Registry", "wgSvc.proto.Registry"] as const;

/** Reads the interface once (fails fast when it cannot), then serves. */
export async function runRegistry(config: RegistryConfig, deps: RegistryDeps): Promise<RunningRegistry> {
  const { logger } = deps;
  const relayOn = config.relay ?? true;
  // Before anything starts: a bad certificate or key is a start-up error.
  const identity = config.tls ? new ReloadingIdentity(config.tls, logger) : null;
  const table = new PeerTable({
    wg: deps.wg,
    iface: config.iface,
    pollIntervalMs: config.pollIntervalMs,
    ...(config.idlePollIntervalMs !== undefined ? { idlePollIntervalMs: config.idlePollIntervalMs } : {}),
    logger,
  });
  await table.start();
  let relay: RelayServer | null = null;
  const metrics = createRegistryMetrics({ table, relay: () => relay?.core ?? null, ...(identity ? { tlsNotAfter: () => identity.identity.notAfter } : {}) });
  // One budget of failed token attempts per source, whichever API they come through.
  const failureLimiter = new FailureLimiter();
  const server = createRegistryServer({
    table,
    token: config.token,
    logger,
    relay: relayOn,
    onAuthFailure: metrics.onAuthFailure,
    onWatch: metrics.onWatch,
    failureLimiter,
  });

  // Health follows the interface: SERVING while the last poll could read it.
  const servingStatus = (): ServingStatus => (unhealthyReason(table, config.iface) === null ? "SERVING" : "NOT_SERVING");
  const health = new HealthService(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, servingStatus()])));
  health.addToServer(server);
  addReflection(server);
  const healthTimer = setInterval(() => {
    const status = servingStatus();
    for (const s of HEALTH_SERVICES) health.set(s, status);
  }, config.pollIntervalMs);
  healthTimer.unref();

  let http: RegistryHttp | null = null;
  let stun: StunServer | null = null;
  let seedHttp: SeedHttp | null = null;
  const cleanUp = () => {
    void relay?.close();
    identity?.stop();
    clearInterval(healthTimer);
    metrics.close();
    table.stop();
  };
  let port: number;
  try {
    port = await bindServer(server, dualStack(config.address), identity ? serverCredentials(identity) : undefined);
    identity?.watch(config.tlsReloadMs ?? 60_000);
    relay = await listenRelay(deps.relayAddresses ?? tunnelAddresses(config.iface), port, relayOn, config, table, logger);
    if (config.http) {
      http = await startRegistryHttp(config.http, { table, iface: config.iface, metrics, names: config.names ?? NO_NAMES, logger, relay: () => relay?.core ?? null });
    }
    if (config.seedHttp) {
      const { address, watchPeerKey } = config.seedHttp;
      seedHttp = await startSeedHttp(address, { table, iface: config.iface, token: config.token, watchPeerKey, failureLimiter, logger, tunnel: tunnelAddresses(config.iface) });
    }
    if (config.stun) {
      try {
        stun = await startStunServer({ host: stunHost(config.stun, config.iface), port: config.stun.port, altPort: config.stun.altPort, logger, onResult: metrics.onStun });
      } catch (err) {
        if (!config.stun.optional) throw err;
        logger.warn({ err: (err as Error).message }, "not answering STUN (give --stun to choose where, or --stun off)");
      }
    }
  } catch (err) {
    cleanUp();
    await http?.close();
    await seedHttp?.close();
    server.forceShutdown();
    throw err;
  }
  const device = table.current;
  logger.info(
    { address: config.address, port, iface: config.iface, peers: device?.peers.length ?? 0, publicKey: device?.publicKey },
    "registry serving",
  );
  if (config.http && http) {
    logger.info({ http: formatListen({ host: config.http.host, port: http.port }) }, "serving /metrics, /healthz and the status page");
  }
  if (identity) {
    logger.info(describeIdentity(identity.identity), "serving TLS; nodes can pin this key with --tls-pin");
  }
  if (config.token === null) {
    logger.warn("no token set: anyone who reaches this address can read every peer's endpoint");
  } else if (!identity && !listensOnlyOnTunnel(config.address, tunnelAddresses(config.iface))) {
    logger.warn(
      { address: config.address },
      "the token and every peer's endpoint cross this address in plaintext: listen on the tunnel address (the registry's address on the WireGuard interface) or give --tls-cert and --tls-key",
    );
  }
  return {
    port,
    table,
    server,
    metrics,
    health,
    httpPort: http?.port ?? null,
    relay,
    stun,
    seedHttpPort: seedHttp?.port ?? null,
    stop: async () => {
      // Tell health watchers first, then stop taking calls.
      health.setAll("NOT_SERVING");
      cleanUp();
      await http?.close();
      await seedHttp?.close();
      await stun?.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

/**
 * The relay listens on the gRPC port, UDP, of the tunnel addresses only: its
 * datagrams come through the nodes' tunnels. Without a tunnel address it
 * cannot (the interface has none, or is not a network device here): the
 * registry then serves without it, and says so.
 */
async function listenRelay(
  addresses: readonly string[],
  port: number,
  enabled: boolean,
  config: RegistryConfig,
  table: PeerTable,
  logger: Logger,
): Promise<RelayServer | null> {
  if (addresses.length === 0) {
    logger.warn({ iface: config.iface }, "the interface has no address here: no relay, and nodes' hellos go unanswered");
    return null;
  }
  try {
    const relay = await startRelay(addresses, port, {
      table,
      enabled,
      clock: systemClock,
      logger,
      pairBytesPerSec: ((config.relayPairMbps ?? 100) * 1_000_000) / 8,
      totalBytesPerSec: ((config.relayMbps ?? 1000) * 1_000_000) / 8,
    });
    logger.info(
      { udp: relay.addresses.map((a) => (a.includes(":") ? `[${a}]:${relay.port}` : `${a}:${relay.port}`)), relay: enabled, pairMbps: config.relayPairMbps ?? 100, totalMbps: config.relayMbps ?? 1000 },
      enabled ? "relaying between nodes that cannot reach each other directly (their WireGuard packets, still encrypted)" : "answering nodes' hellos; not relaying (--no-relay)",
    );
    return relay;
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "no relay");
    return null;
  }
}

/**
 * The listen address grpc-js gets: `0.0.0.0:PORT` means every address, IPv6
 * too, as the seed's Go listener takes it (Node's 0.0.0.0 alone is IPv4
 * only); bindServer turns `:PORT` into `[::]` (dual-stack) with a fallback to
 * 0.0.0.0 on hosts without IPv6. Pure.
 */
export function dualStack(address: string): string {
  const m = /^\s*0\.0\.0\.0:(\d+)\s*$/.exec(address);
  return m ? `:${m[1]}` : address;
}

/**
 * Where STUN listens: as configured, except that the default never stays on
 * the tunnel: when the API listens only on the WireGuard interface's address,
 * STUN (which is for what the outside sees) listens on every address.
 */
function stunHost(stun: NonNullable<RegistryConfig["stun"]>, iface: string): string | null {
  return defaultStunHost(stun, tunnelAddresses(iface));
}

/** {@link stunHost} given the tunnel's addresses. Pure. */
export function defaultStunHost(stun: { readonly host: string | null; readonly optional?: boolean }, tunnel: readonly string[]): string | null {
  if (!stun.optional || stun.host === null) return stun.host;
  return tunnel.some((a) => tryCanonicalIp(a) === stun.host) ? null : stun.host;
}

/** The addresses of the WireGuard interface on this host (its tunnel addresses). */
function tunnelAddresses(iface: string): string[] {
  return (networkInterfaces()[iface] ?? []).map((a) => a.address);
}

/**
 * Whether a listen address reaches only the tunnel: a host that is one of the
 * interface's addresses, or loopback. ":1638", 0.0.0.0 and [::] listen
 * everywhere. Pure.
 */
export function listensOnlyOnTunnel(address: string, tunnel: readonly string[]): boolean {
  const host = addressHost(address.trim());
  if (host === "localhost" || host === "127.0.0.1" || host === "::1") return true;
  return host !== null && tryCanonicalIp(host) !== null && tunnel.some((a) => tryCanonicalIp(a) === host);
}
