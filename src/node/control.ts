/**
 * The running agent answers `wormhole status` on a unix socket that only
 * root can open (mode 0600 in a 0700 directory): GET /status gives JSON.
 */
import { chmod, mkdir, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { dirname } from "node:path";
import type { Logger } from "../util/log.js";
import type { NodeStatus } from "./status.js";

export const DEFAULT_CONTROL_SOCKET = "/run/wormhole/node.sock";

export async function startControl(path: string, status: () => Promise<NodeStatus>, logger: Logger): Promise<Server> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
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
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  server.on("error", (err) => logger.warn({ err: err.message }, "control socket error"));
  return server;
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
