/**
 * The running agent answers `wormhole status` on a unix socket that only
 * root can open (mode 0600 in a 0700 directory): GET /status gives JSON.
 */
import { chmod, mkdir, rm, stat } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { dirname } from "node:path";
import { NODE_DEFAULTS } from "../config/settings.js";
import type { Logger } from "../util/log.js";
import type { NodeStatus } from "./status.js";

/** Where the agent listens unless told otherwise: the node's control_socket default (src/config/settings.ts). */
export const DEFAULT_CONTROL_SOCKET: string = NODE_DEFAULTS.controlSocket;

export async function startControl(path: string, status: () => Promise<NodeStatus>, logger: Logger): Promise<Server> {
  await secureDirectory(dirname(path), logger);
  await rm(path, { force: true });
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/status") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    status()
      .then((s) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(s)))
      .catch((err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${String(err instanceof Error ? err.message : err)}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // The socket file is made as listen() binds: with this umask it is 0600 from its first moment.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  await chmod(path, 0o600);
  server.on("error", (err) => logger.warn({ err: err.message }, "control socket error"));
  return server;
}

/**
 * The socket's directory: made 0700 when missing. One that exists and that
 * others may write to is tightened to 0700 when it is ours alone (owned by
 * us, not sticky: a directory made for the socket); a shared one (sticky,
 * like /tmp, or another owner's) is left alone with a warning, since another
 * user could put something in the socket's place there.
 */
export async function secureDirectory(dir: string, logger: Logger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if ((st.mode & 0o022) === 0) return;
  const ours = st.uid === process.getuid?.() && (st.mode & 0o1000) === 0;
  if (ours) {
    await chmod(dir, 0o700);
    logger.info({ dir, was: (st.mode & 0o7777).toString(8) }, "tightened the control socket's directory to 0700");
    return;
  }
  logger.warn({ dir, mode: (st.mode & 0o7777).toString(8) }, "the control socket's directory is writable by others: another user could put something in its place; give --control-socket a path in a directory only root can write");
}

export async function stopControl(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(path, { force: true });
}

/** Asks a running agent; null when none answers on `path`. */
export function askAgent(path: string, timeoutMs = 3_000): Promise<NodeStatus | null> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: "/status", method: "GET", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        if (res.statusCode !== 200) {
          reject(new Error(`the agent at ${path} answered ${res.statusCode}: ${body.trim()}`));
          return;
        }
        try {
          resolve(JSON.parse(body) as NodeStatus);
        } catch {
          reject(new Error(`the agent at ${path} answered something that is not JSON`));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`the agent at ${path} did not answer within ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED") resolve(null);
      else if (err.code === "EACCES") reject(new Error(`no permission to open ${path}: run as root`));
      else reject(err);
    });
    req.end();
  });
}
