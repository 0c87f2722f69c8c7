/**
 * The userspace backend: wireguard-go / boringtun's control socket, NAME.sock in the socket directory.
 * One connection per request: write `get=1\n\n` or `set=1\n...\n\n`, read until the empty line.
 */
import { createConnection } from "node:net";
import { join } from "node:path";
import { formatUapiSet, parseUapiGet, parseUapiSetReply } from "./uapi-parse.js";
import { quote } from "./quote.js";
import type { PeerUpdate, WgDevice } from "./types.js";
import { WgError } from "./types.js";

export const DEFAULT_SOCKET_DIR = "/var/run/wireguard";
export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024;

export interface UapiOptions {
  /** Directory holding NAME.sock. */
  readonly socketDir: string;
  /** Limit for one whole exchange (connect, request, reply), in milliseconds. */
  readonly timeoutMs: number;
  /** Largest reply accepted, in bytes. */
  readonly maxReplyBytes: number;
}

export function uapiSocketPath(socketDir: string, name: string): string {
  return join(socketDir, `${name}.sock`);
}

/** Reads the state of interface `name` through its control socket. */
export async function uapiGetDevice(name: string, options: UapiOptions): Promise<WgDevice> {
  const reply = await uapiExchange(name, uapiSocketPath(options.socketDir, name), "get=1\n\n", options);
  return parseUapiGet(name, reply);
}

/**
 * Applies updates with `update_only=true` (a peer that is gone is skipped by the daemon, never
 * created), removes with `remove=true`, and adds without `update_only`: for an add, the device is
 * read first and a peer it has already is left out (the protocol has no "create only"; a peer
 * someone adds between that read and the write gets these allowed IPs added to its own).
 * Validates every update first (TypeError); does no I/O when nothing is to change.
 */
export async function uapiUpdatePeers(name: string, updates: readonly PeerUpdate[], options: UapiOptions): Promise<void> {
  if (formatUapiSet(updates) === null) return;
  let wanted = updates;
  if (updates.some((u) => u.add !== undefined)) {
    const existing = new Set((await uapiGetDevice(name, options)).peers.map((p) => p.publicKey));
    wanted = updates.filter((u) => u.add === undefined || !existing.has(u.publicKey));
  }
  const request = formatUapiSet(wanted);
  if (request === null) return;
  const reply = await uapiExchange(name, uapiSocketPath(options.socketDir, name), request, options);
  parseUapiSetReply(name, reply);
}

/**
 * One request/reply on the control socket. Resolves with the reply text up to and including the
 * terminating empty line. Throws only WgError: not-found (no socket, or a stale one nobody listens
 * on), permission, failed (timeout, I/O error), protocol (reply cut short or too large).
 * The received bytes are wiped once decoded (they hold the private key).
 */
export function uapiExchange(
  name: string,
  socketPath: string,
  request: string,
  options: Pick<UapiOptions, "timeoutMs" | "maxReplyBytes">,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let lastByte = -1;
    let settled = false;
    const socket = createConnection(socketPath);

    const finish = (error: WgError | null, reply?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      for (const c of chunks) c.fill(0);
      if (error) reject(error);
      else resolve(reply ?? "");
    };
    const timer = setTimeout(() => {
      finish(new WgError("failed", `WireGuard interface ${quote(name)} did not answer on ${socketPath} within ${options.timeoutMs} ms`));
    }, options.timeoutMs);

    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk: Buffer) => {
      if (settled) return;
      // The reply ends with an empty line: "\n\n", possibly split across chunks.
      let endAt = -1;
      if (lastByte === 10 && chunk[0] === 10) endAt = 1;
      else {
        const i = chunk.indexOf("\n\n");
        if (i >= 0) endAt = i + 2;
      }
      const used = endAt >= 0 ? endAt : chunk.length;
      if (size + used > options.maxReplyBytes) {
        chunk.fill(0);
        finish(new WgError("protocol", `reply from WireGuard interface ${quote(name)} is larger than ${options.maxReplyBytes} bytes; refused`));
        return;
      }
      size += used;
      chunks.push(chunk);
      lastByte = chunk[chunk.length - 1] ?? -1;
      if (endAt >= 0) {
        const all = Buffer.concat(chunks, size);
        const text = all.toString("utf8");
        all.fill(0);
        finish(null, text);
      }
    });
    socket.on("end", () => {
      const why = size === 0 ? "closed the connection without answering" : "closed the connection in the middle of its reply";
      finish(new WgError("protocol", `WireGuard interface ${quote(name)} ${why} (${socketPath})`));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => finish(mapSocketError(name, socketPath, err)));
  });
}

/**
 * True when something listens on the socket (or we may not connect: it exists, `getDevice` will say
 * why). False for a missing path or a stale socket file whose daemon is gone. Never throws.
 */
export function uapiProbe(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(true), timeoutMs);
    socket.on("connect", () => done(true));
    socket.on("error", (err: NodeJS.ErrnoException) => done(err.code === "EACCES" || err.code === "EPERM"));
  });
}

/** Maps a socket error to a WgError (exported for tests: root cannot provoke EACCES). */
export function mapSocketError(name: string, socketPath: string, err: NodeJS.ErrnoException): WgError {
  switch (err.code) {
    case "ENOENT":
      return new WgError("not-found", `WireGuard interface ${quote(name)} not found (no ${socketPath})`, { cause: err });
    case "ECONNREFUSED":
      return new WgError("not-found", `WireGuard interface ${quote(name)} not found (${socketPath} is stale: nothing listens on it)`, {
        cause: err,
      });
    case "EACCES":
    case "EPERM":
      return new WgError(
        "permission",
        `no permission to control WireGuard interface ${quote(name)}: run as root or give access to ${socketPath}`,
        { cause: err },
      );
    default:
      return new WgError("failed", `WireGuard interface ${quote(name)}: ${socketPath}: ${err.message}`, { cause: err });
  }
}
