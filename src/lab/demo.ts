/**
 * `wormhole lab`: a registry and two nodes (alice, bob) behind two sites,
 * real agents, and a live table refreshed every second until Ctrl-C (or
 * `durationMs`); then everything is torn down.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { WgPeer } from "../wg/types.js";
import type { AgentDriver } from "./agents.js";
import { startAgents, wormholeAgents } from "./agents.js";
import { expectedPath } from "./expectations.js";
import type { Lab } from "./lab.js";
import { LabClosedError, passThrough, withLab, type LabPassThrough } from "./lab.js";
import type { NatBehaviour } from "./nat.js";
import { NAT_DESCRIPTIONS } from "./nat.js";
import type { PathKind } from "./path.js";
import { classifyPath } from "./path.js";
import { ALICE, BOB, pairSites } from "./scenarios.js";
import { formatEndpoint } from "../wg/endpoint.js";

export interface DemoOptions extends LabPassThrough {
  /** Behaviours of alice's and bob's sites. Default ["home", "home"]. */
  readonly nat?: readonly [NatBehaviour, NatBehaviour];
  /** Stop after this long (from agents started). Default: run until SIGINT/SIGTERM. */
  readonly durationMs?: number;
  /** Table refresh period. Default 1 000. */
  readonly refreshMs?: number;
  /** Default: the real wormhole agents. */
  readonly agents?: AgentDriver;
  /** Where the table goes. Default process.stdout. */
  readonly out?: (text: string) => void;
  /** Redraw in place (ANSI). Default: whether stdout is a terminal. */
  readonly redraw?: boolean;
}

export interface DemoRow {
  readonly from: string;
  readonly to: string;
  readonly endpoint: string;
  readonly path: PathKind;
  /** Seconds since the last handshake, null when never. */
  readonly handshakeAgeSec: number | null;
  readonly rttMs: number | null;
}

export interface DemoResult {
  readonly runId: string;
  /** ms from agents started to the first successful ping, per direction ("alice->bob"); null when none. */
  readonly firstPingMs: Readonly<Record<string, number | null>>;
  readonly rows: readonly DemoRow[];
  /** The lab was torn down by a signal. */
  readonly interrupted: boolean;
}

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
}

export function renderDemoTable(rows: readonly DemoRow[]): string {
  const head = ["peer", "endpoint", "path", "last handshake", "rtt"];
  const body = rows.map((r) => [
    `${r.from} -> ${r.to}`,
    r.endpoint,
    r.path,
    r.handshakeAgeSec === null ? "never" : `${r.handshakeAgeSec}s ago`,
    r.rttMs === null ? "-" : `${r.rttMs.toFixed(2)} ms`,
  ]);
  const widths = head.map((_, i) => Math.max(head[i]?.length ?? 0, ...body.map((b) => b[i]?.length ?? 0)));
  return [pad(head, widths), ...body.map((b) => pad(b, widths))].join("\n");
}

async function sample(lab: Lab, from: string, to: string): Promise<DemoRow> {
  const [peers, ping] = await Promise.all([lab.readPeers(from), lab.ping(from, to)]);
  const peer: WgPeer | undefined = peers.find((p) => p.publicKey === lab.publicKey(to));
  const now = Date.now();
  return {
    from,
    to,
    endpoint: peer?.endpoint ? formatEndpoint(peer.endpoint) : "(none)",
    path: classifyPath({ peer, nowMs: now, pingOk: ping.ok, relayIps: [lab.plan.registry.ip] }),
    handshakeAgeSec: peer && peer.lastHandshakeMs > 0 ? Math.max(0, Math.round((now - peer.lastHandshakeMs) / 1000)) : null,
    rttMs: ping.rttMs,
  };
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const [natA, natB] = options.nat ?? ["home", "home"];
  const out = options.out ?? ((t: string) => void process.stdout.write(t));
  const redraw = options.redraw ?? process.stdout.isTTY === true;
  const refreshMs = options.refreshMs ?? 1_000;
  const agents = options.agents ?? wormholeAgents();
  const firstPingMs: Record<string, number | null> = { [`${ALICE}->${BOB}`]: null, [`${BOB}->${ALICE}`]: null };
  let rows: DemoRow[] = [];
  let runId = "";
  let interrupted = false;
  try {
    await withLab(
      {
        sites: pairSites(natA, natB),
        ...passThrough(options),
      },
      async (lab) => {
        runId = lab.runId;
        const a = lab.node(ALICE);
        const b = lab.node(BOB);
        const expected = expectedPath(a, b);
        const header = [
          `wormhole lab ${lab.runId}: ${ALICE} (${natA}, ${a.ip}) <-> ${BOB} (${natB}, ${b.ip}), registry ${lab.plan.registry.ip}:${lab.plan.registry.grpcPort}, ${agents.name} agents`,
          `  ${natA}: ${NAT_DESCRIPTIONS[natA]}`,
          ...(natB !== natA ? [`  ${natB}: ${NAT_DESCRIPTIONS[natB]}`] : []),
          `  expected today: ${expected.path}${expected.gap ? ` (${expected.gap})` : ""}`,
        ].join("\n");
        const start = Date.now();
        await startAgents(lab, agents);
        for (;;) {
          if (lab.closed) {
            interrupted = true;
            return;
          }
          const tick = Date.now();
          try {
            rows = await Promise.all([sample(lab, ALICE, BOB), sample(lab, BOB, ALICE)]);
          } catch (err) {
            if (!lab.closed) throw err;
            interrupted = true;
            return;
          }
          for (const r of rows) {
            const k = `${r.from}->${r.to}`;
            if (r.path !== "down" && firstPingMs[k] === null) firstPingMs[k] = Date.now() - start;
          }
          const elapsed = ((Date.now() - start) / 1000).toFixed(0);
          const firsts = Object.entries(firstPingMs)
            .map(([k, v]) => `${k} ${v === null ? "not yet" : `${(v / 1000).toFixed(1)}s`}`)
            .join(", ");
          const stop = options.durationMs === undefined ? "Ctrl-C to stop" : `stops after ${(options.durationMs / 1000).toFixed(0)}s`;
          const text = `${header}\n\n${renderDemoTable(rows)}\n\nrunning ${elapsed}s (${stop}); first ping: ${firsts}\n`;
          out(redraw ? `\x1b[H\x1b[J${text}` : `${text}\n`);
          if (options.durationMs !== undefined && Date.now() - start >= options.durationMs) break;
          await delay(Math.max(0, refreshMs - (Date.now() - tick)));
        }
        await agents.stopAll(lab);
      },
    );
  } catch (err) {
    if (err instanceof LabClosedError) return { runId, firstPingMs, rows, interrupted: true };
    throw err;
  }
  return { runId, firstPingMs, rows, interrupted };
}
