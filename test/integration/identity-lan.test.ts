/**
 * Tunnel identity and LAN candidates, in process over real gRPC. The
 * registry's fake WireGuard gives Alice the allowed IP 127.0.0.1/32, so a
 * connection from loopback is "Alice through the tunnel" — the same rule a
 * real registry applies to its tunnel addresses.
 */
import assert from "node:assert/strict";
import type { NetworkInterfaceInfo } from "node:os";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { runNode } from "../../src/node/run.js";
import { runRegistry } from "../../src/registry/run.js";
import { v1Proto } from "../../src/rpc/proto.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { dialledNodeWg, REGISTRY } from "../support/agent.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "lan-token";
const ALICE = key(1);
const BOB = key(2);
const NAT_IP = "198.51.100.10"; // both behind one router

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function lanOf(ip: string): () => NodeJS.Dict<NetworkInterfaceInfo[]> {
  return () => ({
    lo: [{ address: "127.0.0.1", netmask: "255.0.0.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: true, cidr: "127.0.0.1/8" }],
    eth0: [
      { address: ip, netmask: "255.255.255.0", family: "IPv4", mac: "02:00:00:00:00:01", internal: false, cidr: `${ip}/24` },
      { address: "fe80::1", netmask: "ffff:ffff:ffff:ffff::", family: "IPv6", mac: "02:00:00:00:00:01", internal: false, cidr: "fe80::1/64", scopeid: 2 },
    ],
    wg0: [{ address: "10.200.0.2", netmask: "255.255.255.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: false, cidr: "10.200.0.2/24" }],
  });
}


describe("tunnel identity and LAN candidates", () => {
  it("an identified node's candidates reach the peer behind the same NAT, which tries the LAN first; a node cannot report for another", async () => {
    const regWg = new FakeWireGuard([
      {
        name: "wg0",
        publicKey: REGISTRY,
        peers: [
          { publicKey: ALICE, endpoint: { ip: NAT_IP, port: 40001 }, allowedIps: ["10.200.0.2/32", "127.0.0.1/32"] },
          { publicKey: BOB, endpoint: { ip: NAT_IP, port: 40002 }, allowedIps: ["10.200.0.3/32"] },
        ],
      },
    ]);
    const regLog = captureLogger();
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 20 }, { wg: regWg, logger: regLog.logger });
    cleanups.push(() => reg.stop());

    const start = async (wg: FakeWireGuard, lan: string) => {
      const log = captureLogger();
      const agent = await runNode(
        { addresses: [`127.0.0.1:${reg.port}`], token: TOKEN, iface: "wg0", refreshMs: 200, keepaliveSec: 25, probeIntervalMs: 0 },
        { wg, logger: log.logger, clock: systemClock, prober: null, interfaces: lanOf(lan) },
      );
      cleanups.push(() => agent.stop());
      return log;
    };
    const aliceWg = dialledNodeWg(ALICE, BOB, "10.200.0.3/32");
    await start(aliceWg, "192.168.1.10");
    await waitFor("Alice's report", () => reg.table.reportOf(ALICE));
    // Only the LAN address: not loopback, not link-local, not the WireGuard interface's tunnel address.
    assert.deepEqual(reg.table.reportOf(ALICE)?.candidates, [{ ip: "192.168.1.10", port: 51820 }]);

    // Bob's connection also comes from 127.0.0.1, so the registry knows it as Alice's: Bob's report is refused.
    const bobWg = dialledNodeWg(BOB, ALICE, "10.200.0.2/32");
    const bobLog = await start(bobWg, "192.168.1.11");
    await waitFor("the refusal of Bob's report", () => regLog.records.some((r) => String(r.err ?? "").includes("cannot report for")));
    await waitFor("Bob's note that reports are refused", () => bobLog.records.some((r) => String(r.msg).includes("does not take reports")));
    assert.equal(reg.table.reportOf(BOB), undefined);

    // Bob and Alice share a public address: Bob tries Alice's LAN address first.
    const ep = await waitFor("Alice's endpoint on Bob", () => bobWg.peer("wg0", ALICE)?.endpoint);
    assert.deepEqual(ep, { ip: "192.168.1.10", port: 51820 });
    // Alice has no candidates for Bob (refused), so she tries his public mapping.
    const ep2 = await waitFor("Bob's endpoint on Alice", () => aliceWg.peer("wg0", BOB)?.endpoint);
    assert.deepEqual(ep2, { ip: NAT_IP, port: 40002 });
  });

  it("an unidentified caller with the right token can report nothing", async () => {
    const regWg = new FakeWireGuard([{ name: "wg0", publicKey: REGISTRY, peers: [{ publicKey: ALICE, allowedIps: ["10.200.0.2/32"] }] }]);
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 20 }, { wg: regWg, logger: captureLogger().logger });
    cleanups.push(() => reg.stop());
    const client = new v1Proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${TOKEN}`);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Report({ publicKey: ALICE, candidates: [{ ip: "192.168.1.10", port: 51820 }] }, md, (e) => resolve(e)),
    );
    assert.equal(err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(err?.details ?? "", /tunnel/);
    assert.equal(reg.table.reportOf(ALICE), undefined);
  });
});
