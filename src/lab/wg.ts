/**
 * The lab's own WireGuard plumbing: keys, configuring a wireguard-go interface,
 * reading its peers. Everything goes through the Runner, inside a namespace.
 * (src/wg/ is the product's WireGuard access; the lab builds WireGuard the way a
 * user would, with `wg`.)
 *
 * Private keys never appear in argv, logs or errors: they live in a {@link Secret}
 * and reach `wg` on standard input.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { inspect } from "node:util";
import type { Runner } from "../util/runner.js";
import type { Endpoint, WgPeer } from "../wg/types.js";

/** A value that prints as `[secret]` however it is logged. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return "[secret]";
  }
  toJSON(): string {
    return "[secret]";
  }
  [inspect.custom](): string {
    return "[secret]";
  }
}

export interface KeyPair {
  readonly privateKey: Secret;
  readonly publicKey: string;
}

const KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export async function generateKeyPair(run: Runner): Promise<KeyPair> {
  const priv = (await run(["wg", "genkey"])).stdout.trim();
  if (!KEY.test(priv)) throw new Error("`wg genkey` printed something that is not a key");
  const privateKey = new Secret(priv);
  const publicKey = (await run(["wg", "pubkey"], { input: `${priv}\n` })).stdout.trim();
  if (!KEY.test(publicKey)) throw new Error(`\`wg pubkey\` printed something that is not a key: \`${publicKey.slice(0, 60)}'`);
  return { privateKey, publicKey };
}

/** argv prefix that runs a command inside a network namespace. */
export function inNs(ns: string, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}

/**
 * Sets the interface's private key and listen port.
 *
 * `wg set IFACE private-key /dev/stdin` cannot work through the Runner: Node's
 * stdio "pipes" are Unix sockets, and `wg` fopen()s the path, which fails on a
 * socket (ENXIO). So the key goes through a file instead: created 0600 with
 * O_EXCL in `keyDir` (RAM-backed /dev/shm when available), read by `wg`, and
 * unlinked at once. It never appears in argv or a log.
 */
export async function setPrivateKey(run: Runner, ns: string, iface: string, key: Secret, listenPort: number, keyDir: string): Promise<void> {
  const file = join(keyDir, `${iface}.${randomBytes(6).toString("hex")}.key`);
  await writeFile(file, `${key.reveal()}\n`, { mode: 0o600, flag: "wx" });
  try {
    await run(inNs(ns, ["wg", "set", iface, "listen-port", String(listenPort), "private-key", file]));
  } finally {
    await rm(file, { force: true });
  }
}

/** A private temp dir for key files: under /dev/shm when it exists (never written to disk), else under `fallback`. */
export async function makeKeyDir(prefix: string, fallback: string): Promise<string> {
  const base = existsSync("/dev/shm") ? "/dev/shm" : fallback;
  return mkdtemp(join(base, prefix)); // mode 0700
}

export interface PeerConfig {
  readonly publicKey: string;
  /** Replaces the peer's allowed IPs when given. */
  readonly allowedIps?: readonly string[];
  /** "ip:port". */
  readonly endpoint?: string;
  readonly persistentKeepaliveSec?: number;
  /** Remove the peer instead. */
  readonly remove?: boolean;
}

export function peerArgs(p: PeerConfig): string[] {
  const args = ["peer", p.publicKey];
  if (p.remove) return [...args, "remove"];
  if (p.allowedIps) args.push("allowed-ips", p.allowedIps.join(","));
  if (p.endpoint !== undefined) args.push("endpoint", p.endpoint);
  if (p.persistentKeepaliveSec !== undefined) args.push("persistent-keepalive", p.persistentKeepaliveSec === 0 ? "off" : String(p.persistentKeepaliveSec));
  return args;
}

/** One `wg set` for several peers. */
export async function setPeers(run: Runner, ns: string, iface: string, peers: readonly PeerConfig[]): Promise<void> {
  if (peers.length === 0) return;
  await run(inNs(ns, ["wg", "set", iface, ...peers.flatMap(peerArgs)]));
}

export function parseEndpoint(text: string): Endpoint | null {
  if (text === "(none)") return null;
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  if (!m) throw new Error(`unparsable WireGuard endpoint \`${text}'`);
  return { ip: m[1] as string, port: Number(m[2]) };
}

export function formatEndpoint(e: Endpoint): string {
  return e.ip.includes(":") ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

/**
 * Parses `wg show IFACE dump`. Its first line carries the interface's PRIVATE
 * key: it is dropped unread. Peer lines: public-key preshared-key endpoint
 * allowed-ips latest-handshake rx tx keepalive (only whether a preshared key
 * is set is kept).
 */
export function parseDumpPeers(stdout: string): WgPeer[] {
  const lines = stdout.split("\n").slice(1).filter((l) => l.length > 0);
  return lines.map((line, i) => {
    const f = line.split("\t");
    if (f.length !== 8) throw new Error(`\`wg show dump' peer line ${i + 1} has ${f.length} fields, expected 8`);
    const [publicKey, psk, endpoint, allowed, handshake, rx, tx, keepalive] = f as [string, string, string, string, string, string, string, string];
    return {
      publicKey,
      endpoint: parseEndpoint(endpoint),
      lastHandshakeMs: Number(handshake) * 1000,
      rxBytes: Number(rx),
      txBytes: Number(tx),
      allowedIps: allowed === "(none)" ? [] : allowed.split(","),
      persistentKeepaliveSec: keepalive === "off" ? 0 : Number(keepalive),
      hasPresharedKey: psk !== "(none)",
    };
  });
}

export async function readPeers(run: Runner, ns: string, iface: string): Promise<WgPeer[]> {
  // allowFailure: a failing run's error would quote stdout, and stdout starts with the private key.
  const r = await run(inNs(ns, ["wg", "show", iface, "dump"]), { allowFailure: true, timeoutMs: 5_000 });
  if (r.code !== 0) throw new Error(`\`wg show ${iface} dump' in ${ns} failed (exit status ${r.code}): ${r.stderr.trim()}`);
  return parseDumpPeers(r.stdout);
}

/** `wg show IFACE endpoints` as a map public key → endpoint (peers without one are left out). */
export async function readEndpoints(run: Runner, ns: string, iface: string): Promise<Map<string, Endpoint>> {
  const out = (await run(inNs(ns, ["wg", "show", iface, "endpoints"]), { timeoutMs: 5_000 })).stdout;
  const map = new Map<string, Endpoint>();
  for (const line of out.split("\n")) {
    const [key, ep] = line.split("\t");
    if (!key || !ep) continue;
    const endpoint = parseEndpoint(ep);
    if (endpoint) map.set(key, endpoint);
  }
  return map;
}
