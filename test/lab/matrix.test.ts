/**
 * The NAT × NAT matrix on real wireguard-go through real nftables NATs, and
 * the lab's own NAT rules proved with the manual stand-in (no product).
 * Needs root; the matrix needs dist/wormhole.cjs (WORMHOLE_LAB_AGENTS=manual
 * runs it with the stand-in instead).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { accepted, manualAgents, measurePaths, runMatrix, startAgents, withLab } from "../../src/lab/index.js";
import { newRunId } from "../../src/lab/names.js";
import { SKIP, assertNoLeftovers, matrixAgents } from "./helpers.js";

describe("NAT lab", { skip: SKIP }, () => {
  it("home <-> home punches through with the manual stand-in (validates the lab's NAT rules)", async (t) => {
    const runId = newRunId();
    const results = await withLab(
      {
        runId,
        sites: [
          { name: "home1", nat: "home", nodes: ["home1"] },
          { name: "home2", nat: "home", nodes: ["home2"] },
        ],
      },
      async (lab) => {
        // The registry sees each node at its router's public address: the NAT is real.
        const reg = await lab.readPeers("reg");
        for (const n of ["home1", "home2"]) {
          const seen = reg.find((p) => p.publicKey === lab.publicKey(n))?.endpoint;
          assert.equal(seen?.ip, lab.site(n).publicIp, `registry's view of ${n}`);
        }
        // Without anyone handing out endpoints, nothing connects.
        const before = await lab.ping("home1", "home2");
        assert.equal(before.ok, false, "home1 -> home2 must not work before the endpoints are set");
        const agents = manualAgents();
        const start = Date.now();
        await startAgents(lab, agents);
        const r = await measurePaths(lab, { pairs: [["home1", "home2"], ["home2", "home1"]], startMs: start, timeoutMs: 20_000 });
        await agents.stopAll(lab);
        return r;
      },
    );
    for (const r of results) {
      t.diagnostic(`${r.from} -> ${r.to}: ${r.path} after ${r.pingMs} ms, endpoint ${r.endpoint?.ip}:${r.endpoint?.port}`);
      assert.equal(r.path, "direct", `${r.from} -> ${r.to}: ${r.note ?? ""}`);
      assert.match(r.endpoint?.ip ?? "", /^203\.0\.113\.10[12]$/);
    }
    await assertNoLeftovers(runId);
  });

  it("matrix: every pair of NAT behaviours gets the path expected today", async (t) => {
    const runId = newRunId();
    const agents = matrixAgents();
    const result = await runMatrix({ agents, runId });
    t.diagnostic(`${agents.name} agents, matrix took ${(result.elapsedMs / 1000).toFixed(1)} s`);
    for (const line of result.grid.split("\n")) t.diagnostic(line);
    const times = result.pairs.flatMap((p) => (p.pingMs === null ? [] : [p.pingMs])).sort((a, b) => a - b);
    t.diagnostic(`first ping after agents started: min ${times[0]} ms, median ${times[Math.floor(times.length / 2)]} ms, max ${times[times.length - 1]} ms over ${times.length} working pairs`);
    t.diagnostic(`every pair: ${result.pairs.map((p) => `${p.from}->${p.to} ${p.path}${p.pingMs === null ? "" : ` ${p.pingMs}ms`}`).join(", ")}`);
    assert.equal(result.pairs.length, 12 * 11, "every directed pair of the 12 nodes is measured");
    for (const p of result.pairs) {
      const ok = accepted(p.expected);
      const what = `${p.from} (${p.fromNat}) -> ${p.to} (${p.toNat})`;
      if (ok.length === 1) {
        assert.equal(p.path, p.expected.path, `${what}: ${p.path}, expected ${p.expected.path}${p.expected.gap ? ` (known gap: ${p.expected.gap})` : ""}; ${p.note ?? ""}`);
      } else {
        assert.ok(ok.includes(p.path), `${what}: ${p.path}, expected one of ${ok.join(", ")}`);
      }
      if (p.path === "direct") assert.ok(p.endpoint && !p.endpoint.ip.startsWith("192.168."), `${what}: direct over ${JSON.stringify(p.endpoint)}`);
    }
    assert.equal(result.ok, true);
    await assertNoLeftovers(runId);
  });
});
