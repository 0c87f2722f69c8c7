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
import type { AddressInfo, Socket } from "node:net";
import ipaddr from "ipaddr.js";
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
  /** Connection bounds; see {@link HttpLimits}. */
  readonly limits?: HttpLimits;
}

/**
 * What slow clients can hold. A connection is "idle" until a request's
 * headers have arrived, and again once its response is sent. When a new
 * connection would pass either limit, an idle one (of that address, or of
 * all) is closed to make room: the oldest that has never sent a whole
 * request, else the oldest kept alive; only when none is idle is the new one
 * refused. So sockets that trickle headers (slowloris) cannot keep a probe of
 * /healthz out: it takes the place of the oldest of them.
 */
export interface HttpLimits {
  /** Connections at once. Default 64. */
  readonly maxConnections?: number;
  /** Connections at once from one address. Default 16. */
  readonly perAddress?: number;
  /** Milliseconds a request's headers may take to arrive. Default 5000. */
  readonly headersTimeoutMs?: number;
}

/**
 * Whether the status page answers a request with this Host header: an IP
 * address or localhost (with any port), or none (HTTP/1.0). A browser led to
 * the port by a name the attacker controls (DNS rebinding) sends that name,
 * and is refused. Pure.
 */
export function statusPageHostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host) ?? /^([^:]*)(?::\d+)?$/.exec(host);
  const name = m?.[1]?.toLowerCase();
  if (name === undefined || name === "") return false;
  return name === "localhost" || ipaddr.isValid(name);
}

/** An HTTP server of the registry's (the status page's, or the seed's watch), listening. */
export interface RegistryHttp {
  readonly server: Server;
  readonly port: number;
  /** Stops listening and ends every connection, kept-alive ones too. */
  close(): Promise<void>;
}

/** The handle of `server`, listening on `port`. */
export function serving(server: Server, port: number): RegistryHttp {
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
      // Read on demand while nobody watches (see PeerTable.fresh).
      void table.fresh().then(() => {
        const reason = unhealthyReason(table, iface);
        if (reason === null) send(res, req, 200, "text/plain; charset=utf-8", `ok: ${table.peers.size} peers on ${iface}\n`);
        else send(res, req, 503, "text/plain; charset=utf-8", `unavailable: ${reason}\n`);
      });
      return;
    }
    if (path === "/" && !statusPageHostAllowed(req.headers.host)) {
      send(res, req, 421, "text/plain; charset=utf-8", "misdirected request: the status page answers only to an IP address or localhost in Host\n");
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

/** Applies {@link HttpLimits}' connection counts to `server` (see there). */
export function boundConnections(server: Server, max: number, perAddress: number): void {
  /** Oldest first; busy while a request is being answered; served once one has been. */
  const open = new Map<Socket, { address: string; busy: boolean; served: boolean }>();
  /**
   * The connection to close for a new one: the oldest that has never sent a
   * whole request (a slow sender), else the oldest idle keep-alive one.
   */
  const victim = (address: string | null): Socket | null => {
    let idle: Socket | null = null;
    for (const [socket, c] of open) {
      if (c.busy || (address !== null && c.address !== address)) continue;
      if (!c.served) return socket;
      idle ??= socket;
    }
    return idle;
  };
  const makeRoom = (address: string | null, count: number, limit: number): boolean => {
    if (count < limit) return true;
    const v = victim(address);
    if (v === null) return false;
    open.delete(v);
    v.destroy();
    return true;
  };
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    let fromAddress = 0;
    for (const c of open.values()) if (c.address === address) fromAddress++;
    if (!makeRoom(address, fromAddress, perAddress) || !makeRoom(null, open.size, max)) {
      socket.destroy();
      return;
    }
    open.set(socket, { address, busy: false, served: false });
    socket.on("close", () => open.delete(socket));
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const c = open.get(req.socket);
    if (!c) return;
    c.busy = true;
    c.served = true;
    res.on("close", () => (c.busy = false));
  });
}

/**
 * Listens on `address` (`:PORT`: IPv6 and IPv4, or IPv4 alone where there is
 * no IPv6, as Go listeners do); resolves with the port, rejects with the
 * last error.
 */
export async function listenOn(server: Server, address: ListenAddress): Promise<number> {
  const hosts = address.host === null ? ["::", "0.0.0.0"] : [address.host];
  let lastError: Error | null = null;
  for (const host of hosts) {
    try {
      await listen(server, address.port, host);
      return (server.address() as AddressInfo).port;
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError ?? new Error("no address to listen on");
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
  const limits = options.limits ?? {};
  const headersTimeout = limits.headersTimeoutMs ?? 5_000;
  // Timeouts are checked every connectionsCheckingInterval (30 s by default): once a second instead.
  const server = createServer({ headersTimeout, requestTimeout: headersTimeout + 10_000, connectionsCheckingInterval: 1_000 }, createHttpHandler(options));
  boundConnections(server, limits.maxConnections ?? 64, limits.perAddress ?? 16);
  let port: number;
  try {
    port = await listenOn(server, address);
  } catch (err) {
    const shown = address.host === null ? `:${address.port}` : `${address.host}:${address.port}`;
    throw new Error(`cannot serve HTTP on \`${shown}': ${(err as Error).message}`);
  }
  return serving(server, port);
}
