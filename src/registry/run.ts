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
import { forwardingProblem } from "./forwarding.js";
import { bindServer, createRegistryServer } from "./server.js";
import { PeerTable } from "./table.js";
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
  /** Forward between peers so pairs that cannot punch can relay (needs IP forwarding). */
  readonly relay?: boolean;
  /** Serve the API over TLS with this certificate and key; null or absent: plaintext. */
  readonly tls?: TlsFiles | null;
  /** How often the TLS files are read again (renewals). Default 60 s. */
  readonly tlsReloadMs?: number;
}

export interface RegistryDeps {
  readonly wg: WireGuard;
  readonly logger: Logger;
  /** Checks IP forwarding for --relay; the real sysctl check by default. */
  readonly forwardingProblem?: () => Promise<string | null>;
}

export interface RunningRegistry {
  readonly port: number;
  readonly table: PeerTable;
  readonly server: Server;
  readonly metrics: RegistryMetrics;
  readonly health: HealthService;
  /** The HTTP port, or null when HTTP is off. */
  readonly httpPort: number | null;
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
  if (config.relay) {
    const problem = await (deps.forwardingProblem ?? forwardingProblem)();
    if (problem) throw new Error(problem);
  }
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
  const metrics = createRegistryMetrics({ table, ...(identity ? { tlsNotAfter: () => identity.identity.notAfter } : {}) });
  const server = createRegistryServer({
    table,
    token: config.token,
    logger,
    relay: config.relay ?? false,
    onAuthFailure: metrics.onAuthFailure,
    onWatch: metrics.onWatch,
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
  const cleanUp = () => {
    identity?.stop();
    clearInterval(healthTimer);
    metrics.close();
    table.stop();
  };
  let port: number;
  try {
    port = await bindServer(server, config.address, identity ? serverCredentials(identity) : undefined);
    identity?.watch(config.tlsReloadMs ?? 60_000);
    if (config.http) {
      http = await startRegistryHttp(config.http, { table, iface: config.iface, metrics, names: config.names ?? NO_NAMES, logger });
    }
  } catch (err) {
    cleanUp();
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
    stop: async () => {
      // Tell health watchers first, then stop taking calls.
      health.setAll("NOT_SERVING");
      cleanUp();
      await http?.close();
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
