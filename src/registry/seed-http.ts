/**
 * The seed's HTTP watch (`-A/--address-http`, `-w/--watch-peer-key`): for
 * scripts written against the seed's registry. `GET /?t=TOKEN` (or
 * `?token=TOKEN`) on any path answers the watched peer's endpoint as plain
 * text, `IP:port` with no newline, or `not found`; a wrong or missing token
 * gets 403 `403 Forbidden\n`. The seed read WireGuard on every request; this
 * serves from the registry's PeerTable (at most one poll interval old).
 *
 * Where we differ from the seed, on purpose:
 * - nothing listens unless `-A` or `-w` is given (the seed always did, on :1639);
 * - the token is checked in constant time, and failed attempts are limited per
 *   source like the gRPC API's (the same limiter: one budget for both), 429
 *   with Retry-After when over it;
 * - an IPv6 endpoint is written `[2001:db8::1]:51820` (the seed wrote
 *   `2001:db8::1:51820`, which neither `wg set` nor a script can split);
 * - only GET and HEAD, no request body, small header and time limits.
 *
 * The request-to-reply steps are pure ({@link parseSeedRequest},
 * {@link seedWatchBody}); the handler adds the limiter and the token check.
 * Nothing here logs the request's URL: it holds the token.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { formatListen, type ListenAddress } from "../config/values.js";
import { tokenMatches } from "../rpc/auth.js";
import type { Logger } from "../util/log.js";
import { tryCanonicalIp } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";
import { boundConnections, listenOn, serving, type RegistryHttp } from "./http.js";
import { callerIp } from "./identity.js";
import { FailureLimiter, sourceKey } from "./ratelimit.js";
import type { PeerTable } from "./table.js";
import type { PeerMap } from "./view.js";

/** One reply: status, body and the headers beyond the common ones. */
export interface SeedReply {
  readonly status: number;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The seed's reply to a wrong or missing token: Go's http.Error(w, "403 Forbidden", 403). */
export const FORBIDDEN: SeedReply = { status: 403, body: "403 Forbidden\n" };

/** Go's answer to a watched peer it cannot find, or found without an endpoint. */
export const NOT_FOUND_BODY = "not found";

/** What a request asks, before its token is checked: a reply already, or the token it gives (null: none). */
export type SeedRequest = { readonly reply: SeedReply } | { readonly token: string | null };

/**
 * Reads a request as the seed's handler did: any path; the token is the first
 * `t` in the query, or when that is empty the first `token` (Go's
 * `r.FormValue`). Refuses what the seed would have read a form body from, and
 * anything but GET and HEAD. Pure; never throws.
 */
export function parseSeedRequest(method: string | undefined, url: string | undefined, hasBody: boolean): SeedRequest {
  if (method !== "GET" && method !== "HEAD") {
    return { reply: { status: 405, body: "405 Method Not Allowed\n", headers: { allow: "GET, HEAD" } } };
  }
  if (hasBody) return { reply: { status: 413, body: "413 Content Too Large: this endpoint takes no request body\n", headers: { connection: "close" } } };
  let params: URLSearchParams;
  try {
    params = new URL(url ?? "/", "http://registry.invalid").searchParams;
  } catch {
    return { reply: { status: 400, body: "400 Bad Request\n" } };
  }
  const token = params.get("t") || params.get("token") || "";
  return { token: token === "" ? null : token };
}

/**
 * An endpoint as the seed wrote it (Go's `IP.String()`, then `:port` when the
 * port is set), except that an IPv6 address is bracketed. Pure.
 */
export function formatSeedEndpoint(endpoint: Endpoint): string {
  const ip = endpoint.ip.includes(":") ? `[${endpoint.ip}]` : endpoint.ip;
  return endpoint.port > 0 ? `${ip}:${endpoint.port}` : ip;
}

/** What the registry knows when a request comes: its peers, and why the last read of the interface failed (null: it did not). */
export interface SeedView {
  readonly peers: PeerMap;
  readonly error: string | null;
}

/**
 * The body of the seed's 200 reply to a right token: the watched peer's
 * endpoint, `not found` when the interface has no such peer (or no key is
 * watched: the seed's default key was a placeholder no peer has) or it has
 * no endpoint, and `Error: "..."` (Go's %q, still 200, as the seed) when the
 * interface cannot be read. Pure.
 */
export function seedWatchBody(view: SeedView, watchPeerKey: string | null): string {
  if (view.error !== null) return `Error: ${JSON.stringify(view.error)}`;
  const endpoint = watchPeerKey === null ? null : view.peers.get(watchPeerKey)?.endpoint;
  return endpoint ? formatSeedEndpoint(endpoint) : NOT_FOUND_BODY;
}

/** Whether the request carries a body (the seed would have parsed a form from it). */
export function requestHasBody(headers: IncomingMessage["headers"]): boolean {
  const length = headers["content-length"];
  return headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

export interface SeedHttpOptions {
  readonly table: PeerTable;
  readonly iface: string;
  /** Shared token; null accepts every caller (as the gRPC API). */
  readonly token: string | null;
  /** The watched peer; null: every answer is "not found" (the seed without -w). */
  readonly watchPeerKey: string | null;
  /** Failed token attempts per source; give the gRPC API's, so both share one budget. Default a new one. */
  readonly failureLimiter?: FailureLimiter;
  readonly logger: Logger;
  /** The interface's own addresses: listening only on one of them (or loopback) keeps the token off the wire in plaintext. */
  readonly tunnel?: readonly string[];
}

export type SeedHttp = RegistryHttp;

const COMMON_HEADERS = {
  "content-type": "text/plain; charset=utf-8",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

function send(req: IncomingMessage, res: ServerResponse, reply: SeedReply): void {
  res.writeHead(reply.status, { ...COMMON_HEADERS, "content-length": Buffer.byteLength(reply.body), ...reply.headers });
  res.end(req.method === "HEAD" ? undefined : reply.body);
}

/** The request handler (exported for tests that want no socket). */
export function createSeedHttpHandler(options: SeedHttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { table, token, logger } = options;
  const limiter = options.failureLimiter ?? new FailureLimiter();
  return (req, res) => {
    const request = parseSeedRequest(req.method, req.url, requestHasBody(req.headers));
    if ("reply" in request) {
      send(req, res, request.reply);
      return;
    }
    // As the gRPC API: a right token is always served, whatever others at its address got wrong.
    if (token !== null && (request.token === null || !tokenMatches(token, request.token))) {
      // No token at all is no guess (a browser's /favicon.ico): refused, not counted.
      if (request.token === null) {
        send(req, res, FORBIDDEN);
        return;
      }
      const address = req.socket.remoteAddress ?? "unknown";
      const from = address.includes(":") ? `[${address}]:${req.socket.remotePort ?? 0}` : `${address}:${req.socket.remotePort ?? 0}`;
      // Counted as the gRPC API counts them: a tunnel peer alone, anyone else by address (IPv6: by /64).
      const ip = callerIp(from);
      const source = ip !== null && table.identity.keyOf(ip) !== null ? ip : sourceKey(from);
      const refusal = limiter.check(source);
      if (refusal) {
        const retryInSec = Math.ceil(refusal.retryInMs / 1000);
        if (refusal.log) logger.warn({ from, source, api: "seed-http", retryInSec }, "too many failed token attempts from this address; refusing its calls for a while");
        send(req, res, {
          status: 429,
          body: `429 Too Many Requests: too many failed token attempts from this address; retry in ${retryInSec}s\n`,
          headers: { "retry-after": String(retryInSec) },
        });
        return;
      }
      limiter.fail(source);
      logger.warn({ from, api: "seed-http" }, "refused a call with a wrong token");
      send(req, res, FORBIDDEN);
      return;
    }
    const error = table.lastError ? `cannot read WireGuard interface ${options.iface}: ${table.lastError.message}` : null;
    send(req, res, { status: 200, body: seedWatchBody({ peers: table.peers, error }, options.watchPeerKey) });
  };
}

/** Starts the seed's HTTP watch; `:PORT` listens on every address (IPv6 and IPv4, or IPv4 alone without IPv6), as Go's did. */
export async function startSeedHttp(address: ListenAddress, options: SeedHttpOptions): Promise<SeedHttp> {
  // A request is one short line and a few headers: 8 KiB of them at most (431 beyond).
  const server = createServer({ maxHeaderSize: 8 * 1024 }, createSeedHttpHandler(options));
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  // As the status page's port: 64 connections, 16 per address, an idle one closed to make room (slowloris).
  boundConnections(server, 64, 16);
  let port: number;
  try {
    port = await listenOn(server, address);
  } catch (err) {
    throw new Error(`cannot serve the seed's HTTP watch (--address-http) on \`${formatListen(address)}': ${(err as Error).message}`);
  }
  const shown = formatListen({ host: address.host, port });
  const { logger, watchPeerKey, table } = options;
  logger.info({ addressHttp: shown, watchPeerKey }, "serving the seed's HTTP watch: GET /?t=TOKEN answers the watched peer's endpoint");
  if (watchPeerKey === null) {
    logger.warn({ addressHttp: shown }, "no --watch-peer-key: the seed's HTTP watch answers `not found' to every right token");
  } else if (!table.peers.has(watchPeerKey)) {
    logger.warn({ watchPeerKey, iface: options.iface }, "--watch-peer-key is not a peer of the interface (yet): the seed's HTTP watch answers `not found' until it is");
  }
  if (options.token !== null && !localOnly(address.host, options.tunnel ?? [])) {
    logger.warn(
      { addressHttp: shown },
      "the seed's HTTP watch takes the token in the URL, in plaintext: listen on the tunnel address or loopback, or keep the token for it out of untrusted networks and proxy logs",
    );
  }
  return serving(server, port);
}

/** Whether a listen host reaches only this machine or the tunnel. Pure. */
export function localOnly(host: string | null, tunnel: readonly string[]): boolean {
  if (host === null) return false;
  if (host === "localhost") return true;
  const ip = tryCanonicalIp(host);
  if (ip === null) return false;
  return ip === "::1" || ip.startsWith("127.") || tunnel.some((a) => tryCanonicalIp(a) === ip);
}
