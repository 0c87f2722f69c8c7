/**
 * The registry connection as an explicit state machine: watching (a
 * wormhole.v1 Watch stream is open), polling (the registry has no Watch: a
 * seed's GetEndpoint every refresh interval, and Watch tried again now and
 * then), backing off (a failure; the same step again after a growing delay)
 * and stopped; with, beside it, where the Watch goes (the address given, or
 * the registry's tunnel address and back when that does not answer) and
 * whether the registry was last reachable (each change logged once).
 *
 * Every time and timer comes from a {@link Clock} and the gRPC clients from a
 * {@link RegistryDialer}, so a test drives it with FakeClock and fake clients,
 * without real time (test/unit/source-machine.test.ts). src/node/source.ts
 * builds it with the system clock and grpc-js clients.
 */
import * as grpc from "@grpc/grpc-js";
import type { ReportRequest } from "../gen/wormhole/v1/ReportRequest.js";
import type { WatchRequest } from "../gen/wormhole/v1/WatchRequest.js";
import type { GetEndpointReply__Output } from "../gen/wgSvc/proto/GetEndpointReply.js";
import type { WatchEvent__Output } from "../rpc/proto.js";
import { addressHost } from "../config/values.js";
import { backoffDelay } from "../util/backoff.js";
import { systemClock, type Clock, type Timer } from "../util/clock.js";
import { pathKindToWire, type PathState } from "../util/path.js";
import { isKey } from "../wg/keys.js";
import type { Endpoint } from "../wg/types.js";
import { applyWatchEvent, viewFromSeedReply, type WarnSink, type WatchState } from "./source-events.js";

/** The registry's view as the node uses it. */
export interface RegistryView {
  /** Registry's endpoint for each peer it knows (null: known, no endpoint). */
  readonly endpoints: ReadonlyMap<string, Endpoint | null>;
  /** The registry's own WireGuard public key ("" when it did not say or said garbage). */
  readonly registryPublicKey: string;
  /** Local candidates (LAN addresses) each node reported for itself; empty from a seed registry. */
  readonly candidates: ReadonlyMap<string, readonly Endpoint[]>;
  /** Each peer's allowed IPs on the registry's WireGuard (canonical prefixes, at most 16 a peer); absent: not told. */
  readonly allowedIps?: ReadonlyMap<string, readonly string[]>;
  /** Increases with every new connection to the registry (its state may have been lost). */
  readonly generation: number;
  /** The registry forwards between its peers (relay). */
  readonly relay: boolean;
  /** How it arrived; for logs. */
  readonly via: "watch" | "poll";
}

export interface NodeReportMessage {
  readonly publicKey: string;
  readonly candidates: readonly Endpoint[];
  readonly paths: readonly PathState[];
}

export interface RegistrySource {
  /**
   * Starts watching. `interest`: the keys of the peers to hear about (this
   * node's own and its peers'), so the registry sends only those; empty or
   * absent: every peer.
   */
  start(onView: (view: RegistryView) => void, interest?: readonly string[]): void;
  /** The peers to hear about changed: watch again, for these. */
  setInterest?(keys: readonly string[]): void;
  /** Sends a report about this node; rejects with a {@link ReportError}. */
  report(message: NodeReportMessage): Promise<void>;
  /**
   * From now on, watch and report at the registry's tunnel address `host`
   * (same port, same credentials; TLS still verifies the name first dialled):
   * there the registry knows us by our tunnel address, and the connection
   * survives our NAT losing its mappings. When the tunnel does not answer,
   * the address given serves, and the tunnel is tried again later.
   */
  useTunnel?(host: string): void;
  /**
   * The registry is known to answer again (it answered a hello through the
   * tunnel): when not connected, dial afresh now instead of waiting out the
   * retry backoff.
   */
  reconnect?(): void;
  /** Whether the registry answers now: never answered yet, answering, or not answering (retrying). */
  health?(): RegistryHealth;
  stop(): void;
}

export type RegistryHealth = "connecting" | "connected" | "unreachable";

/**
 * Why a report did not land. `refused`: the registry will not take this
 * node's reports on this connection (it does not know the caller, or has no
 * Report); otherwise it may on a later try. The gRPC status stays here, at
 * the edge.
 */
export class ReportError extends Error {
  constructor(
    message: string,
    readonly refused: boolean,
  ) {
    super(message);
    this.name = "ReportError";
  }
}

/**
 * Most keys a Watch asks for; with more it asks for every peer (the
 * registry reads at most 64 KiB of a request: ~1,400 keys).
 */
export const MAX_INTEREST_KEYS = 1_000;

/** The keys to ask the registry for, as sent: sorted, unique, or none (every peer) when there are too many. */
export function interestList(keys: readonly string[]): string[] {
  const list = [...new Set(keys)].sort();
  return list.length > MAX_INTEREST_KEYS ? [] : list;
}

/** The port of a host:port address (the seed's form), or null. */
export function addressPort(address: string): number | null {
  const m = /:(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[1]) : NaN;
  return port >= 1 && port <= 65535 ? port : null;
}

/** After a Watch through the registry's tunnel address failed, this long at the address given before the tunnel is tried again. */
export const TUNNEL_RETRY_MS = 30_000;

/** Where the source logs (a pino Logger is one). */
export interface SourceLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface SourceOptions {
  /** host:port of the registry. */
  readonly address: string;
  readonly token: string;
  /** Poll interval in seed mode; also the cap of retry backoff. */
  readonly refreshMs: number;
  readonly logger: SourceLogger;
  /** Per-call deadline for unary calls. Default 10 s. */
  readonly callTimeoutMs?: number;
  /** First retry delay after a failure. Default 500 ms. */
  readonly minBackoffMs?: number;
  /**
   * A Watch that brings no snapshot this long after it started is given up
   * and retried. Default 2 minutes: a registry that thousands of nodes
   * rejoin at once sends snapshots in turn.
   */
  readonly snapshotTimeoutMs?: number;
  /**
   * In seed mode, how often to try Watch again instead of a poll: a seed
   * registry upgraded to wormhole is then pushed from within this time.
   * Default 5 minutes.
   */
  readonly watchRetryMs?: number;
}

/** What the source reads of a failed call (a grpc-js ServiceError is one). */
export interface CallError {
  readonly code?: number;
  readonly details?: string;
  readonly message?: string;
}

/** A Watch stream as the source uses it (a grpc-js ClientReadableStream is one). */
export interface WatchCall {
  on(event: "data", listener: (event: WatchEvent__Output) => void): unknown;
  on(event: "error", listener: (err: CallError) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  cancel(): void;
}

/** The wormhole.v1 calls the source makes (the generated V1Client is one). */
export interface WatchClient {
  Watch(request: WatchRequest, metadata: grpc.Metadata): WatchCall;
  Report(request: ReportRequest, metadata: grpc.Metadata, options: { deadline: number }, callback: (err: CallError | null) => void): unknown;
  close(): void;
}

/** The seed call the source makes (the generated SeedClient is one). */
export interface PollClient {
  GetEndpoint(request: { token: string }, options: { deadline: number }, callback: (err: CallError | null, reply?: GetEndpointReply__Output) => void): unknown;
  close(): void;
}

/** Makes the clients: for the address given, and for the registry's tunnel address. */
export interface RegistryDialer {
  /** Both services at the address given. */
  registry(): { v1: WatchClient; seed: PollClient };
  /** wormhole.v1 at `target` (the tunnel address and the same port); TLS verifies `dialledHost`, the name first dialled. */
  tunnel(target: string, dialledHost: string): WatchClient;
}

export interface SourceDeps {
  readonly dial: RegistryDialer;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Runs `fn` once the events at hand are handled; views are handed on once per burst. Default: setImmediate. */
  readonly defer?: (fn: () => void) => void;
  /** Backoff jitter in [0, 1). Default: Math.random. */
  readonly random?: () => number;
}

/** The states of a {@link RegistrySourceMachine}; see the file's comment. */
export type SourceStateName = "idle" | "watching" | "polling" | "backing off" | "stopped";

/**
 * Where the Watch goes: "address given" (no tunnel address known), "tunnel"
 * (the registry's tunnel address), "falling back" (the tunnel did not
 * answer: the address given until TUNNEL_RETRY_MS after that).
 */
export type TunnelStateName = "address given" | "tunnel" | "falling back";

/** One Watch stream and what it has told. */
interface WatchSession {
  readonly call: WatchCall;
  readonly viaTunnel: boolean;
  /** The keys it asked for, joined. */
  readonly interest: string;
  readonly view: StreamView;
  /** Given up (failed, replaced or stopped): its events are ignored from now on. */
  ended: boolean;
  /** A view is queued to be handed on (once per burst of events). */
  viewQueued: boolean;
}

type State =
  | { readonly name: "idle" }
  | { readonly name: "watching"; readonly session: WatchSession }
  /** A GetEndpoint is in flight or the next step is due; `next`: that step (a poll, or now and then a Watch). */
  | { readonly name: "polling"; readonly next: "poll" | "watch" }
  | { readonly name: "backing off"; readonly retry: "watch" | "poll" }
  | { readonly name: "stopped" };

/** What one Watch stream has told, folded into a view. */
class StreamView {
  private readonly state: WatchState = { endpoints: new Map(), candidates: new Map(), allowedIps: new Map() };
  snapshot = false;
  private registryPublicKey = "";
  private relay = false;
  private warnings = 0;
  /** A registry streaming garbage gets ten warnings per connection; the rest go to debug. */
  readonly log: WarnSink;

  constructor(logger: SourceLogger) {
    this.log = { warn: (fields, message) => (this.warnings++ < 10 ? logger.warn(fields, message) : logger.debug(fields, message)) };
  }

  /** Folds `event` in: "unreadable" (warned, ignored), "snapshot", or "change". */
  take(event: WatchEvent__Output): "unreadable" | "snapshot" | "change" {
    if (!applyWatchEvent(this.state, event, this.log)) {
      this.log.warn({ event: event?.event }, "registry sent a Watch event this node cannot read; ignoring it");
      return "unreadable";
    }
    if (event.event !== "snapshot") return "change";
    this.snapshot = true;
    const key = event.snapshot?.registryPublicKey ?? "";
    this.registryPublicKey = isKey(key) ? key : "";
    this.relay = event.snapshot?.relay === true;
    return "snapshot";
  }

  /** A copy of the view as it stands. */
  view(generation: number): RegistryView {
    return {
      endpoints: new Map(this.state.endpoints),
      candidates: new Map(this.state.candidates),
      allowedIps: new Map(this.state.allowedIps),
      registryPublicKey: this.registryPublicKey,
      generation,
      relay: this.relay,
      via: "watch",
    };
  }
}

function describe(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code === "number") {
    const name = grpc.status[e.code] ?? String(e.code);
    return `${name}: ${e.details || e.message || ""}`.trim();
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Where the node learns the registry's view; see the file's comment. Every
 * failure is logged and retried with backoff; nothing here throws to the caller.
 */
export class RegistrySourceMachine implements RegistrySource {
  private state: State = { name: "idle" };
  private readonly clock: Clock;
  private readonly defer: (fn: () => void) => void;
  private readonly random: (() => number) | undefined;
  private readonly callTimeoutMs: number;
  private readonly minBackoffMs: number;
  private readonly snapshotTimeoutMs: number;
  private readonly watchRetryMs: number;
  private clients: { v1: WatchClient; seed: PollClient } | null = null;
  /** Watch and reports go here once the registry's tunnel address is known (useTunnel). */
  private tunnel: { host: string; client: WatchClient } | null = null;
  /** When a Watch through the tunnel last failed: the address given serves until TUNNEL_RETRY_MS later. */
  private tunnelFailedAtMs = -Infinity;
  /** Moves a Watch at the address given back into the tunnel, TUNNEL_RETRY_MS after the tunnel failed. */
  private tunnelTimer: Timer | null = null;
  /** The next step: a retry, the next poll, or a Watch tried again in place of a poll. */
  private timer: Timer | null = null;
  /** Gives up a Watch that brings no snapshot. */
  private snapshotTimer: Timer | null = null;
  /** The peers the Watch asks for (empty: every peer). */
  private interest: string[] = [];
  private failures = 0;
  /** Whether the registry answered the last time it was asked; each change is logged once. */
  private healthState: RegistryHealth = "connecting";
  /** Connections so far (each snapshot, and the first poll): the views' generation. */
  private generationCount = 0;
  private polled = false;
  /** Polls made so far: only the answer to the last counts. */
  private polls = 0;
  /** When polling began or Watch was last tried and found missing; 0: not polling. */
  private pollingSince = 0;
  private onView: (view: RegistryView) => void = () => {};

  constructor(
    private readonly options: SourceOptions,
    private readonly deps: SourceDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.defer = deps.defer ?? ((fn) => setImmediate(fn));
    this.random = deps.random;
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.minBackoffMs = options.minBackoffMs ?? 500;
    this.snapshotTimeoutMs = options.snapshotTimeoutMs ?? 120_000;
    this.watchRetryMs = options.watchRetryMs ?? 5 * 60_000;
  }

  /** The state, for tests and status. */
  get stateName(): SourceStateName {
    return this.state.name;
  }

  /** Where the next (or current) Watch goes. */
  get tunnelState(): TunnelStateName {
    if (this.tunnel === null) return "address given";
    return this.clock.now() - this.tunnelFailedAtMs >= TUNNEL_RETRY_MS ? "tunnel" : "falling back";
  }

  health(): RegistryHealth {
    return this.healthState;
  }

  start(listener: (view: RegistryView) => void, keys?: readonly string[]): void {
    if (this.stopped) return;
    this.onView = listener;
    this.interest = interestList(keys ?? []);
    // Replies are checked before they are decoded, and decoded only as far as they are read.
    this.clients = this.deps.dial.registry();
    if (this.state.name === "polling" && this.state.next === "poll") this.poll();
    else this.watch();
  }

  setInterest(keys: readonly string[]): void {
    this.interest = interestList(keys);
    const s = this.state;
    if (s.name !== "watching" || this.interest.join(",") === s.session.interest) return;
    this.options.logger.debug({ registry: this.options.address, peers: this.interest.length }, "the peers to hear about changed; watching again");
    this.rewatch();
  }

  useTunnel(host: string): void {
    if (this.stopped || this.tunnel?.host === host) return;
    if (!this.dialTunnel(host)) return;
    // The Watch moves into the tunnel: a TCP connection through our NAT dies with its mapping (a router reboot), one through the tunnel does not.
    if (this.state.name === "watching") this.rewatch();
  }

  reconnect(): void {
    if (this.stopped || this.healthState !== "unreachable" || !this.clients) return;
    this.options.logger.info({ registry: this.options.address }, "the registry answers hellos through the tunnel: reconnecting now");
    const mode = this.mode();
    // A fresh channel: the old one may sit out its own reconnect backoff and fail calls at once until then.
    this.clients.v1.close();
    this.clients.seed.close();
    this.clients = this.deps.dial.registry();
    if (this.tunnel) this.dialTunnel(this.tunnel.host);
    if (this.timer) this.clock.cancel(this.timer);
    this.timer = null;
    this.failures = 0;
    // A Watch still waiting on the old channel is ended (its events are ignored from now on); so is a poll's answer.
    if (this.state.name === "watching") this.endSession(this.state.session);
    if (mode === "poll") this.poll();
    else this.watch();
  }

  report(message: NodeReportMessage): Promise<void> {
    const client = this.tunnel?.client ?? this.clients?.v1;
    return new Promise<void>((resolve, reject) => {
      if (!client || this.stopped) {
        reject(new ReportError("not connected", false));
        return;
      }
      const request: ReportRequest = {
        publicKey: message.publicKey,
        candidates: message.candidates.map((c) => ({ ip: c.ip, port: c.port })),
        paths: message.paths.map((p) => ({
          peerPublicKey: p.peerPublicKey,
          kind: pathKindToWire(p.kind),
          sinceUnixMs: p.sinceMs,
          endpoint: p.endpoint ? { ip: p.endpoint.ip, port: p.endpoint.port } : null,
        })),
      };
      client.Report(request, this.metadata(), { deadline: this.clock.now() + this.callTimeoutMs }, (err) => {
        if (!err) resolve();
        else reject(new ReportError(err.details || err.message || "", err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNIMPLEMENTED));
      });
    });
  }

  stop(): void {
    const s = this.state;
    this.state = { name: "stopped" };
    for (const t of [this.timer, this.snapshotTimer, this.tunnelTimer]) if (t) this.clock.cancel(t);
    this.timer = this.snapshotTimer = this.tunnelTimer = null;
    if (s.name === "watching") this.endSession(s.session);
    this.clients?.v1.close();
    this.clients?.seed.close();
    this.tunnel?.client.close();
  }

  /** A channel to the registry's tunnel address (replacing any); false when the address given has no port or is that address. */
  private dialTunnel(host: string): boolean {
    const { address } = this.options;
    const port = addressPort(address);
    const dialled = addressHost(address);
    if (port === null || dialled === null || dialled === host) return false;
    this.tunnel?.client.close();
    const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    this.tunnel = { host, client: this.deps.dial.tunnel(target, dialled) };
    this.tunnelFailedAtMs = -Infinity;
    return true;
  }

  /** What the source does while it is not stopped: watch, or poll a registry without Watch. */
  private mode(): "watch" | "poll" {
    const s = this.state;
    if (s.name === "polling") return s.next;
    if (s.name === "backing off") return s.retry;
    return "watch";
  }

  private get stopped(): boolean {
    return this.state.name === "stopped";
  }

  /** Moves to `next`, unless stopped (a listener may have stopped the source). */
  private to(next: State): void {
    if (!this.stopped) this.state = next;
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.options.token) md.set("authorization", `Bearer ${this.options.token}`);
    return md;
  }

  /** The next step, `ms` from now (replacing any other). */
  private later(ms: number, step: "watch" | "poll"): void {
    if (this.stopped) return;
    if (this.timer) this.clock.cancel(this.timer);
    this.timer = this.clock.after(ms, () => {
      this.timer = null;
      if (step === "watch") this.watch();
      else this.poll();
    });
  }

  private markHealthy(via: "watch" | "poll"): void {
    this.failures = 0;
    if (this.healthState !== "connected") this.options.logger.info({ registry: this.options.address, via }, "connected to the registry");
    this.healthState = "connected";
  }

  /** Backing off: `retry` again after a delay that grows with each failure in a row. */
  private markFailed(err: unknown, retry: "watch" | "poll"): void {
    const { minBackoffMs } = this;
    const delay = backoffDelay(this.failures, {
      minMs: minBackoffMs,
      maxMs: Math.max(minBackoffMs, Math.min(this.options.refreshMs, 30_000)),
      ...(this.random ? { random: this.random } : {}),
    });
    this.failures += 1;
    const fields = { registry: this.options.address, err: describe(err), retryInMs: delay };
    if (this.healthState !== "unreachable") this.options.logger.warn(fields, "registry unreachable or refusing; will keep retrying");
    else this.options.logger.debug(fields, "registry still unreachable");
    this.healthState = "unreachable";
    this.to({ name: "backing off", retry });
    this.later(delay, retry);
  }

  private poll(): void {
    const seed = this.clients?.seed;
    if (this.stopped || !seed) return;
    if (!this.polled) {
      this.polled = true;
      this.generationCount += 1;
    }
    this.to({ name: "polling", next: "poll" });
    const attempt = ++this.polls;
    seed.GetEndpoint({ token: this.options.token }, { deadline: this.clock.now() + this.callTimeoutMs }, (err, reply) => {
      // A poll made before a reconnect is ignored: the one made since answers.
      if (this.stopped || attempt !== this.polls) return;
      if (err || !reply) {
        this.markFailed(err ?? new Error("empty reply"), "poll");
        return;
      }
      this.markHealthy("poll");
      const allowedIps = new Map<string, readonly string[]>();
      this.onView({
        endpoints: viewFromSeedReply(reply, this.options.logger, allowedIps),
        allowedIps,
        registryPublicKey: isKey(reply.pubKey) ? reply.pubKey : "",
        candidates: new Map(),
        generation: this.generationCount,
        relay: false,
        via: "poll",
      });
      // Now and then, try Watch again in place of a poll (it falls back here if still missing).
      const next = this.clock.now() - this.pollingSince >= this.watchRetryMs ? "watch" : "poll";
      this.to({ name: "polling", next });
      this.later(this.options.refreshMs, next);
    });
  }

  /** Ends the current Watch (its events are ignored from now on) and subscribes again. */
  private rewatch(): void {
    if (this.state.name === "watching") this.endSession(this.state.session);
    this.watch();
  }

  private endSession(session: WatchSession): void {
    session.ended = true;
    session.call.cancel();
  }

  private watch(): void {
    const v1 = this.clients?.v1;
    if (this.stopped || !v1) return;
    const viaTunnel = this.tunnelState === "tunnel";
    const client = viaTunnel && this.tunnel ? this.tunnel.client : v1;
    const session: WatchSession = {
      call: client.Watch({ publicKey: "", peerPublicKeys: this.interest }, this.metadata()),
      viaTunnel,
      interest: this.interest.join(","),
      view: new StreamView(this.options.logger),
      ended: false,
      viewQueued: false,
    };
    this.to({ name: "watching", session });
    // A registry that accepts the Watch and then says nothing would hold the node forever.
    if (this.snapshotTimer) this.clock.cancel(this.snapshotTimer);
    this.snapshotTimer = this.clock.after(this.snapshotTimeoutMs, () => {
      this.snapshotTimer = null;
      if (this.stopped || session.ended || session.view.snapshot) return;
      this.endSession(session);
      this.watchFailed(session, new Error(`no snapshot within ${this.snapshotTimeoutMs} ms of subscribing`));
    });
    const { call } = session;
    call.on("data", (event: WatchEvent__Output) => this.watchEvent(session, event));
    call.on("error", (err: CallError) => {
      if (this.stopped || session.ended) return;
      session.ended = true;
      if (err.code === grpc.status.UNIMPLEMENTED) {
        this.clearSnapshotTimer();
        // Said once; the retries every watchRetryMs find the same and say it at debug.
        const fields = { registry: this.options.address, retryWatchInMs: this.watchRetryMs };
        if (this.pollingSince === 0) this.options.logger.info(fields, "registry has no wormhole.v1 Watch (a seed registry?); polling GetEndpoint instead");
        else this.options.logger.debug(fields, "registry still has no wormhole.v1 Watch; polling GetEndpoint");
        this.pollingSince = this.clock.now();
        this.poll();
        return;
      }
      this.watchFailed(session, err);
    });
    call.on("end", () => {
      if (this.stopped || session.ended) return;
      session.ended = true;
      this.watchFailed(session, new Error("registry closed the Watch stream"));
    });
  }

  private clearSnapshotTimer(): void {
    if (this.snapshotTimer) this.clock.cancel(this.snapshotTimer);
    this.snapshotTimer = null;
  }

  private watchEvent(session: WatchSession, event: WatchEvent__Output): void {
    if (this.stopped || session.ended) return;
    const took = session.view.take(event);
    if (took === "unreadable") return;
    if (took === "snapshot") {
      this.clearSnapshotTimer();
      this.generationCount += 1;
      if (this.pollingSince !== 0) {
        this.options.logger.info({ registry: this.options.address }, "the registry has wormhole.v1 Watch now; pushed from here on, no more polling");
        this.pollingSince = 0;
      }
    }
    if (!session.view.snapshot) return;
    this.markHealthy("watch");
    if (session.viewQueued) return;
    // Views are handed on once per burst of events, not once per event (each copies the whole state).
    session.viewQueued = true;
    this.defer(() => {
      session.viewQueued = false;
      if (!this.stopped) this.onView(session.view.view(this.generationCount));
    });
  }

  /** A Watch through the tunnel that fails falls back to the address given, and tries the tunnel again later. */
  private watchFailed(session: WatchSession, err: unknown): void {
    this.clearSnapshotTimer();
    if (session.viaTunnel) {
      this.tunnelFailedAtMs = this.clock.now();
      this.options.logger.warn(
        { registry: this.options.address, tunnel: this.tunnel?.host, err: describe(err), retryTunnelInMs: TUNNEL_RETRY_MS },
        "the registry's tunnel address does not answer; watching at the address given until it does",
      );
      if (this.tunnelTimer) this.clock.cancel(this.tunnelTimer);
      this.tunnelTimer = this.clock.after(TUNNEL_RETRY_MS, () => {
        this.tunnelTimer = null;
        if (this.state.name === "watching" && !this.state.session.viaTunnel) this.rewatch();
      });
    }
    this.markFailed(err, "watch");
  }
}
