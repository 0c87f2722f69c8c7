/**
 * IPv6 candidates end to end, in process over real gRPC (fake WireGuard):
 * a node reports its global IPv6 address and never its ULA or link-local
 * ones; a peer with IPv6 of its own punches that address first, a peer
 * without IPv6 punches the public IPv4 mapping. As in identity-lan.test.ts,
 * the registry's fake WireGuard gives Alice the allowed IP 127.0.0.1/32, so
 * a connection from loopback is Alice through the tunnel.
 */
import assert from "node:assert/strict";
import type { NetworkInterfaceInfo } from "node:os";
import { after, describe, it } from "node:test";
import { runNode } from "../../src/node/run.js";
import { runRegistry } from "../../src/registry/run.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { dialledNodeWg, REGISTRY } from "../support/agent.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "ipv6-token";
const ALICE = key(1);
const BOB = key(2);
const ALICE_NAT = { ip: "198.51.100.10", port: 40001 };
const BOB_NAT = { ip: "198.51.100.20", port: 40002 };

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const v4 = (address: string): NetworkInterfaceInfo => ({ address, netmask: "255.255.255.0", family: "IPv4", mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/24` });
const v6 = (address: string): NetworkInterfaceInfo => ({ address, netmask: "ffff:ffff:ffff:ffff::", family: "IPv6", mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/64`, scopeid: 0 });


describe("IPv6 candidates through the registry", () => {
  it("Alice reports her global IPv6 address, never her ULA or link-local one; Bob punches it first only when he has IPv6 himself", async () => {
    const regWg = new FakeWireGuard([
      {
        name: "wg0",
        publicKey: REGISTRY,
        peers: [
          { publicKey: ALICE, endpoint: ALICE_NAT, allowedIps: ["10.200.0.2/32", "127.0.0.1/32"] },
          { publicKey: BOB, endpoint: BOB_NAT, allowedIps: ["10.200.0.3/32"] },
        ],
      },
    ]);
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 20 }, { wg: regWg, logger: captureLogger().logger });
    cleanups.push(() => reg.stop());

    const start = async (wg: FakeWireGuard, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>) => {
      const agent = await runNode(
        { addresses: [`127.0.0.1:${reg.port}`], token: TOKEN, iface: "wg0", refreshMs: 200, keepaliveSec: 25, probeIntervalMs: 0 },
        { wg, logger: captureLogger().logger, clock: systemClock, prober: null, interfaces: () => interfaces, natProbe: null },
      );
      cleanups.push(() => agent.stop());
    };
    await start(dialledNodeWg(ALICE, BOB, "10.200.0.3/32"), { eth0: [v4("192.168.1.10"), v6("fe80::10"), v6("fd12:3456::10"), v6("2001:db8:1:1::10")] });
    await waitFor("Alice's report", () => reg.table.reportOf(ALICE));
    assert.deepEqual(reg.table.reportOf(ALICE)?.candidates, [
      { ip: "192.168.1.10", port: 51820 },
      { ip: "2001:db8:1:1::10", port: 51820 },
    ]);

    // Bob with a global IPv6 address: Alice's IPv6 address first.
    const bobWg = dialledNodeWg(BOB, ALICE, "10.200.0.2/32");
    await start(bobWg, { eth0: [v4("192.168.2.10"), v6("2001:db8:2:1::10")] });
    assert.deepEqual(await waitFor("Alice's endpoint on Bob", () => bobWg.peer("wg0", ALICE)?.endpoint), { ip: "2001:db8:1:1::10", port: 51820 });

    // Carol (Bob's key, another machine) with only ULA and link-local IPv6: Alice's public IPv4 mapping.
    const carolWg = dialledNodeWg(BOB, ALICE, "10.200.0.2/32");
    await start(carolWg, { eth0: [v4("192.168.3.10"), v6("fe80::30"), v6("fd00::30")] });
    assert.deepEqual(await waitFor("Alice's endpoint on Carol", () => carolWg.peer("wg0", ALICE)?.endpoint), ALICE_NAT);
  });
});

describe("the start-up NAT probe", () => {
  it("asks once at start, at the registry's public address (the API address is inside the tunnel), and again when the registry sees the node at a new address", async () => {
    const regWg = new FakeWireGuard([{ name: "wg0", publicKey: REGISTRY, peers: [{ publicKey: ALICE, endpoint: ALICE_NAT, allowedIps: ["10.200.0.2/32", "127.0.0.1/32"] }] }]);
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 20 }, { wg: regWg, logger: captureLogger().logger });
    cleanups.push(() => reg.stop());
    const asked: string[] = [];
    const agent = await runNode(
      { addresses: [`127.0.0.1:${reg.port}`], token: TOKEN, iface: "wg0", refreshMs: 200, keepaliveSec: 25, probeIntervalMs: 1_000 },
      {
        wg: dialledNodeWg(ALICE, BOB, "10.200.0.3/32"),
        logger: captureLogger().logger,
        clock: systemClock,
        prober: null,
        routeCheck: async () => false, // nothing sent to the registry's tunnel address here
        interfaces: () => ({ eth0: [v4("192.168.1.10")] }),
        natProbe: async (host) => {
          asked.push(host);
          return { mapping: "endpoint-independent", detail: "a stand-in" };
        },
      },
    );
    cleanups.push(() => agent.stop());
    await waitFor("the first probe", () => (asked.length === 1 ? true : undefined));
    assert.deepEqual(asked, ["203.0.113.1"]);
    regWg.setPeerEndpoint("wg0", ALICE, { ip: "198.51.100.11", port: 40009 });
    await waitFor("a probe after the network change", () => (asked.length === 2 ? true : undefined));
    assert.deepEqual(asked, ["203.0.113.1", "203.0.113.1"]);
  });
});
