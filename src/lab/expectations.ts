/**
 * What today's product should achieve for each pair of NAT behaviours, with
 * the seed's command line and no other flag (relaying is on by default).
 *
 * A node learns the endpoints the registry's WireGuard observed and the LAN
 * candidates of peers behind the same public address, and relays through the
 * registry (end to end encrypted) what it cannot punch within a second.
 * There is no port prediction, so a symmetric NAT against anything but a
 * public host is relayed. No pair is ever down. Each pair that is not
 * always direct carries the reason; when a capability lands, the matrix test
 * fails on that pair and the table is updated.
 * Pure; table-tested in test/lab/units.test.ts.
 */
import type { NatBehaviour } from "./nat.js";
import type { PathKind } from "./path.js";
import { pathRank } from "./path.js";

export interface Expectation {
  /** The expected path. */
  readonly path: PathKind;
  /** Other outcomes that are also correct today (a race between the two peers' first packets). */
  readonly alsoAccepted?: readonly PathKind[];
  /** Why this pair is not (always) direct today. */
  readonly gap?: string;
}

export interface PairEnds {
  readonly nat: NatBehaviour;
  readonly site: string;
}

export const GAPS = {
  symmetric:
    "symmetric NAT (APDM): the registry-observed port is only valid toward the registry; relayed (no port prediction)",
  bareBoth:
    "bare masquerade on both sides: each peer's first packet lands on the other's router, its conntrack entry takes the mapping and masquerade moves to another port (docs/lab.md); relayed, direct tried again in step from 40 s on",
  bareRace:
    "race: direct when the bare side's first packet leaves before the peer's arrives at the bare router; otherwise the bare-masquerade clash (docs/lab.md): relayed",
} as const;

/** Expected path from `a` to `b` (symmetric in a and b). */
export function expectedPath(a: PairEnds, b: PairEnds): Expectation {
  // Same router, no hairpin: the peers find each other at the LAN candidates they reported.
  if (a.site === b.site) return { path: "lan" };
  const has = (n: NatBehaviour): boolean => a.nat === n || b.nat === n;
  // A public host accepts unsolicited packets and roams to wherever it hears from: that rescues every NAT.
  if (has("public")) return { path: "direct" };
  if (has("symmetric")) return { path: "relayed", gap: GAPS.symmetric };
  if (a.nat === "bare" && b.nat === "bare") return { path: "relayed", alsoAccepted: ["direct"], gap: GAPS.bareBoth };
  if (has("bare")) return { path: "relayed", alsoAccepted: ["direct"], gap: GAPS.bareRace };
  return { path: "direct" };
}

export function accepted(e: Expectation): PathKind[] {
  return [e.path, ...(e.alsoAccepted ?? [])];
}

export type Verdict = "as-expected" | "worse" | "better" | "different";

/** How an observed path compares with the expectation. */
export function judge(observed: PathKind, e: Expectation): Verdict {
  const ok = accepted(e);
  if (ok.includes(observed)) return "as-expected";
  const worst = Math.min(...ok.map(pathRank));
  const best = Math.max(...ok.map(pathRank));
  if (pathRank(observed) < worst) return "worse";
  if (pathRank(observed) > best) return "better";
  return "different";
}
