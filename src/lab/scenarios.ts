/**
 * Scenarios beyond the matrix, each on its own small lab (registry + alice +
 * bob): a router that loses its mappings, a registry that crashes and comes
 * back, node agents that start before the registry. Each returns what it
 * measured and throws (with the lab's process logs) when a phase does not
 * happen within its bound.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Endpoint } from "../wg/types.js";
import type { AgentDriver } from "./agents.js";
import { startAgents, wormholeAgents } from "./agents.js";
import type { Lab } from "./lab.js";
import { passThrough, withLab, type LabPassThrough } from "./lab.js";
import type { NatBehaviour } from "./nat.js";
import type { PairResult } from "./path.js";
import { measurePaths } from "./path.js";
import type { SiteSpec } from "./topology.js";
import { pollUntil } from "./wait.js";

export const ALICE = "alice";
export const BOB = "bob";

/** Two nodes at two sites of the given behaviours; `samelan` twice puts both behind one router. */
export function pairSites(a: NatBehaviour, b: NatBehaviour): SiteSpec[] {
  if (a === "samelan" && b === "samelan") return [{ name: "lan", nat: "samelan", nodes: [ALICE, BOB] }];
  return [
    { name: "sitea", nat: a, nodes: [ALICE] },
    { name: "siteb", nat: b, nodes: [BOB] },
  ];
}

export interface ScenarioOptions extends LabPassThrough {
  /** NAT behaviours of alice's and bob's sites. Default ["home", "home"]. */
  readonly nat?: readonly [NatBehaviour, NatBehaviour];
  /** Default: the real wormhole agents. */
  readonly agents?: AgentDriver;
  /** Bound for alice and bob to connect. Default 20 000. */
  readonly connectTimeoutMs?: number;
  /** Bound for recovering after a change (rebinding). Default 90 000: bob's keepalive to the registry is 25 s. */
  readonly recoverTimeoutMs?: number;
}

export function labOptions(o: ScenarioOptions): Parameters<typeof withLab>[0] {
  const [a, b] = o.nat ?? ["home", "home"];
  return {
    sites: pairSites(a, b),
    ...passThrough(o),
  };
}

/** Waits for alice ↔ bob to work both ways (direct or lan); throws naming the path otherwise. */
export async function waitConnected(lab: Lab, startMs: number, timeoutMs: number): Promise<PairResult[]> {
  const results = await measurePaths(lab, { pairs: [[ALICE, BOB], [BOB, ALICE]], startMs, timeoutMs, relayIps: [lab.plan.registry.ip] });
  const bad = results.filter((r) => r.path !== "direct" && r.path !== "lan");
  if (bad.length) {
    throw new Error(`not connected within ${timeoutMs / 1000}s: ${bad.map((r) => `${r.from} -> ${r.to} ${r.path}${r.note ? ` (${r.note})` : ""}`).join("; ")}`);
  }
  return results;
}

async function endpointOf(lab: Lab, from: string, to: string): Promise<Endpoint | null> {
  const peers = await lab.readPeers(from);
  return peers.find((p) => p.publicKey === lab.publicKey(to))?.endpoint ?? null;
}

export function msOf(results: readonly PairResult[]): number {
  return Math.max(...results.map((r) => r.pingMs ?? Infinity));
}

export const REBIND_PORTS: readonly [number, number] = [20000, 29999];

/**
 * Bob's NAT loses all its mappings and comes back on other ports; waits until
 * alice → bob pings again with alice pointing at bob's new port.
 * Returns ms from the rebinding to recovery.
 */
export async function rebindAndRecover(lab: Lab, recoverTimeoutMs: number): Promise<{ before: Endpoint; after: Endpoint; recoveryMs: number }> {
  const before = await endpointOf(lab, ALICE, BOB);
  if (!before) throw new Error("alice has no endpoint for bob before the rebinding");
  const bobSite = lab.node(BOB).site;
  await lab.rebind(bobSite, REBIND_PORTS);
  const t = Date.now();
  const inRange = (e: Endpoint | null): e is Endpoint => e !== null && e.port >= REBIND_PORTS[0] && e.port <= REBIND_PORTS[1];
  let seen: Endpoint | null = before;
  let after: Endpoint;
  try {
    after = await pollUntil(
      `alice -> bob and back to work again with bob at a port in ${REBIND_PORTS.join("-")}`,
      async () => {
        seen = await endpointOf(lab, ALICE, BOB);
        if (!inRange(seen)) return undefined;
        const [ab, ba] = await Promise.all([lab.ping(ALICE, BOB), lab.ping(BOB, ALICE)]);
        return ab.ok && ba.ok ? seen : undefined;
      },
      { timeoutMs: recoverTimeoutMs, intervalMs: 250, check: () => lab.checkOpen() },
    );
  } catch (err) {
    const last = seen as Endpoint | null;
    throw new Error(`${(err as Error).message}; alice's endpoint for bob was ${last ? `${last.ip}:${last.port}` : "none"} (before: ${before.ip}:${before.port})`, { cause: err });
  }
  return { before, after, recoveryMs: Date.now() - t };
}

export interface RebindResult {
  readonly connectMs: number;
  readonly before: Endpoint;
  readonly after: Endpoint;
  readonly recoveryMs: number;
}

/** Bob's router flushes its conntrack table and masquerades to 20000-29999 from then on. */
export async function runRebindScenario(options: ScenarioOptions = {}): Promise<RebindResult> {
  const agents = options.agents ?? wormholeAgents();
  return withLab(labOptions(options), async (lab) => {
    const start = Date.now();
    await startAgents(lab, agents);
    const connected = await waitConnected(lab, start, options.connectTimeoutMs ?? 20_000);
    const r = await rebindAndRecover(lab, options.recoverTimeoutMs ?? 90_000);
    await agents.stopAll(lab);
    return { connectMs: msOf(connected), ...r };
  });
}

export interface RegistryRestartResult {
  readonly connectMs: number;
  /** alice → bob pinged while the registry was down (the data plane does not need it). */
  readonly pingWhileDown: boolean;
  /** After the restart, bob's router rebinds: ms until alice follows (proves the agents reconnected). */
  readonly recoveryMs: number;
}

/** The registry agent is killed (SIGKILL), the tunnel keeps working, the registry restarts, and the agents use it again. */
export async function runRegistryRestartScenario(options: ScenarioOptions = {}): Promise<RegistryRestartResult> {
  const agents = options.agents ?? wormholeAgents();
  return withLab(labOptions(options), async (lab) => {
    const start = Date.now();
    await startAgents(lab, agents);
    const connected = await waitConnected(lab, start, options.connectTimeoutMs ?? 20_000);
    await agents.stopRegistry(lab, "SIGKILL");
    const pingWhileDown = (await lab.ping(ALICE, BOB)).ok;
    await agents.startRegistry(lab);
    const r = await rebindAndRecover(lab, options.recoverTimeoutMs ?? 90_000);
    await agents.stopAll(lab);
    return { connectMs: msOf(connected), pingWhileDown, recoveryMs: r.recoveryMs };
  });
}

export interface NodeFirstResult {
  /** Node agents still running when the registry came up. */
  readonly nodesSurvived: boolean;
  /** ms from the registry's start to alice ↔ bob working. */
  readonly connectMs: number;
}

/**
 * Node agents start `headStartMs` (default 3 000) before the registry, so they
 * meet a registry that is not there; then it starts and they must connect.
 */
export async function runNodeFirstScenario(options: ScenarioOptions & { headStartMs?: number } = {}): Promise<NodeFirstResult> {
  const agents = options.agents ?? wormholeAgents();
  return withLab(labOptions(options), async (lab) => {
    for (const n of [ALICE, BOB]) await agents.startNode(lab, n);
    // The head start is the scenario itself (agents retrying against nothing), not a wait for a condition.
    await delay(options.headStartMs ?? 3_000);
    const nodeProcs = lab.processes().filter((p) => p.name.startsWith("wormhole node"));
    const nodesSurvived = nodeProcs.every((p) => p.exitStatus() === null);
    const start = Date.now();
    await agents.startRegistry(lab);
    const connected = await waitConnected(lab, start, options.connectTimeoutMs ?? 20_000);
    await agents.stopAll(lab);
    return { nodesSurvived, connectMs: msOf(connected) };
  });
}
