/**
 * Scenarios beyond the matrix, against the real `wormhole` (dist/wormhole.cjs;
 * these fail, not skip, when it has not been built). Needs root.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runNodeFirstScenario, runRebindScenario, runRegistryRestartScenario } from "../../src/lab/index.js";
import { newRunId } from "../../src/lab/names.js";
import { REBIND_PORTS } from "../../src/lab/scenarios.js";
import { SKIP, assertNoLeftovers, realAgents } from "./helpers.js";

describe("NAT lab scenarios (real wormhole agents)", { skip: SKIP }, () => {
  it("bob's router loses its mappings and comes back on other ports: alice follows", async (t) => {
    const runId = newRunId();
    const r = await runRebindScenario({ agents: realAgents(), runId });
    t.diagnostic(`connected after ${r.connectMs} ms; bob moved ${r.before.ip}:${r.before.port} -> ${r.after.ip}:${r.after.port}; recovered after ${r.recoveryMs} ms`);
    assert.equal(r.after.ip, r.before.ip, "same router, same public address");
    assert.ok(r.after.port >= REBIND_PORTS[0] && r.after.port <= REBIND_PORTS[1], `new port ${r.after.port} is in the router's new range`);
    assert.notEqual(r.after.port, r.before.port);
    await assertNoLeftovers(runId);
  });

  it("the registry is killed and restarted: the tunnel stays up, the agents use the new registry", async (t) => {
    const runId = newRunId();
    const r = await runRegistryRestartScenario({ agents: realAgents(), runId });
    t.diagnostic(`connected after ${r.connectMs} ms; ping while the registry was down: ${r.pingWhileDown}; after restart, followed a rebinding in ${r.recoveryMs} ms`);
    assert.equal(r.pingWhileDown, true, "alice -> bob must not need the registry once connected");
    await assertNoLeftovers(runId);
  });

  it("node agents started before the registry connect once it is up", async (t) => {
    const runId = newRunId();
    const r = await runNodeFirstScenario({ agents: realAgents(), runId });
    t.diagnostic(`node agents survived the missing registry: ${r.nodesSurvived}; connected ${r.connectMs} ms after the registry started`);
    assert.equal(r.nodesSurvived, true, "a node agent must not exit when the registry is not there yet");
    await assertNoLeftovers(runId);
  });
});
