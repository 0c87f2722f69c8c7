/**
 * The registry's status page: one server-rendered HTML document, no script,
 * refreshed by the browser every few seconds. Pure: state in, text out.
 * Every value that reaches the page goes through {@link escapeHtml}.
 */
import { createHash } from "node:crypto";
import { peerLabel, type PeerNames } from "../config/names.js";
import { PATH_KINDS, type PathState } from "../util/path.js";
import type { Endpoint } from "../wg/types.js";
import type { RegistryPeer } from "./view.js";

export interface StatusPageInput {
  readonly iface: string;
  /** The interface's public key; null before the first read. */
  readonly publicKey: string | null;
  readonly peers: readonly RegistryPeer[];
  readonly names: PeerNames;
  readonly nowMs: number;
  /** Why the interface cannot be read now; null when the last read worked. */
  readonly error: string | null;
  readonly watchers: number;
  /** The relay's figures; null or absent: the registry does not relay. */
  readonly relay?: { readonly activePairs: number; readonly bytes: number } | null;
  /** Per node (public key): the paths it last reported to its peers. Absent: it reported nothing. */
  readonly pathStates?: ReadonlyMap<string, readonly PathState[]>;
  /** Seconds between the browser's reloads. Default 5. */
  readonly refreshSeconds?: number;
  /** Most rows shown; the rest are counted. Default 1000. */
  readonly maxRows?: number;
}

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] as string);
}

/** "just now", "42 s ago", "3 min 5 s ago", "2 h 10 min ago", "3 d 4 h ago"; "never" for 0. */
export function formatAge(thenMs: number, nowMs: number): string {
  if (thenMs <= 0) return "never";
  const s = Math.max(0, Math.floor((nowMs - thenMs) / 1000));
  if (s < 1) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min ago`;
  return `${Math.floor(h / 24)} d ${h % 24} h ago`;
}

export function formatEndpoint(endpoint: Endpoint | null): string | null {
  if (!endpoint) return null;
  return endpoint.ip.includes(":") ? `[${endpoint.ip}]:${endpoint.port}` : `${endpoint.ip}:${endpoint.port}`;
}

const CSS = `
:root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --ok: #15803d; --bad: #b91c1c; --stripe: rgba(127,127,127,.07); }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; padding: 24px 32px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 24px; margin-bottom: 16px; }
h1 { font-size: 20px; margin: 0; }
.facts { color: var(--muted); display: flex; flex-wrap: wrap; gap: 4px 16px; }
.state { font-weight: 600; padding: 2px 10px; border-radius: 999px; border: 1px solid currentColor; }
.state.ok { color: var(--ok); } .state.bad { color: var(--bad); }
.error { color: var(--bad); margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 12px; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
tbody tr:nth-child(even) { background: var(--stripe); }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.muted { color: var(--muted); }
.k-direct, .k-lan { color: var(--ok); } .k-relayed { color: #b45309; } .k-down { color: var(--bad); }
footer { color: var(--muted); margin-top: 16px; font-size: 12px; }
`.trim();

const CSS_HASH = createHash("sha256").update(CSS).digest("base64");

/**
 * The Content-Security-Policy the page needs: nothing but its own inline
 * style (by hash), no script, no frames, no forms.
 */
export const STATUS_PAGE_CSP = `default-src 'none'; style-src 'sha256-${CSS_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** Named peers first, by name; then the others by key. */
function byLabel(names: PeerNames): (a: string, b: string) => number {
  return (a, b) => {
    const na = names.get(a);
    const nb = names.get(b);
    if (na !== undefined && nb !== undefined) return na.localeCompare(nb);
    if (na !== undefined) return -1;
    if (nb !== undefined) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  };
}

function sortPeers(peers: readonly RegistryPeer[], names: PeerNames): RegistryPeer[] {
  const order = byLabel(names);
  return [...peers].sort((a, b) => order(a.publicKey, b.publicKey));
}

/** Paths listed one by one up to this many; beyond, counted by kind. */
const LISTED_PATHS = 4;
/** Paths named in the cell's tooltip. */
const TITLE_PATHS = 50;

function pathCell(paths: readonly PathState[] | undefined, names: PeerNames): string {
  if (!paths || paths.length === 0) return `<td class="path muted">—</td>`;
  const order = byLabel(names);
  const sorted = [...paths].sort((a, b) => order(a.peerPublicKey, b.peerPublicKey));
  const title = sorted
    .slice(0, TITLE_PATHS)
    .map((p) => `${peerLabel(names, p.peerPublicKey)}: ${p.kind}`)
    .concat(sorted.length > TITLE_PATHS ? [`and ${sorted.length - TITLE_PATHS} more`] : [])
    .join("\n");
  let shown: string;
  if (sorted.length <= LISTED_PATHS) {
    shown = sorted
      .map((p) => `${escapeHtml(peerLabel(names, p.peerPublicKey))} <span class="k-${escapeHtml(p.kind)}">${escapeHtml(p.kind)}</span>`)
      .join(", ");
  } else {
    shown = PATH_KINDS.map((kind) => [kind, sorted.filter((p) => p.kind === kind).length] as const)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `<span class="k-${kind}">${n} ${kind}</span>`)
      .join(" · ");
  }
  return `<td class="path" title="${escapeHtml(title)}">${shown}</td>`;
}

function row(p: RegistryPeer, input: StatusPageInput): string {
  const named = input.names.has(p.publicKey);
  const label = peerLabel(input.names, p.publicKey);
  const endpoint = formatEndpoint(p.endpoint);
  const cells = [
    `<td class="peer${named ? "" : " mono"}" title="${escapeHtml(p.publicKey)}">${escapeHtml(label)}</td>`,
    endpoint ? `<td class="endpoint mono">${escapeHtml(endpoint)}</td>` : `<td class="endpoint muted">—</td>`,
    `<td class="handshake">${escapeHtml(formatAge(p.lastHandshakeMs, input.nowMs))}</td>`,
    `<td class="allowed mono">${p.allowedIps.length ? escapeHtml(p.allowedIps.join(", ")) : `<span class="muted">—</span>`}</td>`,
    pathCell(input.pathStates?.get(p.publicKey), input.names),
  ];
  return `<tr data-key="${escapeHtml(p.publicKey)}">${cells.join("")}</tr>`;
}

/** 1536 → "1.5 KB" (powers of 1000, one decimal). */
export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function renderStatusPage(input: StatusPageInput): string {
  const refresh = input.refreshSeconds ?? 5;
  const maxRows = input.maxRows ?? 1000;
  const peers = sortPeers(input.peers, input.names);
  const shown = peers.slice(0, maxRows);
  const ok = input.error === null && input.publicKey !== null;
  const updated = new Date(input.nowMs).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  const facts = [
    `interface <code>${escapeHtml(input.iface)}</code>`,
    input.publicKey ? `key <code title="${escapeHtml(input.publicKey)}">${escapeHtml(peerLabel(new Map(), input.publicKey))}</code>` : "",
    `${peers.length} ${peers.length === 1 ? "peer" : "peers"}`,
    `${input.watchers} ${input.watchers === 1 ? "node" : "nodes"} watching`,
    input.relay
      ? `<span id="relay">relaying ${input.relay.activePairs} ${input.relay.activePairs === 1 ? "pair" : "pairs"}, ${formatBytes(input.relay.bytes)} so far (end to end encrypted)</span>`
      : `<span id="relay">not relaying</span>`,
    `updated ${escapeHtml(updated)}`,
  ].filter(Boolean);
  const body =
    shown.length === 0
      ? `<tr><td colspan="5" class="muted">No peers on this interface yet.</td></tr>`
      : shown.map((p) => row(p, input)).join("\n");
  const more =
    peers.length > shown.length ? `<p class="muted" id="truncated">Showing ${shown.length} of ${peers.length} peers.</p>` : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${refresh}">
<title>wormhole registry · ${escapeHtml(input.iface)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>wormhole registry</h1>
<span class="state ${ok ? "ok" : "bad"}" id="state">${ok ? "interface readable" : "interface unreadable"}</span>
<div class="facts">${facts.map((f) => `<span>${f}</span>`).join("")}</div>
</header>
${input.error !== null ? `<p class="error" id="error">Cannot read the WireGuard interface: ${escapeHtml(input.error)}. The table shows the last good read.</p>` : ""}
<table id="peers">
<thead><tr><th>Peer</th><th>Endpoint</th><th>Last handshake</th><th>Allowed IPs</th><th>Path (reported)</th></tr></thead>
<tbody>
${body}
</tbody>
</table>
${more}
<footer>Reloads every ${refresh} s. Endpoints and handshakes are what this registry's WireGuard sees. The path column is what each node last reported about its own peers (only nodes that reach the registry through the tunnel report); — until it has.</footer>
</body>
</html>
`;
}
