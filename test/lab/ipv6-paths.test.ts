/**
 * Direct over IPv6 where IPv4 can only relay: real wireguard-go behind real
 * nftables NATs (IPv4) and stateful IPv6 firewalls, the real registry and
 * nodes on the seed's command line, no extra flags. Each node reports its
 * global IPv6 address as a candidate; when both ends have one they punch it
 * first, at once, which opens both firewalls. Needs root and a built
 * dist/wormhole.cjs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { measurePaths, withLab, type Lab, type PairResult } from "../../src/lab/index.js";
import { pollUntil } from "../../src/lab/wait.js";
import { IPV6_PROFILES } from "../../src/lab/nat.js";
import { newRunId } from "../../src/lab/names.js";
import type { SiteSpec } from "../../src/lab/topology.js";
import { SKIP, assertNoLeftovers, realAgents } from "./helpers.js";

/** Two symmetric-IPv4 sites with native IPv6, two home routers with native IPv6, an IPv6-only site, and a symmetric site without IPv6. */
const SITES: readonly SiteSpec[] = [
  { name: "sym6a", ...pick(IPV6_PROFILES.symmetric6), nodes: ["s6a"] },
  { name: "sym6b", ...pick(IPV6_PROFILES.symmetric6), nodes: ["s6b"] },
  { name: "home6a", ...pick(IPV6_PROFILES.home6), nodes: ["h6a"] },
  { name: "home6b", ...pick(IPV6_PROFILES.home6), nodes: ["h6b"] },
  { name: "v6only", ...pick(IPV6_PROFILES.v6only), nodes: ["o6"] },
  { name: "sym4", nat: "symmetric", nodes: ["s4"] },
];
const WITH_IPV6: ReadonlySet<string> = new Set(["s6a", "s6b", "h6a", "h6b", "o6"]);

function pick(p: { nat: SiteSpec["nat"]; ipv6: NonNullable<SiteSpec["ipv6"]> }): Pick<SiteSpec, "nat" | "ipv6"> {
  return { nat: p.nat, ipv6: p.ipv6 };
}

/**
 * What each pair must get when all agents start together: direct over IPv6
 * when both ends have it, relayed otherwise (each such pair has a symmetric
 * IPv4 NAT, or no IPv4, on one end). Two home6 nodes are the exception: both
 * punch IPv4 before either has reported its IPv6 address, and IPv4 between
 * two home routers works at once, so the pair may well stay direct over IPv4
 * (a working path is never moved); either family is accepted there.
 */
function expected(a: string, b: string): { path: PairResult["path"]; families: ReadonlyArray<PairResult["family"]> } {
  if (!WITH_IPV6.has(a) || !WITH_IPV6.has(b)) return { path: "relayed", families: [null] };
  if (a.startsWith("h6") && b.startsWith("h6")) return { path: "direct", families: ["ipv6", "ipv4"] };
  return { path: "direct", families: ["ipv6"] };
}

const show = (r: PairResult) =>
  `${r.from} -> ${r.to}: ${r.path}${r.family ? ` over ${r.family}` : ""}${r.pingMs === null ? "" : ` after ${r.pingMs} ms`}, endpoint ${r.endpoint ? `${r.endpoint.ip}:${r.endpoint.port}` : "none"}${r.note ? ` (${r.note})` : ""}`;

/** Every directed pair among `names`, or between `later` and everyone. */
function pairsOf(names: readonly string[], later?: readonly string[]): Array<readonly [string, string]> {
  return names.flatMap((a) => names.filter((b) => b !== a && (!later || later.includes(a) || later.includes(b))).map((b) => [a, b] as const));
}

async function measure(lab: Lab, pairs: ReadonlyArray<readonly [string, string]>, startedAt: ReadonlyMap<string, number>, timeoutMs: number): Promise<PairResult[]> {
  const start = Math.min(...startedAt.values());
  return measurePaths(lab, {
    pairs,
    startMs: start,
    pairStartMs: (a, b) => Math.max(startedAt.get(a) ?? start, startedAt.get(b) ?? start),
    timeoutMs,
    relayIps: [lab.plan.registry.ip],
  });
}

function assertIpv6Paths(results: readonly PairResult[]): void {
  const wrong = results.filter((r) => {
    const want = expected(r.from, r.to);
    return r.path !== want.path || !want.families.includes(r.family);
  });
  assert.deepEqual(wrong.map(show), [], "every pair: direct over IPv6 when both ends have IPv6 (home6 pairs: direct), relayed otherwise");
  for (const r of results.filter((x) => x.family === "ipv6")) assert.match(r.endpoint?.ip ?? "", /^2001:db8:\d+:1::1\d$/, `${r.from} -> ${r.to} reaches the peer's own global IPv6 address`);
}

describe("IPv6 paths in the NAT lab", { skip: SKIP }, () => {
  it("all agents at once: symmetric-IPv4 sites with IPv6 and an IPv6-only node go direct over IPv6; home6 pairs direct; without IPv6 on one end, relayed", async (t) => {
    const runId = newRunId();
    const results = await withLab({ runId, sites: SITES }, async (lab) => {
      const agents = realAgents();
      await agents.startRegistry(lab);
      const startedAt = new Map<string, number>();
      for (const n of lab.plan.nodes) {
        startedAt.set(n.name, Date.now());
        await agents.startNode(lab, n.name);
      }
      const r = await measure(lab, pairsOf(lab.plan.nodes.map((n) => n.name)), startedAt, 30_000);
      await agents.stopAll(lab);
      return r;
    });
    for (const r of results) t.diagnostic(show(r));
    assertIpv6Paths(results);
    await assertNoLeftovers(runId);
  });

  it("agents started apart: the later node punches the earlier one's IPv6 address first, and the earlier one, which relays it, tries that address at once", async (t) => {
    const runId = newRunId();
    const first = ["s6a", "h6a"];
    const later = ["s6b", "h6b", "o6"];
    const results = await withLab({ runId, sites: SITES.filter((s) => s.nodes.some((n) => [...first, ...later].includes(n))) }, async (lab) => {
      const agents = realAgents();
      await agents.startRegistry(lab);
      const startedAt = new Map<string, number>();
      for (const n of first) {
        startedAt.set(n, Date.now());
        await agents.startNode(lab, n);
      }
      // The first agents give up punching the peers whose agents are not running yet (their IPv4 NATs drop it) and relay them.
      await pollUntil(
        "the first nodes to relay the later ones",
        async () => {
          for (const a of first) {
            const peers = await lab.readPeers(a);
            for (const b of later) if (peers.find((p) => p.publicKey === lab.publicKey(b))?.endpoint?.ip !== "127.0.0.1") return undefined;
          }
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 250, check: () => lab.checkOpen() },
      );
      for (const n of later) {
        startedAt.set(n, Date.now());
        await agents.startNode(lab, n);
      }
      // A relayed peer is otherwise tried directly no sooner than QUIET_MS (35 s) after it was relayed: well past this bound.
      const r = await measure(lab, pairsOf([...first, ...later], later), startedAt, 20_000);
      await agents.stopAll(lab);
      return r;
    });
    for (const r of results) t.diagnostic(show(r));
    assert.equal(results.length, 5 * 4 - 2);
    // Here every pair but the two first nodes' has an end that knew the other's IPv6 address before punching: all direct over IPv6.
    const wrong = results.filter((r) => r.path !== "direct" || r.family !== "ipv6");
    assert.deepEqual(wrong.map(show), [], "every pair with a later node: direct over IPv6");
    await assertNoLeftovers(runId);
  });
});
