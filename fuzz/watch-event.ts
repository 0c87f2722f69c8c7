/**
 * Fuzz target: what a node makes of its registry's messages (src/node/source.ts,
 * src/node/validate.ts): a Watch event's or seed reply's bytes through the
 * node's guarded decoders (messageProblem, then a decode of the fields it
 * reads), then applyWatchEvent / viewFromSeedReply; and decoded-looking objects
 * of the right shape with hostile values, and of the wrong shape.
 * Inputs: honest encodings, damaged; arbitrary bytes; objects.
 * Checks: a decoder throws only an Error; nothing else throws; the node's state
 * then holds only WireGuard keys, endpoints registryEndpoint accepts (never
 * loopback, unspecified, multicast, broadcast, link-local, zoned), at most 16
 * candidates per peer, and at most MAX_VIEW_PEERS peers.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { applyWatchEvent, viewFromSeedReply, type WatchState, type WarnSink } from "../src/node/source.js";
import { guardedServices, MAX_PEER_CANDIDATES, MAX_VIEW_PEERS, registryEndpoint } from "../src/node/validate.js";
import { seedProto, v1Proto, type GetEndpointReply, type WatchEvent__Output } from "../src/rpc/proto.js";
import { isKey } from "../src/wg/keys.js";
import type { Endpoint } from "../src/wg/types.js";
import { anyIp, base64Key, damagedBytes, forbiddenIp, ipv4, ipv6, nearKey, } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

const watchWire = v1Proto.Registry.service.Watch;
const seedWire = seedProto.Registry.service.GetEndpoint;
const guardedWatch = guardedServices.v1.Watch as NonNullable<(typeof guardedServices.v1)["Watch"]>;
const guardedSeed = guardedServices.seed.GetEndpoint as NonNullable<(typeof guardedServices.seed)["GetEndpoint"]>;

const silent: WarnSink = { warn: () => {} };

const key = fc.oneof({ weight: 4, arbitrary: base64Key }, { weight: 1, arbitrary: nearKey });
const ip = fc.oneof(ipv4, ipv6, forbiddenIp, anyIp);
const wirePort = fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constant(4294967295));
const endpoint = fc.record({ ip, port: wirePort });
const peerInfo = fc.record({
  publicKey: key,
  endpoint: fc.option(endpoint, { nil: null }),
  lastHandshakeUnixMs: fc.nat(),
  allowedIps: fc.array(fc.string({ maxLength: 20 }), { maxLength: 2 }),
  rxBytes: fc.nat(),
  txBytes: fc.nat(),
  endpointRevision: fc.nat(),
  candidates: fc.array(endpoint, { maxLength: 18 }),
  paths: fc.array(fc.record({ peerPublicKey: key, kind: fc.constantFrom("PATH_KIND_DIRECT" as const, "PATH_KIND_LAN" as const, "PATH_KIND_RELAYED" as const, "PATH_KIND_DOWN" as const), sinceUnixMs: fc.nat(), endpoint: fc.option(endpoint, { nil: null }), rttMs: fc.nat() }), { maxLength: 2 }),
});
const watchEvent = fc.oneof(
  fc.record({ snapshot: fc.record({ relay: fc.boolean(), registryPublicKey: key, peers: fc.array(peerInfo, { maxLength: 6 }) }) }),
  fc.record({ changed: peerInfo }),
  fc.record({ removedPublicKey: key }),
  fc.constant({}),
);
const seedReply = fc.record({
  deviceName: fc.string({ maxLength: 10 }),
  deviceType: fc.string({ maxLength: 10 }),
  pubKey: key,
  Peers: fc.array(
    fc.record({ pubKey: key, lastHandshakeUnixTimestamp: fc.nat(), TransmitBytes: fc.nat(), ReceiveBytes: fc.nat(), AllowedIPs: fc.array(fc.string({ maxLength: 10 }), { maxLength: 2 }), endpointIP: ip, endpointPort: fc.integer({ min: -2, max: 70_000 }) }),
    { maxLength: 6 },
  ),
});
/** Not what protobufjs makes: wrong types everywhere. */
const junkObject = fc.anything({ maxDepth: 3, withNullPrototype: true, withMap: true });

type Input =
  | { kind: "watch-bytes"; bytes: Buffer; then: Buffer | null }
  | { kind: "seed-bytes"; bytes: Buffer }
  | { kind: "watch-object"; events: unknown[] }
  | { kind: "seed-object"; reply: unknown };

function checkEndpointOk(ep: Endpoint | null): void {
  if (ep === null) return;
  const again = registryEndpoint(ep.ip, ep.port);
  assert.ok("endpoint" in again && again.endpoint !== null, `kept an endpoint the node must not use: ${ep.ip}:${ep.port}`);
}

function checkState(state: WatchState): void {
  assert.ok(state.endpoints.size <= MAX_VIEW_PEERS);
  for (const [k, ep] of state.endpoints) {
    assert.ok(isKey(k), `kept a key that is not one: ${k}`);
    checkEndpointOk(ep);
  }
  for (const [k, list] of state.candidates) {
    assert.ok(isKey(k) && state.endpoints.has(k));
    assert.ok(list.length > 0 && list.length <= MAX_PEER_CANDIDATES);
    for (const c of list) checkEndpointOk(c);
  }
}

function decode<T>(method: { responseDeserialize: (b: Buffer) => unknown }, bytes: Buffer): T | null {
  try {
    return method.responseDeserialize(bytes) as T;
  } catch (e) {
    assert.ok(e instanceof Error, `the decoder threw ${String(e)}`);
    return null;
  }
}

export const target: FuzzTarget<Input> = {
  name: "watch-event",
  about: "the node's guarded decoding and handling of Watch events and seed replies",
  arbitrary: fc.oneof(
    fc.tuple(damagedBytes(watchEvent.map((e) => watchWire.responseSerialize(e as never))), fc.option(watchEvent.map((e) => watchWire.responseSerialize(e as never)), { nil: null })).map(([bytes, then]): Input => ({ kind: "watch-bytes", bytes, then })),
    damagedBytes(seedReply.map((r) => seedWire.responseSerialize(r))).map((bytes): Input => ({ kind: "seed-bytes", bytes })),
    fc.uint8Array({ maxLength: 300 }).map((b): Input => ({ kind: "watch-bytes", bytes: Buffer.from(b), then: null })),
    fc.array(fc.oneof(watchEvent, junkObject), { maxLength: 4 }).map((events): Input => ({ kind: "watch-object", events })),
    fc.oneof(seedReply, junkObject).map((reply): Input => ({ kind: "seed-object", reply })),
  ),
  check(input) {
    const state: WatchState = { endpoints: new Map(), candidates: new Map(), allowedIps: new Map() };
    switch (input.kind) {
      case "watch-bytes": {
        for (const bytes of input.then ? [input.bytes, input.then] : [input.bytes]) {
          const event = decode<WatchEvent__Output>(guardedWatch, bytes);
          if (event !== null) applyWatchEvent(state, event, silent);
          checkState(state);
        }
        return;
      }
      case "seed-bytes": {
        const reply = decode<GetEndpointReply>(guardedSeed, input.bytes);
        if (reply !== null) checkState({ endpoints: viewFromSeedReply(reply, silent), candidates: new Map(), allowedIps: new Map() });
        return;
      }
      case "watch-object":
        for (const event of input.events) {
          const read = applyWatchEvent(state, event as WatchEvent__Output, silent);
          assert.equal(typeof read, "boolean");
          checkState(state);
        }
        return;
      case "seed-object":
        checkState({ endpoints: viewFromSeedReply(input.reply as GetEndpointReply, silent), candidates: new Map(), allowedIps: new Map() });
    }
  },
};

await main(import.meta.url, target);
