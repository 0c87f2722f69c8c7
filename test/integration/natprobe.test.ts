/** The node's start-up NAT probe against the registry's real STUN responder on loopback (no NAT: one mapping). */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { describe, it } from "node:test";
import { probeNatMapping } from "../../src/node/natprobe.js";
import { startStunServer } from "../../src/stun/server.js";
import { captureLogger } from "../support/logs.js";

describe("probeNatMapping", () => {
  it("without a NAT, the STUN port and its alternate see the same mapping", async (t) => {
    const server = await startStunServer({ host: "127.0.0.1", port: 0, altPort: 0, logger: captureLogger().logger });
    t.after(() => server.close());
    const r = await probeNatMapping({ host: "127.0.0.1", port: server.port, altPort: server.altPort, timeoutMs: 2_000 });
    assert.equal(r.mapping, "endpoint-independent", r.detail);
    assert.equal(server.counts.answered, 2);
  });
  it("a registry that does not answer STUN: unknown, within the bound, never a throw", async (t) => {
    const silent = createSocket("udp4");
    t.after(() => silent.close());
    await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
    const r = await probeNatMapping({ host: "127.0.0.1", port: silent.address().port, altPort: silent.address().port, timeoutMs: 200 });
    assert.equal(r.mapping, "unknown");
    assert.match(r.detail, /no reply/);
  });
});
