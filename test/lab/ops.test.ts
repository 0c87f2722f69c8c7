/**
 * Operations in the lab: `wormhole status` inside each node's namespace shows
 * the path the lab measured for every pair (direct, lan, relayed) and a round
 * trip through the tunnel, and the registry's /metrics scrapes. Real
 * wireguard-go, real NATs, real processes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { measurePaths, startAgents, withLab, wormholeAgents } from "../../src/lab/index.js";
import { controlSocketOf } from "../../src/lab/agents.js";
import { newRunId } from "../../src/lab/names.js";
import { pollUntil } from "../../src/lab/wait.js";
import { inNs } from "../../src/lab/wg.js";
import { SKIP, WORMHOLE_CJS, WORMHOLE_COMMAND, assertNoLeftovers } from "./helpers.js";

const NODES = ["alice", "bob", "carol", "dave"];

describe("operations in the NAT lab", { skip: SKIP }, () => {
  it("status shows the measured path of every pair; metrics scrape", async (t) => {
    const runId = newRunId();
    const agents = wormholeAgents({ command: WORMHOLE_COMMAND, registryArgs: ["--http", "127.0.0.1:9638"] });
    await withLab(
      {
        runId,
        sites: [
          { name: "home", nat: "home", nodes: ["alice"] },
          { name: "sym", nat: "symmetric", nodes: ["bob"] },
          { name: "lan", nat: "samelan", nodes: ["carol", "dave"] },
        ],
      },
      async (lab) => {
        const start = Date.now();
        await startAgents(lab, agents);
        const pairs = NODES.flatMap((a) => NODES.filter((b) => b !== a).map((b) => [a, b] as const));
        const measured = await measurePaths(lab, { pairs, startMs: start, timeoutMs: 25_000, relayIps: [lab.plan.registry.ip] });
        for (const r of measured) t.diagnostic(`${r.from} -> ${r.to}: ${r.path}`);
        assert.ok(
          measured.every((r) => r.path !== "down"),
          `every pair connects: ${measured.filter((r) => r.path === "down").map((r) => `${r.from}->${r.to}`).join(", ")}`,
        );
        assert.ok(measured.some((r) => r.path === "relayed") && measured.some((r) => r.path === "lan") && measured.some((r) => r.path === "direct"));

        for (const name of NODES) {
          const n = lab.node(name);
          const out = await lab.run(inNs(n.ns, [process.execPath, WORMHOLE_CJS, "status", "--json", "--control-socket", controlSocketOf(lab, name)]), { timeoutMs: 15_000 });
          const status = JSON.parse(out.stdout) as { source: string; interfaces: Record<string, { peers: Record<string, { path: string; rttMs: number | null }> }> };
          assert.equal(status.source, "agent", `${name}: the running agent answered`);
          const peers = status.interfaces[n.iface]?.peers ?? {};
          assert.equal(peers[lab.publicKey("reg")]?.path, "registry");
          assert.equal(typeof peers[lab.publicKey("reg")]?.rttMs, "number", `${name} -> registry: rtt`);
          for (const r of measured.filter((m) => m.from === name)) {
            assert.equal(peers[lab.publicKey(r.to)]?.path, r.path, `${name} -> ${r.to}: status says ${peers[lab.publicKey(r.to)]?.path}, the lab measured ${r.path}`);
            // A ping through the tunnel, bound to the WireGuard interface: direct, LAN and relayed paths all answer.
            const rtt = peers[lab.publicKey(r.to)]?.rttMs;
            assert.ok(typeof rtt === "number" && rtt > 0 && rtt < 1_000, `${name} -> ${r.to}: rtt ${rtt}`);
          }
        }

        const reg = lab.plan.registry;
        const script = "fetch('http://127.0.0.1:9638/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))";
        const scrape = async () => (await lab.run(inNs(reg.ns, [process.execPath, "-e", script]), { timeoutMs: 15_000 })).stdout;
        const metrics = await scrape();
        assert.match(metrics, /^wormhole_registry_peers(\{[^}]*\})? 4$/m, "four nodes are the registry's peers");
        assert.match(metrics, /^wormhole_registry_watchers(\{[^}]*\})? 4$/m, "every node watches");
        // The nodes' reports reach the registry when their paths change: give them a few seconds.
        const relayed = new Set(measured.filter((r) => r.path === "relayed").map((r) => [r.from, r.to].sort().join("-")));
        let seen = "";
        await pollUntil(
          "the registry's count of relayed pairs",
          async () => {
            seen = /^wormhole_registry_relayed_pairs (\d+)$/m.exec(await scrape())?.[1] ?? "";
            return seen === String(relayed.size);
          },
          { timeoutMs: 10_000, intervalMs: 500 },
        ).catch(() => {}); // the assertion below says what was seen
        assert.equal(seen, String(relayed.size), `relayed pairs: the registry counts ${seen}, the lab measured ${[...relayed].join(", ")}`);
        await agents.stopAll(lab);
      },
    );
    await assertNoLeftovers(runId);
  });
});
