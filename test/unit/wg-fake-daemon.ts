/**
 * Test helper (not a test): a tiny userspace-API daemon on a unix socket, answering `get=1` from
 * its state and applying `set=1` with update_only semantics, like wireguard-go does. Records every
 * raw request. `mode` makes it misbehave: hang (never answer), close (hang up at once), or a
 * canned reply.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FakePeerState {
  endpoint: string | null;
  keepalive: number;
  allowedIps: string[];
  presharedHex: string;
  handshakeSec: number;
}

export interface FakeDaemonState {
  privateKeyHex: string | null;
  listenPort: number;
  /** Keyed by hex public key, in insertion order. */
  peers: Map<string, FakePeerState>;
}

export type FakeDaemonMode = { kind: "normal" } | { kind: "hang" } | { kind: "close" } | { kind: "reply"; chunks: string[] };

export interface FakeDaemon {
  readonly path: string;
  readonly state: FakeDaemonState;
  readonly requests: string[];
  mode: FakeDaemonMode;
  close(): Promise<void>;
}

export async function tempDir(prefix = "wht-"): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export async function startFakeDaemon(path: string, state: FakeDaemonState): Promise<FakeDaemon> {
  const sockets = new Set<Socket>();
  const daemon: FakeDaemon = {
    path,
    state,
    requests: [],
    mode: { kind: "normal" },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buf = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      buf += d;
      const end = buf.indexOf("\n\n");
      if (end < 0) return;
      const request = buf.slice(0, end + 2);
      buf = "";
      daemon.requests.push(request);
      const mode = daemon.mode;
      if (mode.kind === "hang") return;
      if (mode.kind === "close") {
        socket.end();
        return;
      }
      if (mode.kind === "reply") {
        void (async () => {
          for (const c of mode.chunks) {
            socket.write(c);
            await new Promise((r) => setTimeout(r, 5));
          }
          socket.end();
        })();
        return;
      }
      socket.end(answer(state, request));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  return daemon;
}

function answer(state: FakeDaemonState, request: string): string {
  const lines = request.split("\n").filter((l) => l !== "");
  if (lines[0] === "get=1") {
    let out = "";
    if (state.privateKeyHex !== null) out += `private_key=${state.privateKeyHex}\n`;
    out += `listen_port=${state.listenPort}\n`;
    for (const [key, p] of state.peers) {
      out += `public_key=${key}\npreshared_key=${p.presharedHex}\nprotocol_version=1\n`;
      if (p.endpoint !== null) out += `endpoint=${p.endpoint}\n`;
      out += `last_handshake_time_sec=${p.handshakeSec}\nlast_handshake_time_nsec=0\ntx_bytes=10\nrx_bytes=20\n`;
      out += `persistent_keepalive_interval=${p.keepalive}\n`;
      for (const a of p.allowedIps) out += `allowed_ip=${a}\n`;
    }
    return `${out}errno=0\n\n`;
  }
  if (lines[0] === "set=1") {
    let current: FakePeerState | undefined;
    let currentKey = "";
    const pending: [string, FakePeerState][] = [];
    for (const line of lines.slice(1)) {
      const [k, v = ""] = line.split("=", 2) as [string, string?];
      if (k === "public_key") {
        currentKey = v;
        current = state.peers.get(v);
        if (current === undefined) {
          current = { endpoint: null, keepalive: 0, allowedIps: [], presharedHex: "0".repeat(64), handshakeSec: 0 };
          pending.push([v, current]);
        }
      } else if (k === "update_only" && v === "true") {
        const i = pending.findIndex(([pk]) => pk === currentKey);
        if (i >= 0) {
          pending.splice(i, 1);
          current = undefined; // skipped, as wireguard-go does
        }
      } else if (k === "remove" && v === "true") {
        if (current && state.peers.get(currentKey) === current) state.peers.delete(currentKey);
        current = undefined;
      } else if (k === "replace_allowed_ips" && v === "true") {
        if (current) current.allowedIps = [];
      } else if (k === "allowed_ip") {
        if (current) current.allowedIps.push(v);
      } else if (k === "endpoint") {
        if (current) current.endpoint = v;
      } else if (k === "persistent_keepalive_interval") {
        if (current) current.keepalive = Number(v);
      } else {
        return "errno=-22\n\n";
      }
    }
    for (const [k, p] of pending) state.peers.set(k, p);
    return "errno=0\n\n";
  }
  return ""; // wireguard-go hangs up on an unknown operation
}

/** Leaves a stale unix socket at `path`: a child process listens there, then dies by SIGKILL. */
export async function makeStaleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once("data", () => resolve());
      child.once("exit", () => reject(new Error("stale-socket helper exited early")));
    });
  } finally {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }
}
