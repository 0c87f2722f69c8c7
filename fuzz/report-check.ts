/**
 * Fuzz target: checkReport (src/registry/report.ts), what the registry accepts
 * from a node about itself, after the registry's own decoding of the request
 * bytes (wormhole.v1 Report's requestDeserialize).
 * Inputs: requests with candidates and paths of every kind (loopback, tunnel
 * and link-local addresses, bad ports, unknown path kinds, odd times), as
 * objects and as damaged or arbitrary bytes; callers identified or not; an
 * identity index built from random allowed IPs.
 * Checks: never throws; a refusal is PERMISSION_DENIED or INVALID_ARGUMENT with
 * bounded details; an accepted report is the caller's own, with at most 16
 * canonical candidates that are never loopback, link-local, multicast,
 * unspecified, broadcast or inside the tunnel, and at most 4096 paths to
 * WireGuard keys, of known kinds, with times not in the future.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import type { ReportRequest__Output } from "../src/gen/wormhole/v1/ReportRequest.js";
import { IdentityIndex } from "../src/registry/identity.js";
import { candidateProblem, checkReport, MAX_CANDIDATES, MAX_PATHS } from "../src/registry/report.js";
import { nextPeerMap } from "../src/registry/view.js";
import { v1Proto } from "../src/rpc/proto.js";
import { PATH_KINDS } from "../src/util/path.js";
import { checkEndpoint } from "../src/wg/endpoint.js";
import { isKey } from "../src/wg/keys.js";
import type { WgPeer } from "../src/wg/types.js";
import { anyIp, base64Key, cidr, damagedBytes, forbiddenIp, ipv4, ipv6, nearKey } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

const reportWire = v1Proto.Registry.service.Report;
const CALLER = Buffer.alloc(32, 1).toString("base64");

const key = fc.oneof(fc.constant(CALLER), base64Key, nearKey, fc.constant(""));
const ip = fc.oneof(ipv4, ipv6, forbiddenIp, anyIp, fc.constantFrom("10.200.0.2", "10.200.0.77", "fd00::2"));
const wirePort = fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constant(4294967295));
const endpoint = fc.record({ ip, port: wirePort });
const kind = fc.constantFrom("PATH_KIND_UNSPECIFIED", "PATH_KIND_DIRECT", "PATH_KIND_LAN", "PATH_KIND_RELAYED", "PATH_KIND_DOWN", "direct", "lan");
const path = fc.record({
  peerPublicKey: key,
  kind,
  sinceUnixMs: fc.oneof(fc.integer(), fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, 2 ** 60, NaN, 1.5)),
  endpoint: fc.option(endpoint, { nil: null }),
  rttMs: fc.nat(),
});
/** Mostly what an honest node sends, so that accepted reports are checked too. */
const goodEndpoint = fc.record({ ip: fc.oneof(ipv4, ipv6), port: fc.integer({ min: 1, max: 65535 }) });
const request = fc.record({
  publicKey: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(CALLER, "") }, { weight: 1, arbitrary: key }),
  candidates: fc.oneof(fc.array(goodEndpoint, { maxLength: 4 }), fc.array(endpoint, { maxLength: MAX_CANDIDATES + 2 })),
  paths: fc.oneof(fc.array(path.map((p) => ({ ...p, peerPublicKey: Buffer.alloc(32, 7).toString("base64"), kind: "PATH_KIND_DIRECT" })), { maxLength: 3 }), fc.array(path, { maxLength: 6 })),
});
const peers = fc.array(fc.tuple(base64Key, fc.array(fc.oneof(cidr, fc.constantFrom("10.200.0.0/24", "0.0.0.0/0", "fd00::/64", "10.200.0.2/32")), { maxLength: 3 })), { maxLength: 4 });

interface Input {
  readonly request: ReportRequest__Output | null;
  readonly bytes: Buffer | null;
  readonly caller: string | null;
  readonly peers: ReadonlyArray<readonly [string, readonly string[]]>;
  readonly nowMs: number;
}

function peer(publicKey: string, allowedIps: readonly string[]): WgPeer {
  return { publicKey, endpoint: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps, persistentKeepaliveSec: 0, hasPresharedKey: false };
}

export const target: FuzzTarget<Input> = {
  name: "report-check",
  about: "checkReport on decoded and generated Report requests",
  arbitrary: fc
    .tuple(
      fc.oneof(
        request.map((r) => ({ request: r as unknown as ReportRequest__Output, bytes: null })),
        damagedBytes(request.map((r) => reportWire.requestSerialize(r as never))).map((bytes) => ({ request: null, bytes })),
        fc.uint8Array({ maxLength: 200 }).map((b) => ({ request: null, bytes: Buffer.from(b) })),
      ),
      fc.oneof({ weight: 3, arbitrary: fc.constant(CALLER) }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: base64Key }),
      peers,
      fc.integer({ min: 1, max: 2 ** 45 }),
    )
    .map(([r, caller, ps, nowMs]): Input => ({ ...r, caller, peers: [[CALLER, ["10.200.0.2/32", "10.200.0.0/24"]], ...ps], nowMs })),
  check(input) {
    let request = input.request;
    if (input.bytes !== null) {
      try {
        request = reportWire.requestDeserialize(input.bytes);
      } catch (e) {
        assert.ok(e instanceof Error, `the decoder threw ${String(e)}`);
        return;
      }
    }
    assert.ok(request);
    const index = new IdentityIndex(nextPeerMap(new Map(), input.peers.map(([k, ips]) => peer(k, ips))));
    const v = checkReport(request, input.caller, index, input.nowMs);
    if (!v.ok) {
      assert.ok(v.code === grpc.status.PERMISSION_DENIED || v.code === grpc.status.INVALID_ARGUMENT, `code ${v.code}`);
      assert.ok(typeof v.details === "string" && v.details.length > 0);
      if (input.bytes !== null) assert.ok(v.details.length <= 400, `details of ${v.details.length} characters`);
      return;
    }
    assert.equal(v.publicKey, input.caller, "accepted a report that is not the caller's own");
    assert.ok(input.caller !== null);
    assert.equal(v.report.atMs, input.nowMs);
    assert.ok(v.report.candidates.length <= MAX_CANDIDATES);
    for (const c of v.report.candidates) {
      assert.deepEqual(checkEndpoint(c), c, "candidate not canonical");
      assert.equal(candidateProblem(c, index), null);
    }
    assert.ok(v.report.paths.length <= MAX_PATHS);
    for (const p of v.report.paths) {
      assert.ok(isKey(p.peerPublicKey));
      assert.ok((PATH_KINDS as readonly string[]).includes(p.kind));
      assert.ok(Number.isSafeInteger(p.sinceMs) && p.sinceMs > 0 && p.sinceMs <= input.nowMs, `since ${p.sinceMs}`);
      if (p.endpoint) assert.deepEqual(checkEndpoint(p.endpoint), p.endpoint);
    }
  },
};

await main(import.meta.url, target);
