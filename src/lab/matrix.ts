/**
 * The NAT × NAT matrix: ONE topology with two sites of every behaviour (so
 * same-behaviour pairs are two different routers), every node peering with
 * every other, all directed pairs read off in one bounded wait. Building one
 * topology per pair would cost a build and a bounded wait per cell; here the
 * whole grid costs one of each.
 */
import type { AgentDriver } from "./agents.js";
import { wormholeAgents } from "./agents.js";
import type { Expectation, Verdict } from "./expectations.js";
import { expectedPath, judge } from "./expectations.js";
import type { Lab } from "./lab.js";
import { passThrough, withLab, type LabPassThrough } from "./lab.js";
import type { NatBehaviour } from "./nat.js";
import { NAT_BEHAVIOURS, NAT_DESCRIPTIONS } from "./nat.js";
import type { PairResult } from "./path.js";
import { measurePaths, pathLabel } from "./path.js";
import type { SiteSpec } from "./topology.js";

export interface MatrixOptions extends LabPassThrough {
  /** Behaviours to include. Default all. */
  readonly behaviours?: readonly NatBehaviour[];
  /** Default: the real wormhole agents. */
  readonly agents?: AgentDriver;
  /** Bounded wait for all pairs, from agents started. Default 30 000: the wait ends as soon as every pair is decided; the margin lets a pair that one end relayed alone heal (WireGuard re-handshakes after ~15 s without an answer). */
  readonly timeoutMs?: number;
  /** Where the grid is printed. Default: nothing is printed (it is returned). */
  readonly out?: (text: string) => void;
}

export interface PairVerdict extends PairResult {
  readonly fromNat: NatBehaviour;
  readonly toNat: NatBehaviour;
  readonly expected: Expectation;
  readonly verdict: Verdict;
}

export interface MatrixResult {
  /** No pair worse than expected. */
  readonly ok: boolean;
  /** Every pair exactly as expected (what the test asserts). */
  readonly allAsExpected: boolean;
  readonly runId: string;
  readonly pairs: readonly PairVerdict[];
  readonly grid: string;
  /** Build + agents + wait + teardown. */
  readonly elapsedMs: number;
}

const SHORT: Readonly<Record<NatBehaviour, string>> = { public: "pub", home: "home", bare: "bare", symmetric: "sym", cgnat: "cgn", samelan: "lan" };

/** Two sites per behaviour; `samelan` is one site with two nodes. */
export function matrixSites(behaviours: readonly NatBehaviour[]): SiteSpec[] {
  return behaviours.flatMap((nat): SiteSpec[] => {
    const s = SHORT[nat];
    if (nat === "samelan") return [{ name: s, nat, nodes: [`${s}1`, `${s}2`] }];
    return [1, 2].map((i) => ({ name: `${s}${i}`, nat, nodes: [`${s}${i}`] }));
  });
}

/** The two nodes that stand for a behaviour in the grid: X → Y uses X's first and Y's first; X → X first → second. */
export function representatives(nat: NatBehaviour): readonly [string, string] {
  return [`${SHORT[nat]}1`, `${SHORT[nat]}2`];
}

const MARK: Readonly<Record<Verdict, string>> = { "as-expected": "", worse: " !", better: " +", different: " ?" };

function cell(v: PairVerdict | undefined): string {
  if (!v) return "-";
  const t = v.pingMs !== null ? ` ${(v.pingMs / 1000).toFixed(1)}s` : "";
  const gap = v.expected.gap && v.verdict === "as-expected" ? (v.expected.alsoAccepted ? " ~" : " *") : "";
  return `${pathLabel(v.path, v.family)}${t}${gap}${MARK[v.verdict]}`;
}

/** Renders rows = from, columns = to, plus a legend, the known gaps and every pair off expectation. */
export function renderGrid(behaviours: readonly NatBehaviour[], pairs: readonly PairVerdict[]): string {
  const find = (a: string, b: string): PairVerdict | undefined => pairs.find((p) => p.from === a && p.to === b);
  const rows: string[][] = [["from \\ to", ...behaviours]];
  for (const x of behaviours) {
    const row: string[] = [x];
    for (const y of behaviours) {
      const [a, a2] = representatives(x);
      const [b] = representatives(y);
      row.push(cell(find(a, x === y ? a2 : b)));
    }
    rows.push(row);
  }
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd());
  lines.push(
    "",
    "cells: path (direct6, lan6: over IPv6), seconds from the later of the pair's two agents started to the first ping over the tunnel (pings every ~0.25 s).",
    "  * known gap (expected)   ~ race, either outcome expected   ! worse than expected   + better than expected   ? other",
  );
  const gaps = new Map<string, string[]>();
  for (const p of pairs) {
    if (!p.expected.gap) continue;
    const key = p.expected.gap;
    const label = [p.fromNat, p.toNat].sort().join("-");
    const list = gaps.get(key) ?? [];
    if (!list.includes(label)) list.push(label);
    gaps.set(key, list);
  }
  if (gaps.size) {
    lines.push("", "known gaps:");
    for (const [why, which] of gaps) lines.push(`  ${which.join(", ")}: ${why}`);
  }
  const off = pairs.filter((p) => p.verdict !== "as-expected");
  if (off.length) {
    lines.push("", `${off.length} pair(s) off expectation:`);
    for (const p of off) {
      const ep = p.endpoint ? `${p.endpoint.ip}:${p.endpoint.port}` : "no endpoint";
      lines.push(`  ${p.from} -> ${p.to}: ${p.path} (${p.verdict}; expected ${[p.expected.path, ...(p.expected.alsoAccepted ?? [])].join("|")}), ${ep}${p.note ? `, ${p.note}` : ""}`);
    }
  }
  const races = pairs.filter((p) => p.expected.alsoAccepted && p.from < p.to);
  if (races.length) {
    lines.push("", `races: ${races.map((p) => `${p.from}->${p.to} ${p.path}`).join(", ")}`);
  }
  return lines.join("\n");
}

export function legend(behaviours: readonly NatBehaviour[]): string {
  return behaviours.map((b) => `  ${b.padEnd(9)} ${NAT_DESCRIPTIONS[b]}`).join("\n");
}

/** Measures every directed pair of an already built lab whose agents started at `startMs`. */
export async function measureMatrix(
  lab: Lab,
  startMs: number,
  timeoutMs: number,
  log?: (line: string) => void,
  startedAt?: ReadonlyMap<string, number>,
): Promise<PairVerdict[]> {
  const nodes = lab.plan.nodes;
  const pairs = nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => [a.name, b.name] as const));
  const results = await measurePaths(lab, {
    pairs,
    startMs,
    timeoutMs,
    relayIps: [lab.plan.registry.ip],
    ...(startedAt ? { pairStartMs: (a: string, b: string) => Math.max(startedAt.get(a) ?? startMs, startedAt.get(b) ?? startMs) } : {}),
    ...(log ? { onResult: (r: PairResult) => log(`pair ${r.from} -> ${r.to}: ${r.path}${r.pingMs !== null ? ` after ${r.pingMs} ms` : ""}`) } : {}),
  });
  return results.map((r) => {
    const a = lab.node(r.from);
    const b = lab.node(r.to);
    const expected = expectedPath(a, b);
    return { ...r, fromNat: a.nat, toNat: b.nat, expected, verdict: judge(r.path, expected) };
  });
}

export async function runMatrix(options: MatrixOptions = {}): Promise<MatrixResult> {
  const t0 = Date.now();
  const behaviours = options.behaviours ?? NAT_BEHAVIOURS;
  const agents = options.agents ?? wormholeAgents();
  const timeoutMs = options.timeoutMs ?? 30_000;
  let runId = "";
  const pairs = await withLab(
    {
      sites: matrixSites(behaviours),
      ...passThrough(options),
    },
    async (lab) => {
      runId = lab.runId;
      options.out?.(`NAT matrix, lab run ${lab.runId}: ${lab.plan.nodes.length} nodes, ${agents.name} agents, waiting up to ${timeoutMs / 1000}s\n`);
      const start = Date.now();
      const startedAt = new Map<string, number>();
      await agents.startRegistry(lab);
      for (const n of lab.plan.nodes) {
        startedAt.set(n.name, Date.now());
        await agents.startNode(lab, n.name);
      }
      const result = await measureMatrix(lab, start, timeoutMs, options.log, startedAt);
      await agents.stopAll(lab);
      return result;
    },
  );
  const grid = renderGrid(behaviours, pairs);
  const elapsedMs = Date.now() - t0;
  options.out?.(`${grid}\n\n${legend(behaviours)}\n\nmatrix took ${(elapsedMs / 1000).toFixed(1)}s\n`);
  return {
    ok: pairs.every((p) => p.verdict !== "worse"),
    allAsExpected: pairs.every((p) => p.verdict === "as-expected"),
    runId,
    pairs,
    grid,
    elapsedMs,
  };
}
