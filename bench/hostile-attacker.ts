/**
 * One attack on a registry at 127.0.0.1, at full speed for a bounded time, in a process of its
 * own (forked by bench/hostile.ts, which sends it an AttackConfig over IPC and gets an
 * AttackResult back). Raw HTTP/2 with hand-made gRPC frames: an attacker does not play by
 * grpc-js's rules (flow control, message limits). Every connection goes to 127.0.0.1; the
 * insider's come from 127.0.0.2 (a loopback address). Bounded: at most `connections`
 * connections and 32 calls on each, stopped at `seconds`.
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import protobuf from "protobufjs";
import { v1Proto } from "../src/rpc/proto.js";

export const ATTACKS = [
  "reflection-unread",
  "watch-unread",
  "wrong-token-big-requests",
  "seed-big-token",
  "token-guessing",
  "health-long-names",
  "connection-flood",
  "report-flood",
  "http-slowloris",
] as const;
export type Attack = (typeof ATTACKS)[number];

export interface AttackConfig {
  readonly attack: Attack;
  readonly port: number;
  readonly httpPort: number;
  /** The right token: the token-holder and insider attacks use it. */
  readonly token: string;
  readonly seconds: number;
  /** Connections the attack opens at most (connection-flood, slowloris); others use a few. */
  readonly connections: number;
  /** Keys of the registry's peers (report-flood relays "to" them). */
  readonly peerKeys: readonly string[];
  /** The insider's source address: a peer's /32 allowed IP on the registry's interface. */
  readonly insiderAddress: string;
}

export interface AttackResult {
  readonly type: "result";
  readonly attack: Attack;
  /** Calls (or requests, or sockets) the attack made. */
  readonly operations: number;
  readonly bytesSent: number;
  /** Statuses the registry answered with: grpc-status (or HTTP status) → count. */
  readonly statuses: Record<string, number>;
  readonly note: string;
}

const CALLS_PER_CONNECTION = 32;
const BIG = 60 * 1024; // just under the registry's 64 KiB request limit

function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** A length-delimited protobuf field (key, length, bytes), written by protobufjs. */
function field(no: number, bytes: Buffer): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32((no << 3) | 2).bytes(bytes).finish());
}

class Attacker {
  operations = 0;
  bytesSent = 0;
  readonly statuses: Record<string, number> = {};
  readonly sessions = new Set<http2.ClientHttp2Session>();
  readonly sockets = new Set<net.Socket>();
  stopped = false;

  constructor(readonly c: AttackConfig) {}

  count(status: string): void {
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
  }

  session(options: { stalled?: boolean; from?: string } = {}): http2.ClientHttp2Session {
    const s = http2.connect(`http://127.0.0.1:${this.c.port}`, {
      settings: { initialWindowSize: options.stalled ? 0 : 65_535 },
      ...(options.from ? { createConnection: () => net.connect({ host: "127.0.0.1", port: this.c.port, localAddress: options.from }) } : {}),
    });
    s.on("error", () => {});
    s.on("close", () => this.sessions.delete(s));
    this.sessions.add(s);
    return s;
  }

  /** One gRPC call; resolves with its grpc-status when it ends (or "reset"). */
  call(s: http2.ClientHttp2Session, path: string, body: Buffer | null, headers: http2.OutgoingHttpHeaders = {}, read = true): Promise<string> {
    return new Promise((resolve) => {
      if (s.destroyed || s.closed) {
        resolve("closed");
        return;
      }
      let req: http2.ClientHttp2Stream;
      try {
        req = s.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
      } catch {
        resolve("closed");
        return;
      }
      this.operations++;
      let status = "reset";
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      };
      req.on("response", take);
      req.on("trailers", take);
      req.on("error", () => {});
      if (read) req.on("data", () => {});
      req.on("close", () => {
        this.count(status);
        resolve(status);
      });
      if (body) {
        this.bytesSent += body.length;
        req.end(body);
      }
    });
  }

  /** Keeps `n` calls made by `make` open on each of `sessions` until stopped. */
  async keepCalling(sessions: http2.ClientHttp2Session[], n: number, make: (s: http2.ClientHttp2Session) => Promise<string>): Promise<void> {
    await Promise.all(
      sessions.flatMap((s) =>
        Array.from({ length: n }, async () => {
          while (!this.stopped && !s.destroyed) await make(s);
        }),
      ),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sessions) s.destroy();
    for (const s of this.sockets) s.destroy();
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function run(a: Attacker): Promise<string> {
  const c = a.c;
  switch (c.attack) {
    case "reflection-unread": {
      // 8 connections that never read, each sending ~60 KB reflection requests as fast as the registry takes them.
      const request = frame(Buffer.concat([field(1, Buffer.alloc(BIG, 0x61)), field(7, Buffer.alloc(0))]));
      const batch = Buffer.concat(Array.from({ length: 16 }, () => request));
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const s = a.session({ stalled: true });
          const req = s.request({ ":method": "POST", ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "content-type": "application/grpc", te: "trailers" });
          req.on("error", () => {});
          while (!a.stopped && !req.destroyed) {
            a.operations += 16;
            a.bytesSent += batch.length;
            if (!req.write(batch)) {
              await new Promise<void>((resolve) => {
                const done = () => {
                  req.off("drain", done).off("close", done);
                  resolve();
                };
                req.on("drain", done).on("close", done);
              });
            }
          }
        }),
      );
      return "8 connections that never read, sending 60 KB list_services requests as fast as they are taken";
    }
    case "watch-unread": {
      // 2 connections × 20 Watch streams of every peer that never read; resubscribe when dropped.
      const sessions = [a.session({ stalled: true }), a.session({ stalled: true })];
      await a.keepCalling(sessions, 20, (s) => a.call(s, "/wormhole.v1.Registry/Watch", frame(Buffer.alloc(0)), bearer(c.token), false));
      return "2 connections × 20 unread Watch streams (right token), resubscribing when dropped";
    }
    case "wrong-token-big-requests": {
      const report = frame(Buffer.concat(Array.from({ length: BIG / 2 }, () => Buffer.from([0x1a, 0x00]))));
      const sessions = [a.session(), a.session(), a.session()];
      await a.keepCalling(sessions, CALLS_PER_CONNECTION, (s) => a.call(s, "/wormhole.v1.Registry/Report", report, bearer("wrong-token")));
      return "3 connections × 32 calls: 60 KB Reports of empty paths, wrong token";
    }
    case "seed-big-token": {
      const request = frame(field(1, Buffer.alloc(BIG, 0x61)));
      const sessions = [a.session(), a.session(), a.session()];
      await a.keepCalling(sessions, CALLS_PER_CONNECTION, (s) => a.call(s, "/wgSvc.proto.Registry/GetEndpoint", request));
      return "3 connections × 32 calls: seed GetEndpoint with a 60 KB wrong token";
    }
    case "token-guessing": {
      const sessions = [a.session(), a.session()];
      let i = 0;
      await a.keepCalling(sessions, CALLS_PER_CONNECTION, (s) => a.call(s, "/wormhole.v1.Registry/GetPeers", frame(Buffer.alloc(0)), bearer(`guess-${i++}`)));
      return "2 connections × 32 calls: GetPeers with wrong tokens, from 127.0.0.1 (the legitimate clients' address)";
    }
    case "health-long-names": {
      const request = frame(field(1, Buffer.alloc(BIG, 0x61)));
      const sessions = Array.from({ length: 10 }, () => a.session());
      await a.keepCalling(sessions, CALLS_PER_CONNECTION, (s) => a.call(s, "/grpc.health.v1.Health/Watch", request));
      return "10 connections × 32 health Watch calls with 60 KB service names";
    }
    case "connection-flood": {
      const preface = Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
      let open = 0;
      const openOne = (): Promise<void> =>
        new Promise((resolve) => {
          const s = net.connect(c.port, "127.0.0.1", () => {
            open++;
            a.operations++;
            s.write(preface);
            resolve();
          });
          s.on("error", () => resolve());
          s.on("close", () => {
            a.sockets.delete(s);
            if (!a.stopped) a.count("closed by registry");
          });
          a.sockets.add(s);
        });
      while (!a.stopped && a.sockets.size < c.connections) await Promise.all(Array.from({ length: 50 }, openOne));
      while (!a.stopped) await new Promise((r) => setTimeout(r, 100));
      return `${open} idle HTTP/2 connections opened (at most ${c.connections}), held`;
    }
    case "report-flood": {
      // An identified node (from its tunnel address) alternating 512 relayed paths and none.
      const relayed = (on: boolean) =>
        frame(
          v1Proto.Registry.service.Report.requestSerialize({
            publicKey: "",
            candidates: [],
            paths: on ? c.peerKeys.slice(0, 512).map((k) => ({ peerPublicKey: k, kind: "PATH_KIND_RELAYED", sinceUnixMs: 1, endpoint: null })) : [],
          }),
        );
      const frames = [relayed(true), relayed(false)];
      const sessions = [a.session({ from: c.insiderAddress })];
      let i = 0;
      await a.keepCalling(sessions, CALLS_PER_CONNECTION, (s) => a.call(s, "/wormhole.v1.Registry/Report", frames[i++ % 2] ?? null, bearer(c.token)));
      return `an identified node (${c.insiderAddress}) reporting 512 relayed paths and none, alternately, 32 calls at once`;
    }
    case "http-slowloris": {
      let opened = 0;
      const trickle = () => {
        if (a.stopped || a.sockets.size >= c.connections) return;
        const s = net.connect(c.httpPort, "127.0.0.1", () => {
          opened++;
          a.operations++;
          s.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        });
        const timer = setInterval(() => s.write("X-a: b\r\n"), 1000);
        s.on("error", () => {});
        s.on("close", () => {
          clearInterval(timer);
          a.sockets.delete(s);
          if (!a.stopped) a.count("closed by registry");
          setImmediate(trickle); // reconnect at once
        });
        a.sockets.add(s);
      };
      for (let i = 0; i < c.connections; i++) trickle();
      while (!a.stopped) await new Promise((r) => setTimeout(r, 100));
      return `${c.connections} sockets trickling header lines once a second, reconnecting when closed (${opened} opened)`;
    }
  }
}

if (process.send) {
  process.once("message", (config: AttackConfig) => {
    const a = new Attacker(config);
    const hardStop = setTimeout(() => process.exit(3), (config.seconds + 30) * 1000);
    hardStop.unref();
    let note = "";
    const finished = run(a).then((n) => (note = n));
    setTimeout(() => {
      a.stop();
      void Promise.race([finished, new Promise((r) => setTimeout(r, 2000))]).then(() => {
        const result: AttackResult = { type: "result", attack: config.attack, operations: a.operations, bytesSent: a.bytesSent, statuses: a.statuses, note };
        process.send?.(result, () => process.exit(0));
      });
    }, config.seconds * 1000);
  });
}
