/**
 * The load generator the benches start in a process of its own (child_process.fork with an IPC
 * channel): it is not a bench by itself. It talks gRPC to 127.0.0.1 only.
 *
 * Mode "watch" (bench/fanout.ts): opens N Watch streams over C connections, in batches (the next
 * batch only once the previous one has its snapshots, so the registry never holds more than one
 * batch of snapshots in flight), then makes R endpoint changes on the registry's interface itself
 * (over its control socket) and times, per stream, the arrival of the event for each change.
 * Messages are not decoded except the small change events (a 10,000-peer snapshot decoded 10,000
 * times would measure this process, not the registry).
 *
 * Mode "getendpoint" (bench/getendpoint.ts): closed-loop GetEndpoint callers at several
 * concurrency levels, one connection per caller, for a fixed time each.
 */
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { seedProto, v1Proto } from "../src/rpc/proto.js";
import { createWireGuard } from "../src/wg/index.js";

export interface WatchConfig {
  readonly mode: "watch";
  readonly address: string;
  readonly token: string;
  readonly streams: number;
  readonly connections: number;
  readonly batch: number;
  /** "http2": a minimal gRPC client on node:http2 (default); "grpc-js": the library the node uses. */
  readonly client: "http2" | "grpc-js";
  readonly settleMs: number;
  readonly rounds: number;
  readonly roundTimeoutMs: number;
  readonly gapMs: number;
  readonly iface: string;
  /** Round r moves its peer to port portBase + r (distinct per scenario sharing an interface). */
  readonly portBase: number;
  /** base64 keys of peers the rounds may move. */
  readonly targets: readonly string[];
  /**
   * Interest-filtered Watch, as a node asks: stream i watches `perStream` peers, keys[i] to
   * keys[i + perStream - 1] (wrapping), so each peer is watched by `perStream` streams. Absent:
   * every stream watches every peer.
   */
  readonly interest?: { readonly keys: readonly string[]; readonly perStream: number };
}

export interface GetEndpointConfig {
  readonly mode: "getendpoint";
  readonly address: string;
  readonly token: string;
  readonly levels: readonly number[];
  readonly secondsPerLevel: number;
  readonly warmupMs: number;
  readonly expectPeers: number;
}

export type LoadConfig = WatchConfig | GetEndpointConfig;

export interface RoundResult {
  readonly round: number;
  readonly peer: string;
  /** Time the set took on the control socket, ms. */
  readonly setMs: number;
  readonly received: number;
  /** Streams that should get it (those watching the peer). */
  readonly expected: number;
  /** Per stream: ms from just before the set to the event's arrival (only streams that got it). */
  readonly latenciesMs: number[];
}

export interface WatchResult {
  readonly type: "result";
  readonly mode: "watch";
  readonly opened: number;
  readonly snapshots: number;
  readonly snapshotBytes: number;
  readonly snapshotSeconds: number;
  readonly errors: Record<string, number>;
  readonly rounds: RoundResult[];
  readonly loadgenCpuSec: { snapshots: number; rounds: number };
  readonly loadgenRssMb: number;
}

export interface LevelResult {
  readonly concurrency: number;
  readonly seconds: number;
  readonly ok: number;
  readonly failed: number;
  readonly latenciesMs: number[];
  readonly replyBytes: number;
  readonly peersInReply: number;
  readonly loadgenCpuSec: number;
  readonly firstError: string | null;
}

export interface GetEndpointResult {
  readonly type: "result";
  readonly mode: "getendpoint";
  readonly levels: LevelResult[];
}

export type LoadMessage = { type: "phase"; name: string } | WatchResult | GetEndpointResult | { type: "error"; message: string };

const send = (m: LoadMessage) => process.send?.(m);
const phase = (name: string) => send({ type: "phase", name });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cpuSec = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function client(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    // One connection per client object: without this, clients with equal options share one.
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
  });
}

function metadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

const identity = (b: Buffer): Buffer => b;

/** One Watch stream as the load generator sees it. */
interface WatchStream {
  cancel(): void;
}

interface WatchSink {
  /** The first message (size only: it is not kept). */
  snapshot(first: Buffer | null, size: number): void;
  /** Any later message, whole. */
  event(buf: Buffer): void;
  error(what: string): void;
}

/**
 * gRPC's length-prefixed messages out of DATA chunks. The first message (the snapshot, ~1 MB on
 * 10,000 peers) is only counted; later ones are collected and handed on.
 */
class MessageReader {
  private header = Buffer.alloc(5);
  private headerGot = 0;
  private remaining = -1;
  private size = 0;
  private parts: Buffer[] = [];
  private count = 0;
  private firstChunk: Buffer | null = null;

  constructor(private readonly sink: WatchSink) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining < 0) {
        const take = Math.min(5 - this.headerGot, chunk.length - at);
        chunk.copy(this.header, this.headerGot, at, at + take);
        this.headerGot += take;
        at += take;
        if (this.headerGot < 5) return;
        this.size = this.remaining = this.header.readUInt32BE(1);
        this.headerGot = 0;
        this.parts = [];
        this.firstChunk = null;
        if (this.remaining === 0) this.done();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      const piece = chunk.subarray(at, at + take);
      if (this.count === 0) this.firstChunk ??= Buffer.from(piece.subarray(0, 1));
      else this.parts.push(piece);
      this.remaining -= take;
      at += take;
      if (this.remaining === 0) this.done();
    }
  }

  private done(): void {
    if (this.count === 0) this.sink.snapshot(this.firstChunk, this.size);
    else this.sink.event(this.parts.length === 1 ? (this.parts[0] ?? Buffer.alloc(0)) : Buffer.concat(this.parts));
    this.count++;
    this.remaining = -1;
    this.parts = [];
    this.firstChunk = null;
  }
}

type Connect = (sink: WatchSink, keys: readonly string[]) => WatchStream;

/** A WatchRequest of `keys` as a gRPC message (flag 0, length, bytes). */
function watchRequestFrame(keys: readonly string[]): Buffer {
  const body = v1Proto.Registry.service.Watch.requestSerialize({ publicKey: "", peerPublicKeys: [...keys] });
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** A minimal gRPC client: POST on node:http2, a WatchRequest, length-prefixed replies. */
function http2Watcher(address: string, token: string): Connect {
  const session = http2.connect(`http://${address}`, { maxSessionMemory: 1 << 30 });
  session.on("error", () => {
    /* each stream reports its own end */
  });
  session.setMaxListeners(0);
  sessions.push(session);
  return (sink, keys) => {
    const req = session.request({
      ":method": "POST",
      ":path": "/wormhole.v1.Registry/Watch",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    const reader = new MessageReader(sink);
    let cancelled = false;
    req.on("data", (chunk: Buffer) => reader.push(chunk));
    req.on("trailers", (t: http2.IncomingHttpHeaders) => {
      if (!cancelled) sink.error(`grpc-status ${String(t["grpc-status"])}: ${String(t["grpc-message"] ?? "")}`);
    });
    req.on("response", (h: http2.IncomingHttpHeaders) => {
      // A trailers-only reply (an immediate error) puts grpc-status in the headers.
      if (h["grpc-status"] !== undefined && !cancelled) sink.error(`grpc-status ${String(h["grpc-status"])}: ${String(h["grpc-message"] ?? "")}`);
    });
    req.on("error", (err: Error) => {
      if (!cancelled) sink.error(err.message);
    });
    req.end(watchRequestFrame(keys));
    return {
      cancel() {
        cancelled = true;
        req.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  };
}

const sessions: http2.ClientHttp2Session[] = [];

/** The same through grpc-js (what `wormhole node` uses). */
function grpcJsWatcher(address: string, token: string): Connect {
  const c = client(address);
  grpcClients.push(c);
  const md = metadata(token);
  const method = v1Proto.Registry.service.Watch;
  return (sink, keys) => {
    const call = c.makeServerStreamRequest(method.path, method.requestSerialize, identity, { publicKey: "", peerPublicKeys: [...keys] }, md, {});
    let first = true;
    let cancelled = false;
    call.on("data", (buf: Buffer) => {
      if (first) {
        first = false;
        sink.snapshot(buf.subarray(0, 1), buf.length);
      } else sink.event(buf);
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (!cancelled) sink.error(`${grpc.status[err.code] ?? err.code}: ${err.details}`);
    });
    return {
      cancel() {
        cancelled = true;
        call.cancel();
      },
    };
  };
}

const grpcClients: grpc.Client[] = [];

async function watch(cfg: WatchConfig): Promise<WatchResult> {
  const method = v1Proto.Registry.service.Watch;
  const make = cfg.client === "grpc-js" ? grpcJsWatcher : http2Watcher;
  const connections = Array.from({ length: Math.max(1, cfg.connections) }, () => make(cfg.address, cfg.token));
  const errors: Record<string, number> = {};
  let ended = 0;
  let snapshots = 0;
  let snapshotBytes = 0;
  // Which round's event we are waiting for; per stream the arrival time of it.
  let round: { key: string; port: number; times: Float64Array; received: number } | null = null;
  const calls: WatchStream[] = [];

  const interest = cfg.interest;
  const keysOf = (i: number): string[] =>
    interest ? Array.from({ length: interest.perStream }, (_, j) => interest.keys[(i + j) % interest.keys.length] ?? "") : [];
  /** How many streams watch `key`. */
  const watchers = (key: string): number => {
    if (!interest) return cfg.streams;
    let n = 0;
    for (let i = 0; i < cfg.streams; i++) if (keysOf(i).includes(key)) n++;
    return n;
  };
  const open = (i: number) => {
    const connect = connections[i % connections.length];
    if (!connect) throw new Error("no connection");
    let failed = false;
    calls.push(
      connect({
        snapshot(first, size) {
          if (first?.[0] === 0x0a || size === 0) {
            snapshots++;
            snapshotBytes += size;
          } else errors["first message not a snapshot"] = (errors["first message not a snapshot"] ?? 0) + 1;
        },
        event(buf) {
          const r = round;
          if (!r) return;
          const now = performance.now();
          const ev = method.responseDeserialize(buf);
          if (ev.event === "changed" && ev.changed?.publicKey === r.key && ev.changed.endpoint?.port === r.port && Number.isNaN(r.times[i])) {
            r.times[i] = now;
            r.received++;
          }
        },
        error(what) {
          if (failed) return;
          failed = true;
          ended++;
          errors[what] = (errors[what] ?? 0) + 1;
        },
      }, keysOf(i)),
    );
  };

  phase("snapshots-start");
  const cpu0 = cpuSec();
  const t0 = performance.now();
  let lastProgress = performance.now();
  for (let start = 0; start < cfg.streams; start += cfg.batch) {
    if (performance.now() - lastProgress > 10_000) {
      lastProgress = performance.now();
      const rss = process.memoryUsage().rss / 2 ** 20;
      process.stderr.write(`  ... ${snapshots} snapshots after ${((lastProgress - t0) / 1000).toFixed(0)} s (load generator rss ${rss.toFixed(0)} MB)\n`);
    }
    const end = Math.min(cfg.streams, start + cfg.batch);
    for (let i = start; i < end; i++) open(i);
    const deadline = Date.now() + 120_000;
    while (snapshots + ended < end) {
      if (Date.now() > deadline) throw new Error(`snapshots: only ${snapshots} of ${end} after 120 s`);
      await sleep(5);
    }
  }
  const snapshotSeconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSec();
  phase("snapshots-done");
  await sleep(cfg.settleMs);
  phase("rounds-start");

  const wg = createWireGuard();
  const rounds: RoundResult[] = [];
  const cpu2 = cpuSec();
  for (let r = 0; r < cfg.rounds; r++) {
    // A random pause first: the registry polls on its own timer, so changes land at random phases of it.
    await sleep(cfg.gapMs * (0.5 + Math.random()));
    const key = cfg.targets[r % cfg.targets.length] ?? "";
    const port = cfg.portBase + r;
    const times = new Float64Array(cfg.streams).fill(NaN);
    const state = { key, port, times, received: 0 };
    const expected = watchers(key);
    round = state;
    phase(`round-${r}-start`);
    const start = performance.now();
    await wg.updatePeers(cfg.iface, [{ publicKey: key, endpoint: { ip: "192.0.2.77", port } }]);
    const setMs = performance.now() - start;
    const deadline = Date.now() + cfg.roundTimeoutMs;
    while (state.received < expected && Date.now() < deadline) await sleep(2);
    phase(`round-${r}-done`);
    round = null;
    const latenciesMs: number[] = [];
    for (const t of times) if (!Number.isNaN(t)) latenciesMs.push(t - start);
    rounds.push({ round: r, peer: key, setMs, received: state.received, expected, latenciesMs });
  }
  const cpu3 = cpuSec();
  phase("rounds-done");
  const loadgenRssMb = process.memoryUsage().rss / 2 ** 20;
  for (const c of calls) c.cancel();
  for (const c of grpcClients) c.close();
  for (const s of sessions) s.close();
  return {
    type: "result",
    mode: "watch",
    opened: calls.length,
    snapshots,
    snapshotBytes,
    snapshotSeconds,
    errors,
    rounds,
    loadgenCpuSec: { snapshots: cpu1 - cpu0, rounds: cpu3 - cpu2 },
    loadgenRssMb,
  };
}

async function getEndpoint(cfg: GetEndpointConfig): Promise<GetEndpointResult> {
  const method = seedProto.Registry.service.GetEndpoint;
  const levels: LevelResult[] = [];
  for (const concurrency of cfg.levels) {
    const clients = Array.from({ length: concurrency }, () => client(cfg.address));
    let measuring = false;
    let stop = false;
    let ok = 0;
    let failed = 0;
    let replyBytes = 0;
    let firstError: string | null = null;
    const latenciesMs: number[] = [];
    const worker = async (c: grpc.Client) => {
      while (!stop) {
        const t = performance.now();
        const res = await new Promise<Buffer | Error>((resolve) => {
          c.makeUnaryRequest(method.path, method.requestSerialize, identity, { token: cfg.token }, { deadline: Date.now() + 30_000 }, (err, value) =>
            resolve(err ?? value ?? new Error("empty reply")),
          );
        });
        if (!measuring) continue;
        if (res instanceof Error) {
          failed++;
          firstError ??= res.message;
          await new Promise((r) => setTimeout(r, 10));
        } else {
          ok++;
          replyBytes = res.length;
          latenciesMs.push(performance.now() - t);
        }
      }
    };
    const running = clients.map(worker);
    await sleep(cfg.warmupMs);
    phase(`level-${concurrency}-start`);
    measuring = true;
    const cpu0 = cpuSec();
    const t0 = performance.now();
    await sleep(cfg.secondsPerLevel * 1000);
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuSec();
    phase(`level-${concurrency}-done`);
    stop = true;
    await Promise.all(running);
    // One reply decoded, to check it is what it should be.
    const check = await new Promise<number>((resolve) => {
      const c = clients[0];
      if (!c) return resolve(-1);
      c.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, { token: cfg.token }, (err, value) =>
        resolve(err || !value ? -1 : value.Peers.length),
      );
    });
    for (const c of clients) c.close();
    levels.push({ concurrency, seconds, ok, failed, latenciesMs, replyBytes, peersInReply: check, loadgenCpuSec: cpu1 - cpu0, firstError });
  }
  return { type: "result", mode: "getendpoint", levels };
}

if (!process.send) {
  process.stderr.write("bench/loadgen.ts is started by the benches (bench/fanout.ts, bench/getendpoint.ts), not by hand\n");
  process.exit(2);
}

process.once("message", (cfg: LoadConfig) => {
  const run = cfg.mode === "watch" ? watch(cfg) : getEndpoint(cfg);
  run
    .then((result) => send(result))
    .catch((err: unknown) => send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) }))
    .finally(() => setTimeout(() => process.exit(0), 200));
});
