/** How one peer is reached, as nodes report it and status shows it. */
export const PATH_KINDS = ["direct", "lan", "relayed", "down"] as const;
export type PathKind = (typeof PATH_KINDS)[number];

import type { Endpoint } from "../wg/types.js";

export interface PathState {
  readonly peerPublicKey: string;
  readonly kind: PathKind;
  /** Since when (epoch ms) the path has been of this kind. */
  readonly sinceMs: number;
  readonly endpoint: Endpoint | null;
}

const WIRE = {
  direct: "PATH_KIND_DIRECT",
  lan: "PATH_KIND_LAN",
  relayed: "PATH_KIND_RELAYED",
  down: "PATH_KIND_DOWN",
} as const;
type WireKind = (typeof WIRE)[PathKind];

export function pathKindToWire(kind: PathKind): WireKind {
  return WIRE[kind];
}

/** The kind named on the wire, or null for an unknown or unspecified one. */
export function pathKindFromWire(wire: string): PathKind | null {
  for (const k of PATH_KINDS) if (WIRE[k] === wire) return k;
  return null;
}
