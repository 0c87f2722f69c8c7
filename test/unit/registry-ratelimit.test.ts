/**
 * Failed token attempts limited per source (src/registry/ratelimit.ts), with a
 * fake clock: the bucket itself, table-driven, and its use by every token
 * check of the gRPC handlers (called directly with fake calls).
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { FailureLimiter, sourceKey } from "../../src/registry/ratelimit.js";
import { createHandlers } from "../../src/registry/server.js";
import { PeerTable } from "../../src/registry/table.js";
import { FakeClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

type Step = readonly ["fail", string] | readonly ["advance", number] | readonly ["check", string, number | null];

interface Case {
  readonly name: string;
  readonly options?: { burst?: number; refillMs?: number; maxSources?: number };
  readonly steps: readonly Step[];
}

const A = "203.0.113.5";
const B = "198.51.100.7";

const fails = (source: string, n: number): Step[] => Array.from({ length: n }, () => ["fail", source] as const);

const cases: Case[] = [
  { name: "an unknown source may try", steps: [["check", A, null]] },
  { name: "a burst of failures is allowed", options: { burst: 3, refillMs: 1000 }, steps: [...fails(A, 2), ["check", A, null]] },
  { name: "the failure that empties the bucket refuses the next call", options: { burst: 3, refillMs: 1000 }, steps: [...fails(A, 3), ["check", A, 1000]] },
  {
    name: "the refusal says how long until one more try",
    options: { burst: 3, refillMs: 1000 },
    steps: [...fails(A, 3), ["advance", 400], ["check", A, 600], ["advance", 599], ["check", A, 1], ["advance", 1], ["check", A, null]],
  },
  {
    name: "after refilling one token, one more failure refuses again",
    options: { burst: 3, refillMs: 1000 },
    steps: [...fails(A, 3), ["advance", 1000], ["check", A, null], ["fail", A], ["check", A, 1000]],
  },
  {
    name: "a full refill gives the whole burst back",
    options: { burst: 3, refillMs: 1000 },
    steps: [...fails(A, 3), ["advance", 3000], ...fails(A, 2), ["check", A, null], ["fail", A], ["check", A, 1000]],
  },
  { name: "sources are counted apart", options: { burst: 2, refillMs: 1000 }, steps: [...fails(A, 2), ["check", A, 1000], ["check", B, null]] },
  {
    name: "slow failures below the refill rate are never refused",
    options: { burst: 2, refillMs: 1000 },
    steps: Array.from({ length: 20 }, () => [["fail", A] as const, ["advance", 1000] as const, ["check", A, null] as const]).flat(),
  },
  {
    name: "at the cap, the source that failed longest ago is forgotten",
    options: { burst: 1, refillMs: 60_000, maxSources: 2 },
    steps: [["fail", A], ["advance", 1], ["fail", B], ["advance", 1], ["fail", "192.0.2.1"], ["check", A, null], ["check", B, 59_999], ["check", "192.0.2.1", 60_000]],
  },
  {
    name: "failing again makes a source the most recent, so another is forgotten first",
    options: { burst: 2, refillMs: 60_000, maxSources: 2 },
    steps: [["fail", A], ["fail", B], ["fail", A], ["fail", "192.0.2.1"], ["check", A, 60_000], ["check", B, null]],
  },
];

describe("FailureLimiter", () => {
  for (const c of cases) {
    it(c.name, () => {
      const clock = new FakeClock();
      const limiter = new FailureLimiter({ ...c.options, clock });
      for (const [i, step] of c.steps.entries()) {
        if (step[0] === "fail") limiter.fail(step[1]);
        else if (step[0] === "advance") clock.advance(step[1]);
        else assert.equal(limiter.check(step[1])?.retryInMs ?? null, step[2], `step ${i + 1}: check ${step[1]}`);
      }
    });
  }

  it("logs a source's refusals once per window (burst × refill)", () => {
    const clock = new FakeClock();
    const limiter = new FailureLimiter({ burst: 2, refillMs: 1000, clock });
    limiter.fail(A);
    limiter.fail(A);
    assert.equal(limiter.check(A)?.log, true);
    assert.equal(limiter.check(A)?.log, false);
    clock.advance(999);
    assert.equal(limiter.check(A)?.log, false);
    clock.advance(1);
    limiter.fail(A); // one token back, and failed at once
    clock.advance(999);
    assert.equal(limiter.check(A)?.log, false, "still inside the window of the first log");
    clock.advance(1001);
    limiter.fail(A);
    limiter.fail(A);
    assert.equal(limiter.check(A)?.log, true, "a new window");
  });

  it("forgets sources whose bucket has refilled", () => {
    const clock = new FakeClock();
    const limiter = new FailureLimiter({ burst: 2, refillMs: 1000, clock });
    limiter.fail(A);
    clock.advance(500);
    limiter.fail(B);
    assert.equal(limiter.size, 2);
    clock.advance(500); // A full again; B not yet
    limiter.check("anyone");
    assert.equal(limiter.size, 1);
    clock.advance(500);
    limiter.check("anyone");
    assert.equal(limiter.size, 0);
  });

  it("never tracks more than maxSources, whatever the sequence (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(50), fc.nat(3_000), fc.boolean()), { maxLength: 300 }),
        fc.integer({ min: 1, max: 10 }),
        (ops, maxSources) => {
          const clock = new FakeClock();
          const limiter = new FailureLimiter({ burst: 3, refillMs: 1000, maxSources, clock });
          for (const [source, advance, fail] of ops) {
            clock.advance(advance);
            const s = `10.0.0.${source}`;
            const refusal = limiter.check(s);
            if (refusal) assert.ok(refusal.retryInMs >= 1 && refusal.retryInMs <= 1000);
            else if (fail) limiter.fail(s);
            assert.ok(limiter.size <= maxSources);
          }
        },
      ),
    );
  });

  it("lets no source fail more than burst + elapsed / refill times (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(2_000), { minLength: 1, maxLength: 200 }), (gaps) => {
        const clock = new FakeClock();
        const limiter = new FailureLimiter({ burst: 5, refillMs: 1000, clock });
        let failures = 0;
        let elapsed = 0;
        for (const gap of gaps) {
          clock.advance(gap);
          elapsed += gap;
          if (limiter.check(A) === null) {
            limiter.fail(A);
            failures++;
          }
        }
        assert.ok(failures <= 5 + elapsed / 1000, `${failures} failures in ${elapsed} ms`);
      }),
    );
  });

  it("refuses nonsense options", () => {
    assert.throws(() => new FailureLimiter({ burst: 0 }), RangeError);
    assert.throws(() => new FailureLimiter({ refillMs: 0 }), RangeError);
    assert.throws(() => new FailureLimiter({ maxSources: 0 }), RangeError);
  });
});

describe("sourceKey", () => {
  const cases: Array<[string, string]> = [
    ["ipv4:203.0.113.5:4242", "203.0.113.5"],
    ["ipv6:[::ffff:203.0.113.5]:4242", "203.0.113.5"],
    ["ipv6:[2001:db8:1:2:3:4:5:6]:4242", "2001:db8:1:2::/64"],
    ["ipv6:[2001:db8:1:2:ffff::1]:1", "2001:db8:1:2::/64"],
    ["ipv6:[::1]:1", "0:0:0:0::/64"],
    ["unix:/run/x.sock", "unix:/run/x.sock"],
  ];
  for (const [peer, want] of cases) it(`${peer} -> ${want}`, () => assert.equal(sourceKey(peer), want));
});

// ---------------------------------------------------------------- in the handlers

const TOKEN = "right-token";
const TUNNEL_PEER = key(1);

async function handlers(limiter: FailureLimiter) {
  const wg = new FakeWireGuard([
    { name: "wg0", publicKey: key(9), peers: [{ publicKey: TUNNEL_PEER, endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["fd00::2/128"] }] },
  ]);
  const log = captureLogger();
  const table = new PeerTable({ wg, iface: "wg0", logger: log.logger });
  await table.refresh();
  return { ...createHandlers({ table, token: TOKEN, logger: log.logger, failureLimiter: limiter }), log };
}

function metadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

type Unary = (call: never, callback: (err: Partial<grpc.StatusObject> | null, value?: unknown) => void) => void;

/** Calls a unary handler with a fake call from `peer`; resolves to the status code (0 for OK) and details. */
function callUnary(handler: Unary, peer: string, token: string): Promise<{ code: number; details: string }> {
  const call = { getPeer: () => peer, request: { token, publicKey: "", candidates: [], paths: [] }, metadata: metadata(token) };
  return new Promise((resolve) => handler(call as never, (err) => resolve(err ? { code: err.code ?? -1, details: err.details ?? "" } : { code: 0, details: "" })));
}

/** Calls Watch with a fake stream from `peer`; resolves to the status it is ended with. */
function callWatch(watch: (call: never) => void, peer: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const call = Object.assign(new EventEmitter(), { getPeer: () => peer, metadata: metadata(token), request: { publicKey: "" }, write: () => true });
    call.on("error", (e: { code: number }) => resolve(e.code));
    watch(call as never);
    setImmediate(() => resolve(0));
  });
}

describe("token checks in the gRPC handlers", () => {
  it("after a burst of wrong tokens from one address, every API refuses its wrong tokens with RESOURCE_EXHAUSTED, never its right one", async () => {
    const clock = new FakeClock();
    const h = await handlers(new FailureLimiter({ burst: 3, refillMs: 10_000, clock }));
    const attacker = "ipv4:203.0.113.5:5555";
    // Each API's failures count against the same budget.
    assert.equal((await callUnary(h.v1.GetPeers as Unary, attacker, "guess-1")).code, grpc.status.PERMISSION_DENIED);
    assert.equal((await callUnary(h.seed.GetEndpoint as Unary, attacker, "guess-2")).code, grpc.status.PERMISSION_DENIED);
    assert.equal(await callWatch(h.v1.Watch, attacker, "guess-3"), grpc.status.PERMISSION_DENIED);

    const refused = await callUnary(h.v1.GetPeers as Unary, attacker, "guess-4");
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(refused.details, "too many failed token attempts from this address; retry in 10s");
    // Over budget, wrong tokens are refused as rate-limited; the right one is served.
    assert.equal((await callUnary(h.seed.GetEndpoint as Unary, attacker, "guess-5")).code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(await callWatch(h.v1.Watch, attacker, "guess-6"), grpc.status.RESOURCE_EXHAUSTED);
    assert.equal((await callUnary(h.seed.GetEndpoint as Unary, attacker, TOKEN)).code, 0);
    assert.equal((await callUnary(h.v1.GetPeers as Unary, attacker, TOKEN)).code, 0);
    // Another address is not affected.
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv4:198.51.100.7:1", TOKEN)).code, 0);

    clock.advance(10_000);
    assert.equal((await callUnary(h.v1.GetPeers as Unary, attacker, "guess-7")).code, grpc.status.PERMISSION_DENIED, "one token refilled: one more try");

    // Logged: each wrong token, and the refusals once; never a token.
    const records = h.log.records;
    assert.equal(records.filter((r) => r.msg === "refused a call with a wrong token").length, 4);
    assert.equal(records.filter((r) => String(r.msg).startsWith("too many failed token attempts")).length, 1);
    assert.ok(!/guess-|right-token/.test(h.log.text()), "no token in the log");
  });

  it("successful calls are not limited", async () => {
    const clock = new FakeClock();
    const h = await handlers(new FailureLimiter({ burst: 1, refillMs: 60_000, clock }));
    for (let i = 0; i < 50; i++) assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv4:203.0.113.5:1", TOKEN)).code, 0);
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv4:203.0.113.5:1", "wrong")).code, grpc.status.PERMISSION_DENIED);
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv4:203.0.113.5:1", "wrong")).code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv4:203.0.113.5:1", TOKEN)).code, 0, "the right token still works");
  });

  it("counts an IPv6 /64 as one source, but a tunnel peer's own address alone", async () => {
    const clock = new FakeClock();
    const h = await handlers(new FailureLimiter({ burst: 1, refillMs: 60_000, clock }));
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv6:[2001:db8:0:1::1]:1", "wrong")).code, grpc.status.PERMISSION_DENIED);
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv6:[2001:db8:0:1::2]:1", "wrong")).code, grpc.status.RESOURCE_EXHAUSTED, "same /64");
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv6:[2001:db8:0:2::1]:1", "wrong")).code, grpc.status.PERMISSION_DENIED, "another /64");

    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv6:[fd00::77]:1", "wrong")).code, grpc.status.PERMISSION_DENIED);
    assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv6:[fd00::2]:1", "wrong")).code, grpc.status.PERMISSION_DENIED, "the tunnel peer fd00::2/128 is not blamed for fd00::77");
  });

  it("a registry without a token limits nothing", async () => {
    const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9) }]);
    const log = captureLogger();
    const table = new PeerTable({ wg, iface: "wg0", logger: log.logger });
    await table.refresh();
    const limiter = new FailureLimiter({ burst: 1, refillMs: 60_000, clock: new FakeClock() });
    const h = createHandlers({ table, token: null, logger: log.logger, failureLimiter: limiter });
    for (let i = 0; i < 5; i++) assert.equal((await callUnary(h.v1.GetPeers as Unary, "ipv4:203.0.113.5:1", "anything")).code, 0);
    assert.equal(limiter.size, 0);
  });
});
