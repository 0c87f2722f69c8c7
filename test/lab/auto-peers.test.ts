/**
 * `wormhole node --auto-peers`: a mesh that assembles itself. Real
 * wireguard-go behind real NATs (home, symmetric, public, carrier-grade), the
 * real registry, and nodes on the seed's command line plus --auto-peers,
 * whose WireGuard names only the registry. Needs root and a built
 * dist/wormhole.cjs.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { describe, it } from "node:test";
import { accepted, expectedPath, measurePaths, startAgents, withLab, wormholeAgents, type Lab } from "../../src/lab/index.js";
import { controlSocketOf } from "../../src/lab/agents.js";
import { newRunId } from "../../src/lab/names.js";
import { TUNNEL_PREFIX_LEN, type SiteSpec } from "../../src/lab/topology.js";
import { pollUntil } from "../../src/lab/wait.js";
import { recordPath } from "../../src/node/auto-peers-record.js";
import { SKIP, WORMHOLE_CJS, WORMHOLE_COMMAND, assertNoLeftovers } from "./helpers.js";

const ANA = "ana";
const BEN = "ben";
const CAL = "cal";
const DAN = "dan";
const SITES: readonly SiteSpec[] = [
  { name: "home", nat: "home", nodes: [ANA] },
  { name: "sym", nat: "symmetric", nodes: [BEN] },
  { name: "pub", nat: "public", nodes: [CAL] },
  { name: "cgn", nat: "cgnat", nodes: [DAN] },
];
/** A peer ana's user configured by hand, that no registry knows: never to be touched. */
const USER_KEY = randomBytes(32).toString("base64");
const USER_IP = "10.200.0.250/32";

/** Every ordered pair among `nodes` (with `only`: those that involve it) is up, each on a path the lab expects for its NATs. */
async function meshed(lab: Lab, nodes: readonly string[], only?: string): Promise<void> {
  const pairs = nodes.flatMap((a) => nodes.filter((b) => b !== a && (only === undefined || a === only || b === only)).map((b) => [a, b] as const));
  const results = await measurePaths(lab, { pairs, startMs: Date.now(), timeoutMs: 30_000 });
  for (const r of results) {
    const want = accepted(expectedPath(lab.node(r.from), lab.node(r.to)));
    assert.ok(want.includes(r.path), `${r.from} -> ${r.to}: ${r.path}, expected ${want.join(" or ")} (${JSON.stringify(r)})`);
  }
}

async function peersOf(lab: Lab, host: string): Promise<Map<string, readonly string[]>> {
  return new Map((await lab.readPeers(host)).map((p) => [p.publicKey, p.allowedIps]));
}

async function recordOf(lab: Lab, host: string): Promise<string[]> {
  const text = await readFile(recordPath(dirname(controlSocketOf(lab, host)), lab.node(host).iface), "utf8");
  return (JSON.parse(text) as { added: { publicKey: string }[] }).added.map((a) => a.publicKey).sort();
}

/** `host` loses the registry: its agent stops and the registry's WireGuard no longer has it. */
async function leave(lab: Lab, agents: ReturnType<typeof wormholeAgents>, host: string): Promise<void> {
  await agents.stopNode(lab, host);
  await lab.setPeers(lab.plan.registry.name, [{ publicKey: lab.publicKey(host), remove: true }]);
}

async function untilHas(lab: Lab, host: string, peers: readonly string[]): Promise<void> {
  await pollUntil(
    `${peers.join(", ")} added on ${host}`,
    async () => {
      const have = await peersOf(lab, host);
      return peers.every((p) => have.has(lab.publicKey(p))) ? true : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 100 },
  );
}

async function untilGone(lab: Lab, from: readonly string[], host: string): Promise<void> {
  await pollUntil(
    `${host} removed on ${from.join(", ")}`,
    async () => {
      for (const f of from) if ((await peersOf(lab, f)).has(lab.publicKey(host))) return undefined;
      return true;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
}

describe("--auto-peers in the NAT lab", { skip: SKIP }, () => {
  it("nodes whose WireGuard names only the registry mesh on their best paths; a join and a leave follow; a killed agent leaves no orphan; the user's peers are never touched", async () => {
    assert.ok(existsSync(WORMHOLE_CJS), `${WORMHOLE_CJS} is missing: run \`npm run build' before the lab tests`);
    const runId = newRunId();
    await withLab({ sites: SITES, runId }, async (lab) => {
      const prefix = `10.200.0.0/${TUNNEL_PREFIX_LEN}`;
      const agents = wormholeAgents({ command: WORMHOLE_COMMAND, nodeArgs: ["--auto-peers", prefix, "--auto-peers-grace", "3s"] });
      const reg = lab.plan.registry;
      const key = (n: string): string => lab.publicKey(n);

      // Each node's WireGuard names only the registry; ana's user also has cal and a peer no registry knows.
      for (const n of [ANA, BEN, CAL, DAN]) {
        const others = [ANA, BEN, CAL, DAN].filter((o) => o !== n && !(n === ANA && o === CAL));
        await lab.setPeers(n, others.map((o) => ({ publicKey: key(o), remove: true })));
      }
      await lab.setPeers(ANA, [{ publicKey: USER_KEY, allowedIps: [USER_IP] }]);
      // dan joins later: the registry does not know it yet.
      await lab.setPeers(reg.name, [{ publicKey: key(DAN), remove: true }]);

      // cal is up first and adds ana and ben; they start next (nodes that start in the same second: see docs/how-it-works.md).
      await startAgents(lab, agents, [CAL]);
      await untilHas(lab, CAL, [ANA, BEN]);
      await agents.startNode(lab, ANA);
      await agents.startNode(lab, BEN);
      await meshed(lab, [ANA, BEN, CAL]);
      for (const [n, want] of [
        [ANA, [BEN]],
        [BEN, [ANA, CAL]],
        [CAL, [ANA, BEN]],
      ] as const) {
        assert.deepEqual(await recordOf(lab, n), want.map(key).sort(), `${n} wrote down what it added, and only that`);
      }

      // A join: the registry learns dan, dan's agent starts; everyone adds it, it adds everyone.
      await lab.setPeers(reg.name, [{ publicKey: key(DAN), allowedIps: [`${lab.node(DAN).tunnelIp}/32`] }]);
      await agents.startNode(lab, DAN);
      await meshed(lab, [ANA, BEN, CAL, DAN], DAN);

      // A leave: cal goes; after the grace time the nodes that added it remove it; ana's user's cal stays.
      await leave(lab, agents, CAL);
      await untilGone(lab, [BEN, DAN], CAL);
      assert.deepEqual((await peersOf(lab, ANA)).get(key(CAL)), [`${lab.node(CAL).tunnelIp}/32`], "ana's own peer cal is the user's: kept");

      // ana's agent is killed: its record stays; restarted, it keeps its peers, and still owns them: dan leaves, it removes dan.
      await agents.stopNode(lab, ANA, "SIGKILL");
      assert.deepEqual(await recordOf(lab, ANA), [key(BEN), key(DAN)].sort());
      await agents.startNode(lab, ANA);
      await meshed(lab, [ANA, BEN], ANA);
      await leave(lab, agents, DAN);
      await untilGone(lab, [ANA, BEN], DAN);
      assert.deepEqual(await recordOf(lab, ANA), [key(BEN)]);
      const ana = await peersOf(lab, ANA);
      assert.deepEqual(
        [...ana.keys()].sort(),
        [key(reg.name), key(BEN), key(CAL), USER_KEY].sort(),
        "ana has the registry, ben (added), and its user's cal and user peer; no orphan",
      );
      assert.deepEqual(ana.get(USER_KEY), [USER_IP], "the user's peer is untouched");
      assert.deepEqual(ana.get(key(reg.name)), [`${reg.tunnelIp}/32`], "the registry is there once, as configured");
      await agents.stopAll(lab);
    });
    await assertNoLeftovers(runId);
  });
});
