/**
 * The registry's HTTP side (`--http ADDR`, off by default): `/metrics`
 * (Prometheus), `/healthz` (200 while the interface was readable at the last
 * poll, 503 with the reason otherwise) and the status page at `/`.
 *
 * No authentication: the page shows every peer's endpoint, which the gRPC
 * token otherwise guards. Serve it on a loopback address (the CLI warns
 * otherwise). Nothing here ever holds the token.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { NO_NAMES, type PeerNames } from "../config/names.js";
import type { ListenAddress } from "../config/values.js";
import type { Logger } from "../util/log.js";
import type { PathState } from "../util/path.js";
import type { RegistryMetrics } from "./metrics.js";
import { renderStatusPage, STATUS_PAGE_CSP } from "./page.js";
import type { RelayCore } from "./relay.js";
import type { PeerTable } from "./table.js";

export interface RegistryHttpOptions {
  readonly table: PeerTable;
  readonly iface: string;
  readonly metrics: RegistryMetrics;
  readonly names?: PeerNames;
  readonly logger: Logger;
  /** The clock for handshake ages. Default Date.now. */
  readonly now?: () => number;
  /** Seconds between the status page's reloads. Default 5. */
  readonly refreshSeconds?: number;
  /** The relay, when it runs and relays. */
  readonly relay?: () => RelayCore | null;
}

export interface RegistryHttp {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, "content-type": type, "content-length": Buffer.byteLength(body), ...extra });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** Why the registry is not healthy, or null when it is. */
export function unhealthyReason(table: PeerTable, iface: string): string | null {
  if (table.lastError) return `cannot read WireGuard interface ${iface}: ${table.lastError.message}`;
  if (!table.current) return `WireGuard interface ${iface} not read yet`;
  return null;
}

/** The request handler (exported for tests that want no socket). */
export function createHttpHandler(options: RegistryHttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { table, iface, metrics, logger } = options;
  const names = options.names ?? NO_NAMES;
  const now = options.now ?? Date.now;
  return (req, res) => {
    let path: string;
    try {
      path = new URL(req.url ?? "/", "http://registry.invalid").pathname;
    } catch {
      send(res, req, 400, "text/plain; charset=utf-8", "bad request\n");
      return;
    }
    const known = path === "/" || path === "/metrics" || path === "/healthz";
    if (!known) {
      send(res, req, 404, "text/plain; charset=utf-8", "not found: try /, /metrics or /healthz\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, req, 405, "text/plain; charset=utf-8", "method not allowed\n", { allow: "GET, HEAD" });
      return;
    }
    if (path === "/healthz") {
      const reason = unhealthyReason(table, iface);
      if (reason === null) send(res, req, 200, "text/plain; charset=utf-8", `ok: ${table.peers.size} peers on ${iface}\n`);
      else send(res, req, 503, "text/plain; charset=utf-8", `unavailable: ${reason}\n`);
      return;
    }
    if (path === "/metrics") {
      metrics.registry
        .metrics()
        .then((text) => send(res, req, 200, metrics.registry.contentType, text))
        .catch((err: unknown) => {
          logger.error({ err: String(err) }, "cannot collect metrics");
          send(res, req, 500, "text/plain; charset=utf-8", "cannot collect metrics\n");
        });
      return;
    }
    const peers = [...table.peers.values()];
    const pathStates = new Map<string, readonly PathState[]>();
    for (const p of peers) {
      const paths = table.reportOf(p.publicKey)?.paths;
      if (paths && paths.length > 0) pathStates.set(p.publicKey, paths);
    }
    const html = renderStatusPage({
      iface,
      publicKey: table.current?.publicKey ?? null,
      peers,
      pathStates,
      names,
      nowMs: now(),
      error: unhealthyReason(table, iface) === null ? null : (table.lastError?.message ?? "not read yet"),
      watchers: metrics.watchers(),
      relay: relayFigures(options.relay?.() ?? null),
      ...(options.refreshSeconds !== undefined ? { refreshSeconds: options.refreshSeconds } : {}),
    });
    send(res, req, 200, "text/html; charset=utf-8", html, {
      "content-security-policy": STATUS_PAGE_CSP,
      "x-frame-options": "DENY",
    });
  };
}

function relayFigures(core: RelayCore | null): { activePairs: number; bytes: number } | null {
  return core?.enabled ? { activePairs: core.activePairs(), bytes: core.stats.bytes } : null;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

/** Starts the HTTP server; `:PORT` listens on every address (IPv6 and IPv4, or IPv4 alone without IPv6). */
export async function startRegistryHttp(address: ListenAddress, options: RegistryHttpOptions): Promise<RegistryHttp> {
  const server = createServer(createHttpHandler(options));
  // Small limits: this serves a page and a scrape, never uploads.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.maxConnections = 64;
  const hosts = address.host === null ? ["::", "0.0.0.0"] : [address.host];
  let lastError: Error | null = null;
  for (const host of hosts) {
    try {
      await listen(server, address.port, host);
      lastError = null;
      break;
    } catch (err) {
      lastError = err as Error;
    }
  }
  if (lastError) {
    const shown = address.host === null ? `:${address.port}` : `${address.host}:${address.port}`;
    throw new Error(`cannot serve HTTP on \`${shown}': ${lastError.message}`);
  }
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
