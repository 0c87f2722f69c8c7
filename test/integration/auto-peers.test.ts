/**
 * --auto-peers over a real gRPC connection: a registry and a node in one
 * process, each with a fake WireGuard; the node's interface names only the
 * registry.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { NodeAgent } from "../../src/node/agent.js";
import { runNode } from "../../src/node/run.js";
import { runRegistry } from "../../src/registry/run.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const ALICE = key(1);
const BOB = key(2);
const CAROL = key(3);
const OUTSIDER = key(4);
const REGISTRY = key(9);

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("--auto-peers against a real registry", () => {
  it("the node adds the registry's peers inside the prefix (the others not), and removes one that leaves after the grace time", async () => {
    const regWg = new FakeWireGuard([
      {
        name: "wg0",
        publicKey: REGISTRY,
        listenPort: 51820,
        peers: [
          { publicKey: ALICE, endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"] },
          { publicKey: BOB, endpoint: { ip: "203.0.113.20", port: 50000 }, allowedIps: ["10.200.0.3/32"] },
          { publicKey: CAROL, allowedIps: ["10.200.0.4/32"] },
          { publicKey: OUTSIDER, allowedIps: ["10.99.0.4/32"] },
        ],
      },
    ]);
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: "t", pollIntervalMs: 20 }, { wg: regWg, logger: captureLogger().logger });
    cleanups.push(() => reg.stop());
    const alice = new FakeWireGuard([
      { name: "wg0", publicKey: ALICE, peers: [{ publicKey: REGISTRY, endpoint: { ip: "192.0.2.1", port: 51820 }, persistentKeepaliveSec: 25, allowedIps: ["10.200.0.1/32"] }] },
    ]);
    const dir = await mkdtemp(join(tmpdir(), "wh-auto-int-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const log = captureLogger();
    const agent: NodeAgent = await runNode(
      {
        addresses: [`127.0.0.1:${reg.port}`],
        token: "t",
        iface: "wg0",
        refreshMs: 3_600_000,
        keepaliveSec: 25,
        probeIntervalMs: 0,
        autoPeers: "10.200.0.0/24",
        autoPeersGraceMs: 300,
        controlSocket: join(dir, "node.sock"),
      },
      {
        wg: alice,
        logger: log.logger,
        clock: systemClock,
        prober: null,
        rttMeter: null,
        natProbe: null,
        routeCheck: async () => false,
        interfaces: () => ({ wg0: [{ address: "10.200.0.2", netmask: "255.255.255.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: false, cidr: "10.200.0.2/24" }] }),
      },
    );
    cleanups.push(() => agent.stop());
    await waitFor("bob and carol added", () => (alice.peer("wg0", BOB) && alice.peer("wg0", CAROL)) || undefined);
    assert.deepEqual(alice.peer("wg0", BOB)?.allowedIps, ["10.200.0.3/32"]);
    assert.deepEqual(alice.peer("wg0", BOB)?.endpoint, { ip: "203.0.113.20", port: 50000 }, "then pointed where the registry sees it");
    assert.equal(alice.peer("wg0", OUTSIDER), undefined, "outside the prefix");
    assert.equal(alice.peer("wg0", ALICE), undefined, "never itself");

    regWg.removePeer("wg0", CAROL);
    await waitFor("carol removed", () => alice.peer("wg0", CAROL) === undefined || undefined);
    assert.ok(alice.peer("wg0", BOB));
    assert.deepEqual(alice.peer("wg0", REGISTRY)?.allowedIps, ["10.200.0.1/32"]);
    assert.match(log.text(), /auto peer removed/);
  });
});
