/**
 * Registry and node in one process, talking over a real gRPC connection on a
 * loopback port, each with a fake WireGuard.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { runNode } from "../../src/node/run.js";
import type { NodeAgent } from "../../src/node/agent.js";
import { runRegistry, type RunningRegistry } from "../../src/registry/run.js";
import { v1Proto, type GetPeersResponse__Output } from "../../src/rpc/proto.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import type { Endpoint } from "../../src/wg/types.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "s3cret-token";
const ALICE = key(1);
const BOB = key(2);
const REGISTRY = key(9);
const ALICE_NAT: Endpoint = { ip: "198.51.100.10", port: 40000 };
const BOB_NAT: Endpoint = { ip: "203.0.113.20", port: 50000 };

function registryWg(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: REGISTRY,
      listenPort: 51820,
      peers: [
        { publicKey: ALICE, endpoint: ALICE_NAT, allowedIps: ["10.200.0.2/32"] },
        { publicKey: BOB, endpoint: BOB_NAT, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
}

/** Alice's machine: a peer for the registry and one for Bob, without endpoint. */
function aliceWg(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: ALICE,
      peers: [
        { publicKey: REGISTRY, endpoint: { ip: "192.0.2.1", port: 51820 }, persistentKeepaliveSec: 25, allowedIps: ["10.200.0.1/32"] },
        { publicKey: BOB, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startRegistry(wg: FakeWireGuard, port = 0, token: string | null = TOKEN): Promise<RunningRegistry> {
  const reg = await runRegistry(
    { address: `127.0.0.1:${port}`, iface: "wg0", token, pollIntervalMs: 20 },
    { wg, logger: captureLogger().logger },
  );
  cleanups.push(() => reg.stop());
  return reg;
}

async function startNode(wg: FakeWireGuard, port: number, opts: { token?: string; refreshMs?: number } = {}) {
  const log = captureLogger();
  const agent: NodeAgent = await runNode(
    { addresses: [`127.0.0.1:${port}`], token: opts.token ?? TOKEN, iface: "wg0", refreshMs: opts.refreshMs ?? 3_600_000, keepaliveSec: 25, probeIntervalMs: 0 },
    // No prober: a test never sends datagrams to the fake peers' tunnel addresses.
    { wg, logger: log.logger, clock: systemClock, prober: null },
  );
  cleanups.push(() => agent.stop());
  return { agent, log };
}

describe("registry ↔ node over gRPC", () => {
  it("node writes the registry's endpoint into its peer, pushed without waiting for a refresh", async () => {
    const reg = await startRegistry(registryWg());
    const alice = aliceWg();
    await startNode(alice, reg.port); // refresh is one hour: only a push can deliver
    const bob = await waitFor("Bob's endpoint on Alice", () => alice.peer("wg0", BOB)?.endpoint);
    assert.deepEqual(bob, BOB_NAT);
    assert.equal(alice.peer("wg0", BOB)?.persistentKeepaliveSec, 25);
    // The registry peer itself is never touched: the registry does not list itself.
    assert.deepEqual(alice.peer("wg0", REGISTRY)?.endpoint, { ip: "192.0.2.1", port: 51820 });
    assert.ok(alice.calls.every((c) => c.updates.every((u) => u.publicKey !== REGISTRY)));
  });

  it("a change the registry's WireGuard sees reaches the node (rebinding)", async () => {
    const regWg = registryWg();
    const reg = await startRegistry(regWg);
    const alice = aliceWg();
    await startNode(alice, reg.port);
    await waitFor("first endpoint", () => alice.peer("wg0", BOB)?.endpoint?.port === BOB_NAT.port);
    const moved: Endpoint = { ip: BOB_NAT.ip, port: 50999 };
    regWg.setPeerEndpoint("wg0", BOB, moved);
    // Bob's session with Alice looked healthy a moment ago; the endpoint was ours, so we follow.
    alice.setHandshake("wg0", BOB, Date.now());
    await waitFor("moved endpoint", () => alice.peer("wg0", BOB)?.endpoint?.port === 50999);
  });

  it("refuses a wrong token with PERMISSION_DENIED and the node keeps running", async () => {
    const reg = await startRegistry(registryWg());
    const client = new v1Proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const md = new grpc.Metadata();
    md.set("authorization", "Bearer wrong");
    const err = await new Promise<grpc.ServiceError | null>((resolve) => client.GetPeers({}, md, (e) => resolve(e)));
    assert.equal(err?.code, grpc.status.PERMISSION_DENIED);

    const alice = aliceWg();
    const { log } = await startNode(alice, reg.port, { token: "wrong" });
    await waitFor("a warning about the refusal", () => log.records.some((r) => String(r.err ?? "").includes("PERMISSION_DENIED")));
    assert.equal(alice.peer("wg0", BOB)?.endpoint, null);
    assert.ok(!log.text().includes("wrong\""), "the token never appears in a log");
  });

  it("GetPeers with the right token returns every peer", async () => {
    const reg = await startRegistry(registryWg());
    const client = new v1Proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${TOKEN}`);
    const reply = await new Promise<GetPeersResponse__Output | undefined>((resolve, reject) =>
      client.GetPeers({}, md, (e, r) => (e ? reject(e) : resolve(r))),
    );
    assert.equal(reply?.registryPublicKey, REGISTRY);
    assert.deepEqual(
      reply?.peers.map((p) => [p.publicKey, p.endpoint]),
      [
        [ALICE, ALICE_NAT],
        [BOB, BOB_NAT],
      ],
    );
  });

  it("a node started before its registry connects once the registry comes up", async () => {
    const port = await freePort();
    const alice = aliceWg();
    const { log } = await startNode(alice, port);
    await waitFor("a warning that the registry is unreachable", () => log.records.some((r) => r.level === 40));
    await waitFor("the node retrying, backing off", () => log.records.some((r) => r.msg === "registry still unreachable"));
    await startRegistry(registryWg(), port);
    const bob = await waitFor("Bob's endpoint after the registry came up", () => alice.peer("wg0", BOB)?.endpoint, 15_000);
    assert.deepEqual(bob, BOB_NAT);
  });

  it("a registry restart is survived: the node resubscribes and gets fresh state", async () => {
    const port = await freePort();
    const regWg = registryWg();
    const first = await startRegistry(regWg, port);
    const alice = aliceWg();
    await startNode(alice, port);
    await waitFor("first endpoint", () => alice.peer("wg0", BOB)?.endpoint);
    await first.stop();
    const moved: Endpoint = { ip: "203.0.113.21", port: 50001 };
    regWg.setPeerEndpoint("wg0", BOB, moved);
    await startRegistry(regWg, port);
    await waitFor("endpoint from the restarted registry", () => alice.peer("wg0", BOB)?.endpoint?.ip === moved.ip, 15_000);
  });
});
