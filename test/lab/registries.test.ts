/**
 * Two registries in the NAT lab: every node peers with both and is given
 * both (`-a` twice). One is killed with -9; the tunnel stays up, a NAT
 * rebinding during the outage is repaired from the other's news, and the
 * returned registry is watched again. Needs root and a built dist/wormhole.cjs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ALICE, BOB, pairSites, rebindAndRecover, startAgents, waitConnected, withLab, type Lab } from "../../src/lab/index.js";
import { controlSocketOf } from "../../src/lab/agents.js";
import { newRunId } from "../../src/lab/names.js";
import { pollUntil } from "../../src/lab/wait.js";
import { inNs } from "../../src/lab/wg.js";
import { SKIP, WORMHOLE_CJS, assertNoLeftovers, realAgents } from "./helpers.js";

interface StatusJson {
  readonly registries?: ReadonlyArray<{ readonly name: string; readonly health: string; readonly answering: boolean }>;
}

/** What `wormhole status --json` says of the registries, asked as a user would, inside the node's namespace. */
async function registriesOf(lab: Lab, node: string): Promise<StatusJson["registries"]> {
  const out = await lab.run(inNs(lab.node(node).ns, [process.execPath, WORMHOLE_CJS, "status", "--json", "--control-socket", controlSocketOf(lab, node)]), { timeoutMs: 15_000 });
  return (JSON.parse(out.stdout) as StatusJson).registries;
}

describe("two registries in the NAT lab", { skip: SKIP }, () => {
  it("one killed with -9: the tunnel stays up, a rebinding meanwhile is repaired, and the registry is used again when it is back", async (t) => {
    const runId = newRunId();
    await withLab({ sites: pairSites("home", "home"), runId, secondRegistry: true }, async (lab) => {
      const agents = realAgents();
      const start = Date.now();
      await startAgents(lab, agents);
      await waitConnected(lab, start, 20_000);
      const api = (r: { ip: string; grpcPort: number }) => `${r.ip}:${r.grpcPort}`;
      const first = api(lab.plan.registry);
      const second = api(lab.plan.registry2 as { ip: string; grpcPort: number });
      await pollUntil(
        "alice's agent to be connected to both registries",
        async () => ((await registriesOf(lab, ALICE))?.every((r) => r.health === "connected" && r.answering) ? true : undefined),
        { timeoutMs: 10_000, intervalMs: 200, check: () => lab.checkOpen() },
      );

      await agents.stopRegistryHost(lab, "reg", "SIGKILL");
      const killed = Date.now();
      const down = await pollUntil(
        "alice's agent to see the first registry gone",
        async () => {
          const r = await registriesOf(lab, ALICE);
          return r?.find((x) => x.name === first)?.health === "unreachable" ? r : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, check: () => lab.checkOpen() },
      );
      assert.equal(down.find((x) => x.name === second)?.health, "connected", JSON.stringify(down));
      for (const [a, b] of [[ALICE, BOB], [BOB, ALICE]] as const) assert.ok((await lab.ping(a, b)).ok, `${a} -> ${b} while a registry is down`);

      // Bob's router loses its mappings: only the second registry can tell alice where bob is now.
      const { recoveryMs } = await rebindAndRecover(lab, 15_000);
      t.diagnostic(`rebinding repaired in ${recoveryMs} ms with one registry of two down`);

      // Down for 10 s, as a crash and a restart by systemd might take; then back when it listens again (startRegistryHost waits for that).
      await new Promise((r) => setTimeout(r, Math.max(0, killed + 10_000 - Date.now())));
      await agents.startRegistryHost(lab, "reg");
      const back = Date.now();
      await pollUntil(
        "alice's agent to use the first registry again",
        async () => ((await registriesOf(lab, ALICE))?.find((x) => x.name === first)?.health === "connected" ? true : undefined),
        { timeoutMs: 15_000, intervalMs: 100, check: () => lab.checkOpen() },
      );
      t.diagnostic(`the first registry in use again ${Date.now() - back} ms after it listens`);
      await agents.stopAll(lab);
    });
    await assertNoLeftovers(runId);
  });
});
