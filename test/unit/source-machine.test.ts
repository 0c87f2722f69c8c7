/**
 * The registry source (src/node/source-machine.ts) on a fake clock that fires
 * its timers, with fake gRPC clients: a Watch is a stream the test pushes
 * events and errors into, GetEndpoint and Report answer when the test says.
 * No real time passes: every state (watching, polling, backing off, stopped,
 * and the tunnel's) is reached by advancing the clock.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { GetEndpointReply__Output } from "../../src/gen/wgSvc/proto/GetEndpointReply.js";
import type { ReportRequest } from "../../src/gen/wormhole/v1/ReportRequest.js";
import type { WatchRequest } from "../../src/gen/wormhole/v1/WatchRequest.js";
import type { WatchEvent__Output } from "../../src/rpc/proto.js";
import {
  type CallError,
  type PollClient,
  type RegistryView,
  RegistrySourceMachine,
  ReportError,
  type SourceOptions,
  TUNNEL_RETRY_MS,
  type WatchCall,
  type WatchClient,
} from "../../src/node/source-machine.js";
import { FakeClock } from "../../src/util/clock.js";
import { key } from "../support/keys.js";

const ADDRESS = "203.0.113.1:1638";
const TOKEN = "s3cret-token";
const REFRESH_MS = 10_000;
const MIN_BACKOFF_MS = 400;
const SNAPSHOT_TIMEOUT_MS = 5_000;
const WATCH_RETRY_MS = 60_000;
/** With no jitter (random 0) the n-th retry in a row waits half its ceiling: min · 2^n, capped at the refresh interval. */
const delay = (n: number) => Math.min(REFRESH_MS, MIN_BACKOFF_MS * 2 ** n) / 2;

class FakeCall implements WatchCall {
  cancelled = false;
  private readonly listeners = { data: [] as Array<(e: WatchEvent__Output) => void>, error: [] as Array<(e: CallError) => void>, end: [] as Array<() => void> };
  constructor(
    readonly request: WatchRequest,
    readonly metadata: grpc.Metadata,
  ) {}
  on(event: "data", listener: (event: WatchEvent__Output) => void): this;
  on(event: "error", listener: (err: CallError) => void): this;
  on(event: "end", listener: () => void): this;
  on(event: "data" | "error" | "end", listener: never): this {
    (this.listeners[event] as unknown[]).push(listener);
    return this;
  }
  cancel(): void {
    this.cancelled = true;
  }
  push(event: WatchEvent__Output): void {
    for (const l of this.listeners.data) l(event);
  }
  fail(code: grpc.status, details = "fake failure"): void {
    for (const l of this.listeners.error) l({ code, details, message: `${code} ${details}` });
  }
  end(): void {
    for (const l of this.listeners.end) l();
  }
}

class FakeV1 implements WatchClient {
  readonly watches: FakeCall[] = [];
  readonly reports: Array<{ request: ReportRequest; deadline: number; answer: (err: CallError | null) => void }> = [];
  closed = false;
  Watch(request: WatchRequest, metadata: grpc.Metadata): FakeCall {
    const call = new FakeCall(request, metadata);
    this.watches.push(call);
    return call;
  }
  Report(request: ReportRequest, _metadata: grpc.Metadata, options: { deadline: number }, callback: (err: CallError | null) => void): void {
    this.reports.push({ request, deadline: options.deadline, answer: callback });
  }
  close(): void {
    this.closed = true;
  }
  /** The last Watch. */
  get call(): FakeCall {
    const c = this.watches.at(-1);
    assert.ok(c, "a Watch was made");
    return c;
  }
}

class FakeSeed implements PollClient {
  readonly polls: Array<{ token: string; answer: (err: CallError | null, reply?: GetEndpointReply__Output) => void }> = [];
  closed = false;
  GetEndpoint(request: { token: string }, _options: { deadline: number }, callback: (err: CallError | null, reply?: GetEndpointReply__Output) => void): void {
    this.polls.push({ token: request.token, answer: callback });
  }
  close(): void {
    this.closed = true;
  }
  /** Answers the last poll with one peer at `port`. */
  answer(port: number): void {
    const poll = this.polls.at(-1);
    assert.ok(poll, "a poll was made");
    poll.answer(null, { pubKey: key(9), Peers: [{ pubKey: key(1), endpointIP: "198.51.100.1", endpointPort: port, AllowedIPs: ["10.0.0.1/32"] }] } as GetEndpointReply__Output);
  }
}

function snapshot(port: number, relay = false): WatchEvent__Output {
  return { event: "snapshot", snapshot: { registryPublicKey: key(9), relay, peers: [{ publicKey: key(1), endpoint: { ip: "198.51.100.1", port }, candidates: [], allowedIps: [] }] } } as unknown as WatchEvent__Output;
}

function changed(n: number, port: number): WatchEvent__Output {
  return { event: "changed", changed: { publicKey: key(n), endpoint: { ip: "198.51.100.2", port }, candidates: [], allowedIps: [] } } as unknown as WatchEvent__Output;
}

function setup(options: Partial<SourceOptions> = {}) {
  const clock = new FakeClock();
  const v1 = new FakeV1();
  const seed = new FakeSeed();
  const tunnels: Array<{ target: string; dialled: string; client: FakeV1 }> = [];
  const logs: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const log = (level: string) => (fields: object, message: string) => logs.push({ level, fields: fields as Record<string, unknown>, message });
  const deferred: Array<() => void> = [];
  const dialled: Array<{ v1: FakeV1; seed: FakeSeed }> = [];
  const source = new RegistrySourceMachine(
    {
      address: ADDRESS,
      token: TOKEN,
      refreshMs: REFRESH_MS,
      minBackoffMs: MIN_BACKOFF_MS,
      snapshotTimeoutMs: SNAPSHOT_TIMEOUT_MS,
      watchRetryMs: WATCH_RETRY_MS,
      logger: { info: log("info"), warn: log("warn"), debug: log("debug") },
      ...options,
    },
    {
      clock,
      random: () => 0,
      defer: (fn) => deferred.push(fn),
      dial: {
        registry: () => {
          // The first dial gives v1 and seed; a reconnect, new clients.
          const clients = dialled.length === 0 ? { v1, seed } : { v1: new FakeV1(), seed: new FakeSeed() };
          dialled.push(clients);
          return clients;
        },
        tunnel: (target, dialled) => {
          const client = new FakeV1();
          tunnels.push({ target, dialled, client });
          return client;
        },
      },
    },
  );
  const views: RegistryView[] = [];
  /** Runs what the source deferred: the end of the current burst of events. */
  const flush = () => {
    for (const fn of deferred.splice(0)) fn();
  };
  const said = (message: string, level?: string) => logs.filter((l) => l.message.includes(message) && (level === undefined || l.level === level)).length;
  return { clock, v1, seed, dialled, tunnels, logs, said, views, flush, source, start: (keys?: string[]) => source.start((v) => views.push(v), keys) };
}

describe("registry source: watching", () => {
  it("asks for the interest sorted and unique with the token, hands on one view per burst of events, and says it connected once", () => {
    const t = setup();
    t.start([key(3), key(2), key(3)]);
    assert.equal(t.source.stateName, "watching");
    assert.deepEqual(t.v1.call.request.peerPublicKeys, [key(2), key(3)]);
    assert.deepEqual(t.v1.call.metadata.get("authorization"), [`Bearer ${TOKEN}`]);
    t.v1.call.push(changed(2, 7)); // before the snapshot: folded in, not handed on
    t.flush();
    assert.equal(t.views.length, 0);
    t.v1.call.push(snapshot(1000, true));
    t.v1.call.push(changed(2, 2000));
    assert.equal(t.views.length, 0, "handed on at the end of the burst");
    t.flush();
    assert.equal(t.views.length, 1);
    const view = t.views[0]!;
    assert.deepEqual(
      [...view.endpoints],
      [
        [key(1), { ip: "198.51.100.1", port: 1000 }],
        [key(2), { ip: "198.51.100.2", port: 2000 }],
      ],
    );
    assert.equal(view.generation, 1);
    assert.equal(view.via, "watch");
    assert.equal(view.relay, true);
    assert.equal(view.registryPublicKey, key(9));
    t.v1.call.push(changed(2, 3000));
    t.flush();
    assert.equal(t.views.length, 2);
    assert.equal(t.views[1]?.endpoints.get(key(2))?.port, 3000);
    assert.equal(t.said("connected to the registry", "info"), 1);
    assert.equal(t.source.health(), "connected");
  });

  it("gives up a Watch that brings no snapshot within snapshotTimeoutMs, and subscribes again after the backoff", () => {
    const t = setup();
    t.start();
    t.clock.advance(SNAPSHOT_TIMEOUT_MS - 1);
    assert.equal(t.source.stateName, "watching");
    assert.equal(t.v1.call.cancelled, false);
    t.clock.advance(1);
    assert.equal(t.v1.watches[0]?.cancelled, true);
    assert.equal(t.source.stateName, "backing off");
    assert.equal(t.said(`no snapshot within ${SNAPSHOT_TIMEOUT_MS} ms`), 0, "the reason is a field, not the message");
    assert.match(String(t.logs.find((l) => l.level === "warn")?.fields.err), /no snapshot within 5000 ms/);
    t.clock.advance(delay(0) - 1);
    assert.equal(t.v1.watches.length, 1);
    t.clock.advance(1);
    assert.equal(t.v1.watches.length, 2);
    assert.equal(t.source.stateName, "watching");
    // A snapshot in time keeps the stream however long it stays quiet.
    t.v1.call.push(snapshot(1000));
    t.clock.advance(SNAPSHOT_TIMEOUT_MS * 10);
    assert.equal(t.v1.call.cancelled, false);
    assert.equal(t.v1.watches.length, 2);
    assert.equal(t.clock.timers, 0, "no timer left while a Watch is live");
  });

  it("backs off longer with each failure in a row, up to the refresh interval; says unreachable once, then connected once, then starts again from the first delay", () => {
    const t = setup();
    t.start();
    const waits: number[] = [];
    for (let n = 0; n < 7; n++) {
      const before = t.v1.watches.length;
      if (n % 2 === 0) t.v1.call.fail(grpc.status.UNAVAILABLE);
      else t.v1.call.end(); // the registry closing the stream is a failure too
      assert.equal(t.source.stateName, "backing off");
      let waited = 0;
      while (t.v1.watches.length === before) {
        t.clock.advance(50);
        waited += 50;
      }
      waits.push(waited);
    }
    assert.deepEqual(waits, [0, 1, 2, 3, 4, 5, 6].map(delay));
    assert.equal(Math.max(...waits), REFRESH_MS / 2, "capped");
    assert.equal(t.said("registry unreachable or refusing", "warn"), 1, "said once");
    assert.equal(t.said("registry still unreachable", "debug"), 6);
    assert.equal(t.source.health(), "unreachable");
    t.v1.call.push(snapshot(1000));
    assert.equal(t.said("connected to the registry", "info"), 1);
    assert.equal(t.source.health(), "connected");
    t.v1.call.push(changed(2, 5));
    assert.equal(t.said("connected to the registry", "info"), 1, "said once");
    t.v1.call.fail(grpc.status.UNAVAILABLE);
    assert.equal(t.said("registry unreachable or refusing", "warn"), 2, "said again after a recovery");
    t.clock.advance(delay(0) - 1);
    const watches = t.v1.watches.length;
    t.clock.advance(1);
    assert.equal(t.v1.watches.length, watches + 1, "the first delay again");
  });

  it("ignores the events of a Watch it gave up", () => {
    const t = setup();
    t.start([key(1)]);
    const first = t.v1.call;
    t.source.setInterest([key(1), key(2)]);
    assert.equal(first.cancelled, true);
    first.push(snapshot(1));
    first.fail(grpc.status.UNAVAILABLE);
    t.flush();
    assert.equal(t.views.length, 0);
    assert.equal(t.source.stateName, "watching");
    assert.equal(t.v1.watches.length, 2);
  });

  it("watches again when the peers to hear about change, not when they do not; while backing off, the next Watch asks for them", () => {
    const t = setup();
    t.start([key(1), key(2)]);
    t.v1.call.push(snapshot(1));
    t.source.setInterest([key(2), key(1), key(1)]);
    assert.equal(t.v1.watches.length, 1, "same keys");
    t.source.setInterest([key(1), key(3)]);
    assert.equal(t.v1.watches.length, 2);
    assert.equal(t.v1.watches[0]?.cancelled, true);
    assert.deepEqual(t.v1.call.request.peerPublicKeys, [key(1), key(3)]);
    t.v1.call.fail(grpc.status.UNAVAILABLE);
    t.source.setInterest([key(4)]);
    assert.equal(t.v1.watches.length, 2, "no Watch while backing off");
    t.clock.advance(delay(0));
    assert.deepEqual(t.v1.call.request.peerPublicKeys, [key(4)]);
  });
});

describe("registry source: polling a registry without Watch", () => {
  it("polls every refresh interval, tries Watch again every watchRetryMs (saying so once), and stops polling once Watch answers", () => {
    const t = setup();
    t.start();
    t.v1.call.fail(grpc.status.UNIMPLEMENTED);
    assert.equal(t.source.stateName, "polling");
    assert.equal(t.said("polling GetEndpoint instead", "info"), 1);
    assert.equal(t.seed.polls.length, 1);
    assert.equal(t.seed.polls[0]?.token, TOKEN, "the seed's token is in the request");
    t.seed.answer(1);
    assert.equal(t.views.length, 1, "a poll's view is handed on at once");
    assert.equal(t.views[0]?.via, "poll");
    assert.equal(t.views[0]?.generation, 1);
    assert.equal(t.views[0]?.endpoints.get(key(1))?.port, 1);
    assert.deepEqual(t.views[0]?.allowedIps?.get(key(1)), ["10.0.0.1/32"]);
    assert.equal(t.said("connected to the registry", "info"), 1);
    // A poll every REFRESH_MS; the one answered WATCH_RETRY_MS after Watch was found missing is the last.
    const pollsBeforeRetry = WATCH_RETRY_MS / REFRESH_MS + 1;
    for (let n = 2; n <= pollsBeforeRetry; n++) {
      t.clock.advance(REFRESH_MS - 1);
      assert.equal(t.seed.polls.length, n - 1);
      t.clock.advance(1);
      assert.equal(t.seed.polls.length, n);
      t.seed.answer(n);
    }
    assert.equal(t.v1.watches.length, 1);
    assert.equal(t.source.stateName, "polling");
    t.clock.advance(REFRESH_MS);
    assert.equal(t.v1.watches.length, 2, "Watch in place of a poll");
    assert.equal(t.seed.polls.length, pollsBeforeRetry);
    assert.equal(t.source.stateName, "watching");
    t.v1.call.fail(grpc.status.UNIMPLEMENTED);
    assert.equal(t.said("polling GetEndpoint instead", "info"), 1, "said once");
    assert.equal(t.said("still has no wormhole.v1 Watch", "debug"), 1);
    assert.equal(t.seed.polls.length, pollsBeforeRetry + 1, "polls at once");
    t.seed.answer(100);
    assert.ok(t.views.every((v) => v.generation === 1), "one connection while polling");
    // The seed is upgraded: the next Watch retry, as far from this one, gets a snapshot.
    const retryAt = t.clock.now() + WATCH_RETRY_MS + REFRESH_MS;
    while (t.v1.watches.length === 2) {
      const before = t.seed.polls.length;
      t.clock.advance(REFRESH_MS);
      if (t.seed.polls.length > before) t.seed.answer(1);
      assert.ok(t.clock.now() <= retryAt, "Watch tried again");
    }
    assert.equal(t.clock.now(), retryAt);
    assert.equal(t.v1.watches.length, 3);
    const polls = t.seed.polls.length;
    t.v1.call.push(snapshot(7));
    t.flush();
    assert.equal(t.said("the registry has wormhole.v1 Watch now", "info"), 1);
    assert.equal(t.views.at(-1)?.via, "watch");
    assert.equal(t.views.at(-1)?.generation, 2);
    t.clock.advance(WATCH_RETRY_MS * 3);
    assert.equal(t.seed.polls.length, polls, "no more polls");
    assert.equal(t.source.stateName, "watching");
  });

  it("backs off after a failed poll and polls again", () => {
    const t = setup();
    t.start();
    t.v1.call.fail(grpc.status.UNIMPLEMENTED);
    t.seed.polls[0]?.answer({ code: grpc.status.UNAVAILABLE, details: "down", message: "down" });
    assert.equal(t.source.stateName, "backing off");
    assert.equal(t.said("registry unreachable or refusing", "warn"), 1);
    t.clock.advance(delay(0) - 1);
    assert.equal(t.seed.polls.length, 1);
    t.clock.advance(1);
    assert.equal(t.seed.polls.length, 2);
    assert.equal(t.v1.watches.length, 1, "polls, does not watch");
    t.seed.polls[1]?.answer(null); // an empty reply is a failure
    t.clock.advance(delay(1));
    assert.equal(t.seed.polls.length, 3);
    t.seed.answer(5);
    assert.equal(t.source.stateName, "polling");
    assert.equal(t.views.length, 1);
    assert.equal(t.said("connected to the registry", "info"), 1);
  });
});

describe("registry source: the tunnel", () => {
  it("moves the Watch and reports into the tunnel; a tunnel that fails falls back to the address given and is tried again TUNNEL_RETRY_MS later", async () => {
    const t = setup();
    t.start();
    t.v1.call.push(snapshot(1));
    assert.equal(t.source.tunnelState, "address given");
    t.source.useTunnel("10.200.0.1");
    assert.equal(t.tunnels.length, 1);
    assert.equal(t.tunnels[0]?.target, "10.200.0.1:1638");
    assert.equal(t.tunnels[0]?.dialled, "203.0.113.1", "TLS verifies the name first dialled");
    const tunnel = t.tunnels[0]!.client;
    assert.equal(t.v1.call.cancelled, true, "the Watch at the address given ends");
    assert.equal(tunnel.watches.length, 1);
    assert.equal(t.source.tunnelState, "tunnel");
    t.source.useTunnel("10.200.0.1");
    assert.equal(t.tunnels.length, 1, "the same host again changes nothing");

    const report = t.source.report({ publicKey: key(5), candidates: [], paths: [] });
    assert.equal(tunnel.reports.length, 1, "reports go through the tunnel");
    assert.equal(tunnel.reports[0]?.deadline, t.clock.now() + 10_000);
    tunnel.reports[0]?.answer(null);
    await report;

    tunnel.call.fail(grpc.status.UNAVAILABLE);
    assert.equal(t.said("the registry's tunnel address does not answer", "warn"), 1);
    assert.equal(t.source.tunnelState, "falling back");
    assert.equal(t.source.stateName, "backing off");
    t.clock.advance(delay(0));
    assert.equal(t.v1.watches.length, 2, "back at the address given");
    assert.equal(tunnel.watches.length, 1);
    t.v1.call.push(snapshot(2));
    t.clock.advance(TUNNEL_RETRY_MS - delay(0) - 1);
    assert.equal(tunnel.watches.length, 1);
    assert.equal(t.source.tunnelState, "falling back");
    t.clock.advance(1);
    assert.equal(t.source.tunnelState, "tunnel");
    assert.equal(tunnel.watches.length, 2, "the tunnel again");
    assert.equal(t.v1.call.cancelled, true);
    tunnel.call.push(snapshot(3));
    t.flush();
    assert.equal(t.views.at(-1)?.endpoints.get(key(1))?.port, 3);
  });

  it("after a failed tunnel, a Watch that keeps failing retries at the address given until TUNNEL_RETRY_MS has passed, then in the tunnel", () => {
    const t = setup();
    t.start();
    t.source.useTunnel("fd00::1");
    assert.equal(t.tunnels[0]?.target, "[fd00::1]:1638");
    const tunnel = t.tunnels[0]!.client;
    assert.equal(tunnel.watches.length, 1);
    const t0 = t.clock.now();
    tunnel.call.fail(grpc.status.DEADLINE_EXCEEDED);
    const atAddress: number[] = [];
    while (tunnel.watches.length === 1) {
      const before = t.v1.watches.length;
      t.clock.advance(100); // every backoff delay here is a multiple of 100 ms
      if (t.v1.watches.length > before) {
        atAddress.push(t.clock.now() - t0);
        t.v1.call.fail(grpc.status.UNAVAILABLE);
      }
      assert.ok(t.clock.now() - t0 < 2 * TUNNEL_RETRY_MS, "the tunnel is tried again");
    }
    assert.ok(atAddress.length >= 3, `retries at the address given in between: ${atAddress.join(", ")}`);
    assert.ok(
      atAddress.every((ms) => ms < TUNNEL_RETRY_MS),
      `all before TUNNEL_RETRY_MS: ${atAddress.join(", ")}`,
    );
    assert.ok(t.clock.now() - t0 >= TUNNEL_RETRY_MS);
    assert.equal(t.source.stateName, "watching");
    assert.equal(t.said("the registry's tunnel address does not answer", "warn"), 1);
  });

  it("does not use a tunnel address that is the address given, or when the address has no port", () => {
    const same = setup();
    same.start();
    same.source.useTunnel("203.0.113.1");
    assert.equal(same.tunnels.length, 0);
    const noPort = setup({ address: "registry.example" });
    noPort.start();
    noPort.source.useTunnel("10.200.0.1");
    assert.equal(noPort.tunnels.length, 0);
  });
});

describe("registry source: reconnecting at once", () => {
  it("says it is connecting until the registry first answers", () => {
    const t = setup();
    t.start();
    assert.equal(t.source.health(), "connecting");
    t.source.reconnect();
    assert.equal(t.dialled.length, 1, "nothing to reconnect before a failure");
    t.v1.call.push(snapshot(1));
    t.source.reconnect();
    assert.equal(t.dialled.length, 1, "nor while connected");
    assert.equal(t.v1.call.cancelled, false);
  });

  it("while backing off from a failed Watch: new clients and a Watch at once; the backoff is forgotten", () => {
    const t = setup();
    t.start();
    t.source.useTunnel("10.200.0.1");
    const firstTunnel = t.tunnels[0]!.client;
    firstTunnel.call.fail(grpc.status.UNAVAILABLE);
    t.clock.advance(delay(0)); // back at the address given, failing too
    t.v1.call.fail(grpc.status.UNAVAILABLE);
    assert.equal(t.source.stateName, "backing off");
    assert.equal(t.source.health(), "unreachable");
    const watches = t.v1.watches.length;
    t.source.reconnect();
    assert.equal(t.said("reconnecting now", "info"), 1);
    assert.equal(t.dialled.length, 2);
    assert.ok(t.v1.closed && t.seed.closed, "the old channel is closed");
    assert.equal(t.tunnels.length, 2, "the tunnel is dialled afresh too");
    assert.ok(firstTunnel.closed);
    assert.equal(t.source.tunnelState, "tunnel", "and tried at once");
    const fresh = t.tunnels[1]!.client;
    assert.equal(fresh.watches.length, 1);
    assert.equal(t.source.stateName, "watching");
    t.clock.advance(delay(3));
    assert.equal(t.v1.watches.length, watches, "the old retry does not come");
    assert.equal(fresh.watches.length, 1);
    fresh.call.fail(grpc.status.UNAVAILABLE);
    t.clock.advance(delay(0));
    assert.equal(t.dialled[1]!.v1.watches.length, 1, "failures counted from the first delay again, at the new address-given client");
  });

  it("while waiting for a snapshot after failures: the Watch on the old channel is ended", () => {
    const t = setup();
    t.start();
    t.v1.call.fail(grpc.status.UNAVAILABLE);
    t.clock.advance(delay(0));
    const waiting = t.v1.call;
    assert.equal(t.source.stateName, "watching");
    t.source.reconnect();
    assert.equal(waiting.cancelled, true);
    waiting.push(snapshot(1));
    const fresh = t.dialled[1]!.v1;
    assert.equal(fresh.watches.length, 1);
    fresh.call.push(snapshot(2));
    t.flush();
    assert.deepEqual(
      t.views.map((v) => v.endpoints.get(key(1))?.port),
      [2],
    );
  });

  it("while polling a registry without Watch: polls at once on the new channel, and ignores the old poll's answer", () => {
    const t = setup();
    t.start();
    t.v1.call.fail(grpc.status.UNIMPLEMENTED);
    t.seed.polls[0]?.answer({ code: grpc.status.UNAVAILABLE, details: "down" });
    t.clock.advance(delay(0));
    assert.equal(t.seed.polls.length, 2, "a poll in flight");
    t.source.reconnect();
    const fresh = t.dialled[1]!.seed;
    assert.equal(fresh.polls.length, 1);
    assert.equal(t.dialled[1]!.v1.watches.length, 0, "polls, does not watch");
    t.seed.answer(1); // the old channel's poll
    assert.equal(t.views.length, 0);
    fresh.answer(2);
    assert.equal(t.views.length, 1);
    assert.equal(t.views[0]?.endpoints.get(key(1))?.port, 2);
    assert.equal(t.source.health(), "connected");
    assert.equal(t.clock.timers, 1, "one next poll");
  });
});

describe("registry source: reports and stopping", () => {
  it("tells refusals (PERMISSION_DENIED, UNIMPLEMENTED) from failures worth another try, and refuses before start", async () => {
    const t = setup();
    await assert.rejects(t.source.report({ publicKey: key(5), candidates: [], paths: [] }), (e: ReportError) => e instanceof ReportError && !e.refused && e.message === "not connected");
    t.start();
    const cases: Array<[grpc.status, boolean]> = [
      [grpc.status.PERMISSION_DENIED, true],
      [grpc.status.UNIMPLEMENTED, true],
      [grpc.status.UNAVAILABLE, false],
      [grpc.status.RESOURCE_EXHAUSTED, false],
    ];
    for (const [code, refused] of cases) {
      const p = t.source.report({ publicKey: key(5), candidates: [{ ip: "192.168.1.5", port: 51820 }], paths: [] });
      const r = t.v1.reports.at(-1)!;
      assert.deepEqual(r.request.candidates, [{ ip: "192.168.1.5", port: 51820 }]);
      r.answer({ code, details: `said ${code}` });
      await assert.rejects(p, (e: ReportError) => e.refused === refused && e.message === `said ${code}`);
    }
  });

  it("stops: ends the Watch, closes every client, leaves no timer, and ignores what comes after", () => {
    const t = setup();
    t.start();
    t.source.useTunnel("10.200.0.1");
    t.v1.call.push(snapshot(1)); // the cancelled one: ignored
    const call = t.tunnels[0]!.client.call;
    call.push(snapshot(1));
    call.fail(grpc.status.UNAVAILABLE); // the tunnel's retry timer and a backoff
    assert.ok(t.clock.timers >= 2);
    t.source.stop();
    assert.equal(t.source.stateName, "stopped");
    assert.equal(t.clock.timers, 0);
    assert.ok(t.v1.closed && t.seed.closed && t.tunnels[0]!.client.closed);
    t.flush();
    assert.equal(t.views.length, 0, "a view queued before stop is not handed on");
    t.clock.advance(TUNNEL_RETRY_MS * 2);
    assert.equal(t.v1.watches.length + t.tunnels[0]!.client.watches.length, 2, "no Watch after stop");
  });

  it("stays stopped when its listener stops it while polling, and ignores a poll answered after stop", () => {
    const t = setup();
    t.source.start(() => t.source.stop());
    t.v1.call.fail(grpc.status.UNIMPLEMENTED);
    t.seed.answer(1);
    assert.equal(t.source.stateName, "stopped");
    assert.equal(t.clock.timers, 0);
    const u = setup();
    u.start();
    u.v1.call.fail(grpc.status.UNIMPLEMENTED);
    u.source.stop();
    u.seed.answer(1);
    assert.equal(u.views.length, 0);
    assert.equal(u.clock.timers, 0);
  });
});
