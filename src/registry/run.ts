import type { Server } from "@grpc/grpc-js";
import type { Logger } from "../util/log.js";
import type { WireGuard } from "../wg/types.js";
import { bindServer, createRegistryServer } from "./server.js";
import { PeerTable } from "./table.js";

export interface RegistryConfig {
  /** Listen address: ":1638", "0.0.0.0:1638", "[::1]:0", ... */
  readonly address: string;
  readonly iface: string;
  /** Shared token; null accepts every caller. */
  readonly token: string | null;
  readonly pollIntervalMs: number;
}

export interface RegistryDeps {
  readonly wg: WireGuard;
  readonly logger: Logger;
}

export interface RunningRegistry {
  readonly port: number;
  readonly table: PeerTable;
  readonly server: Server;
  stop(): Promise<void>;
}

/** Reads the interface once (fails fast when it cannot), then serves. */
export async function runRegistry(config: RegistryConfig, deps: RegistryDeps): Promise<RunningRegistry> {
  const { logger } = deps;
  const table = new PeerTable({ wg: deps.wg, iface: config.iface, pollIntervalMs: config.pollIntervalMs, logger });
  await table.start();
  const server = createRegistryServer({ table, token: config.token, logger });
  let port: number;
  try {
    port = await bindServer(server, config.address);
  } catch (err) {
    table.stop();
    throw err;
  }
  const device = table.current;
  logger.info(
    { address: config.address, port, iface: config.iface, peers: device?.peers.length ?? 0, publicKey: device?.publicKey },
    "registry serving",
  );
  if (config.token === null) {
    logger.warn("no token set: anyone who reaches this address can read every peer's endpoint");
  }
  return {
    port,
    table,
    server,
    stop: () =>
      new Promise<void>((resolve) => {
        table.stop();
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
