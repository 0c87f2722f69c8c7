/**
 * The registry's gRPC server: the services of handlers.ts on one port, with
 * bounds on every connection, listening on the seed's address forms.
 * Handlers (handlers.ts), the Watch fan-out (watch-hub.ts) and pre-encoded
 * replies (replies.ts) are re-exported here for importers.
 */
import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { createHandlers, type RegistryServiceOptions } from "./handlers.js";
import { seedService, v1Service } from "./replies.js";

export { type AuthRefusal, createHandlers, type RegistryServiceOptions, reportLimiter } from "./handlers.js";
export { Encoded, encodeWatchEvent, seedService, v1Service } from "./replies.js";
export type { WatchLimits } from "./watch-hub.js";

/**
 * Calls one connection may have open at once. A node's channel holds its Watch
 * and at most a Report and a GetPeers or seed call; 32 leaves ten times that
 * for tools on a shared channel (health, reflection), and bounds what one
 * connection makes the registry hold (32 Watch streams, 32 requests of 1 MiB).
 */
export const MAX_CONCURRENT_STREAMS = 32;

/**
 * The largest request the registry reads, for every method (grpc-js has one
 * limit per server). The largest a node sends is a Report: MAX_CANDIDATES
 * candidates and MAX_PATHS paths with every field at its longest take about
 * 60 KiB (61,310 bytes; test/unit/registry-limits.test.ts encodes one);
 * every other request (a token, a health service name, a reflection symbol)
 * is tiny. So a connection's 32 calls hold at most 2 MiB of requests being
 * read.
 */
export const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * Connections the registry holds at once; more are closed as they arrive
 * (net.Server maxConnections). Sized for 10,000 nodes with one connection
 * each, and room for tools and reconnects. With MAX_CONCURRENT_STREAMS and
 * MAX_REQUEST_BYTES, it bounds what unauthenticated clients can make the
 * registry hold.
 */
export const MAX_CONNECTIONS = 16_384;

/** A connection with no call open this long is closed; a node's never is (its Watch stays open). */
export const CONNECTION_IDLE_MS = 5 * 60_000;

/**
 * Server options, all read by grpc-js 1.14's server (it ignores the rest).
 *
 * The registry pings every connection every 30 s and drops one that does not
 * answer within 10 s. It does not police the client's own pings: grpc-js has no
 * server-side min ping interval, ping strikes or permit-without-calls (those
 * names are client options there), so a node's 15 s keepalive can never earn it
 * a GOAWAY. A client that sends a thousand pings faster than they are
 * answered is disconnected by node's HTTP/2 (nghttp2's limit on unsent acks);
 * slower pings cost one small ack each, like any other request.
 *
 * No `grpc.max_connection_age_ms`: it would send every node a GOAWAY (new
 * calls on a new connection), and with its grace period cut every Watch.
 */
export const SERVER_CHANNEL_OPTIONS: grpc.ServerOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  // Advertised in HTTP/2 SETTINGS: a client over it waits for a call to end
  // (grpc-js queues it), so one connection cannot open unbounded Watch streams.
  "grpc.max_concurrent_streams": MAX_CONCURRENT_STREAMS,
  // Counted from the end of a connection's last call; pings do not reset it.
  "grpc.max_connection_idle_ms": CONNECTION_IDLE_MS,
  // Checked against each message's length prefix, before its bytes are buffered.
  "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
};

/** Bounds on each client connection (defaults above); tests shorten them. */
export interface ConnectionLimits {
  /** Calls open at once on one connection. Default {@link MAX_CONCURRENT_STREAMS}. */
  readonly maxConcurrentStreams?: number;
  /** Milliseconds a connection may stay without any call before it is closed. Default {@link CONNECTION_IDLE_MS}. */
  readonly idleMs?: number;
  /** Connections held at once; more are closed as they arrive. Default {@link MAX_CONNECTIONS}. */
  readonly maxConnections?: number;
}

export interface RegistryServerOptions extends RegistryServiceOptions {
  readonly connections?: ConnectionLimits;
}

/**
 * A grpc-js server that accepts its connections itself (through grpc-js's
 * connection injector), so that it can cap how many it holds: grpc-js has
 * no such setting. {@link bindServer} listens with it; shutting the server
 * down also stops the listeners.
 */
export class RegistryServer extends grpc.Server {
  private readonly listeners: net.Server[] = [];

  constructor(
    options: grpc.ServerOptions,
    private readonly maxConnections: number,
  ) {
    super(options);
  }

  /** Listens on `host:port` (port 0: any); resolves to the port. */
  async listen(host: string, port: number, credentials: grpc.ServerCredentials): Promise<number> {
    const injector = this.createConnectionInjector(credentials);
    const listener = net.createServer((socket) => injector.injectConnection(socket));
    listener.maxConnections = this.maxConnections;
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen({ host, port }, () => {
        listener.off("error", reject);
        resolve();
      });
    });
    this.listeners.push(listener);
    return (listener.address() as net.AddressInfo).port;
  }

  override tryShutdown(callback: (error?: Error) => void): void {
    this.closeListeners();
    super.tryShutdown(callback);
  }

  override forceShutdown(): void {
    this.closeListeners();
    super.forceShutdown();
  }

  private closeListeners(): void {
    for (const l of this.listeners.splice(0)) l.close();
  }
}

export function createRegistryServer(options: RegistryServerOptions): RegistryServer {
  const limits = options.connections ?? {};
  const { seed, v1, tokenBeforeRequest } = createHandlers(options);
  const server = new RegistryServer(
    {
      ...SERVER_CHANNEL_OPTIONS,
      ...(limits.maxConcurrentStreams !== undefined ? { "grpc.max_concurrent_streams": limits.maxConcurrentStreams } : {}),
      ...(limits.idleMs !== undefined ? { "grpc.max_connection_idle_ms": limits.idleMs } : {}),
      interceptors: [tokenBeforeRequest],
    },
    limits.maxConnections ?? MAX_CONNECTIONS,
  );
  server.addService(seedService, seed);
  server.addService(v1Service, v1);
  return server;
}

/**
 * Turns the seed's Go-style listen address into one grpc-js binds:
 * ":1638" means every address; "host:port" and "[v6]:port" pass through.
 */
export function bindCandidates(address: string): string[] {
  const m = /^:(\d+)$/.exec(address.trim());
  if (m) return [`[::]:${m[1]}`, `0.0.0.0:${m[1]}`];
  return [address.trim()];
}

/**
 * "[::1]:0" → ["::1", 0]; "127.0.0.1:1638" → ["127.0.0.1", 1638]; null when it
 * is not host:port (then grpc-js binds it, without the connection cap).
 */
function hostAndPort(target: string): [string, number] | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:]+):(\d+)$/.exec(target);
  if (!m?.[1] || m[2] === undefined) return null;
  const port = Number(m[2]);
  return port <= 65535 ? [m[1], port] : null;
}

export function bindServer(server: grpc.Server, address: string, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  const candidates = bindCandidates(address);
  const bindOne = (target: string): Promise<number> => {
    const hp = hostAndPort(target);
    if (server instanceof RegistryServer && hp) {
      if (hp[0] !== "localhost") return server.listen(hp[0], hp[1], credentials);
      // As grpc-js binds localhost: 127.0.0.1, and ::1 on the same port where there is IPv6.
      return server.listen("127.0.0.1", hp[1], credentials).then((port) =>
        server.listen("::1", port, credentials).then(
          () => port,
          () => port,
        ),
      );
    }
    return new Promise<number>((resolve, reject) => {
      server.bindAsync(target, credentials, (err, port) => {
        if (err) reject(err);
        else resolve(port);
      });
    });
  };
  const tryBind = (i: number, lastError: Error | null): Promise<number> => {
    const target = candidates[i];
    if (target === undefined) {
      return Promise.reject(new Error(`cannot listen on \`${address}': ${lastError?.message ?? "no address"}`));
    }
    return bindOne(target).catch((err: Error) => tryBind(i + 1, err));
  };
  return tryBind(0, null);
}
