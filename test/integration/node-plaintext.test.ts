/** A node says so when its token will cross the network in plaintext. */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { NodeAgent } from "../../src/node/agent.js";
import { runNode } from "../../src/node/run.js";
import type { RegistrySource } from "../../src/node/source.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

const agents: NodeAgent[] = [];
after(async () => {
  for (const a of agents) await a.stop();
});

const silent: RegistrySource = { start: () => {}, report: async () => {}, stop: () => {} };

async function start(address: string, token: string, tls = false) {
  const wg = new FakeWireGuard([
    { name: "wg0", publicKey: key(1), listenPort: 51820, peers: [{ publicKey: key(9), endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["10.200.0.1/32"] }] },
  ]);
  const log = captureLogger();
  const agent = await runNode(
    { addresses: [address], token, iface: "wg0", refreshMs: 60_000, keepaliveSec: 25, probeIntervalMs: 0, ...(tls ? { tls: { ca: null, pins: ["sha256//AAAA"] } } : {}) },
    { wg, logger: log.logger, clock: systemClock, source: silent, prober: null, rttMeter: null, routeCheck: async () => false },
  );
  agents.push(agent);
  return log.records.filter((r) => String(r.msg).startsWith("the token crosses the network in plaintext"));
}

describe("the token in plaintext", () => {
  it("is warned of when the registry's address is outside the tunnel and there is no TLS", async () => {
    const warned = await start("203.0.113.1:1638", "s3cret-token");
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.registry, "203.0.113.1:1638");
    assert.ok(!JSON.stringify(warned).includes("s3cret-token"), "the token itself is never logged");
  });
  const quiet: Array<[string, string, string, boolean]> = [
    ["the registry's tunnel address", "10.200.0.1:1638", "t", false],
    ["TLS", "203.0.113.1:1638", "t", true],
    ["no token", "203.0.113.1:1638", "", false],
  ];
  for (const [what, address, token, tls] of quiet) {
    it(`is not warned of with ${what}`, async () => assert.equal((await start(address, token, tls)).length, 0));
  }
});
