/**
 * What `wormhole status` shows: one row per peer. Pure: built from a
 * WireGuard device and the agent's path states, rendered as a table or JSON.
 */
import { peerLabel, type PeerNames } from "../config/names.js";
import type { PathKind, PathState } from "../util/path.js";
import { formatEndpoint } from "../wg/endpoint.js";
import type { WgDevice } from "../wg/types.js";
import { pathOf } from "./decide.js";

export interface PeerStatus {
  readonly publicKey: string;
  readonly name: string | null;
  readonly endpoint: string | null;
  readonly path: PathKind;
  /** Epoch ms since when the path has been of this kind; null when only WireGuard was read. */
  readonly sinceMs: number | null;
  readonly lastHandshakeMs: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  /** Round trip through the tunnel when `wormhole status` asked (a ping to its tunnel address), or null. */
  readonly rttMs: number | null;
  /** The registry itself. */
  readonly registry: boolean;
}

export interface InterfaceStatus {
  readonly iface: string;
  readonly publicKey: string;
  readonly peers: readonly PeerStatus[];
}

/** One registry as the agent sees it. */
export interface RegistryStatus {
  /** Its address as given. */
  readonly name: string;
  /** Its watch: connected, not yet, or retrying. */
  readonly health: "connecting" | "connected" | "unreachable";
  /** Its WireGuard key (null: not proven yet). */
  readonly publicKey: string | null;
  /** It answers our hellos through the tunnel, and relays for us. */
  readonly answering: boolean;
  readonly relays: boolean;
  /** When its view last arrived (epoch ms), or null. */
  readonly lastViewMs: number | null;
}

export interface NodeStatus {
  /** "agent": asked the running agent; "wireguard": no agent answered, read WireGuard directly. */
  readonly source: "agent" | "wireguard";
  readonly atMs: number;
  /** The registries the agent watches (absent when WireGuard was read directly). */
  readonly registries?: readonly RegistryStatus[];
  readonly interfaces: readonly InterfaceStatus[];
}

export function interfaceStatus(
  device: WgDevice,
  paths: readonly PathState[] | null,
  registryKeys: ReadonlySet<string>,
  names: PeerNames,
  nowMs: number,
  rtts: ReadonlyMap<string, number> = new Map(),
): InterfaceStatus {
  const byKey = new Map((paths ?? []).map((p) => [p.peerPublicKey, p]));
  return {
    iface: device.name,
    publicKey: device.publicKey,
    peers: device.peers.map((p) => {
      const known = byKey.get(p.publicKey);
      return {
        publicKey: p.publicKey,
        name: names.get(p.publicKey) ?? null,
        endpoint: p.endpoint ? formatEndpoint(p.endpoint) : null,
        path: known?.kind ?? pathOf(p, [], nowMs),
        sinceMs: known?.sinceMs ?? null,
        lastHandshakeMs: p.lastHandshakeMs,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
        rttMs: rtts.get(p.publicKey) ?? null,
        registry: registryKeys.has(p.publicKey),
      };
    }),
  };
}

function ago(ms: number, nowMs: number): string {
  if (ms <= 0) return "never";
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Control characters in a name would let a peer's name rewrite the terminal. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

export function renderStatus(status: NodeStatus, names: PeerNames): string {
  const lines: string[] = [];
  if (status.source === "wireguard") lines.push("no agent answered: read from WireGuard (paths are direct or down only)", "");
  for (const r of status.registries ?? []) {
    const relay = r.answering ? (r.relays ? "answers hellos, relays" : "answers hellos") : "no answer to hellos";
    const view = r.lastViewMs === null ? "no view yet" : `last view ${ago(r.lastViewMs, status.atMs)}`;
    lines.push(`registry ${printable(r.name)}${r.publicKey ? ` (${r.publicKey.slice(0, 8)}…)` : ""}: ${r.health}, ${relay}, ${view}`);
  }
  if ((status.registries ?? []).length > 0) lines.push("");
  for (const i of status.interfaces) {
    lines.push(`interface ${i.iface} (${i.publicKey.slice(0, 8)}…)`);
    const rows = [["peer", "endpoint", "path", "since", "handshake", "rx", "tx", "rtt"]];
    for (const p of i.peers) {
      rows.push([
        printable(peerLabel(names, p.publicKey)) + (p.registry ? " (registry)" : ""),
        p.endpoint ?? "(none)",
        p.registry ? "-" : p.path,
        p.sinceMs === null ? "-" : ago(p.sinceMs, status.atMs),
        ago(p.lastHandshakeMs, status.atMs),
        bytes(p.rxBytes),
        bytes(p.txBytes),
        p.rttMs === null ? "-" : `${p.rttMs.toFixed(1)} ms`,
      ]);
    }
    const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
    for (const r of rows) lines.push(r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join("  ").trimEnd());
    lines.push("");
  }
  return lines.join("\n");
}

/** `--json`: each peer keyed by its public key, the path a lowercase word. */
export function statusJson(status: NodeStatus): unknown {
  return {
    source: status.source,
    at: new Date(status.atMs).toISOString(),
    ...(status.registries
      ? {
          registries: status.registries.map((r) => ({
            ...r,
            lastViewMs: undefined,
            lastView: r.lastViewMs === null ? null : new Date(r.lastViewMs).toISOString(),
          })),
        }
      : {}),
    interfaces: Object.fromEntries(
      status.interfaces.map((i) => [
        i.iface,
        {
          publicKey: i.publicKey,
          peers: Object.fromEntries(
            i.peers.map((p) => [
              p.publicKey,
              {
                name: p.name,
                endpoint: p.endpoint,
                path: p.registry ? "registry" : p.path,
                since: p.sinceMs === null ? null : new Date(p.sinceMs).toISOString(),
                lastHandshake: p.lastHandshakeMs > 0 ? new Date(p.lastHandshakeMs).toISOString() : null,
                rxBytes: p.rxBytes,
                txBytes: p.txBytes,
                rttMs: p.rttMs,
              },
            ]),
          ),
        },
      ]),
    ),
  };
}
