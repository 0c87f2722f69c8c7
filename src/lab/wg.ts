/**
 * The lab's own WireGuard plumbing: keys, starting and configuring a
 * wireguard-go interface, reading its peers. Everything goes through the
 * Runner, inside a namespace. (src/wg/ is the product's WireGuard access; the
 * lab builds WireGuard the way a user would, with `wg`.) The benchmarks and
 * the real-WireGuard tests start their wireguard-go here too.
 *
 * Private keys never appear in argv, logs or errors: they live in a {@link Secret}
 * and reach `wg` through a 0600 file in a RAM-backed directory (see setPrivateKey).
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { inspect } from "node:util";
import type { Runner } from "../util/runner.js";
import { pollUntil } from "../util/wait.js";
import { isKey } from "../wg/keys.js";
import type { Endpoint, WgPeer } from "../wg/types.js";
import { wgtoolGetDevice } from "../wg/wgtool.js";
import { IFNAME_MAX, wgSocketPath } from "./names.js";
import { type LabProcess, type ProcessOwner, tailFile } from "./process.js";

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

export async function generateKeyPair(run: Runner): Promise<KeyPair> {
  const priv = (await run(["wg", "genkey"])).stdout.trim();
  if (!isKey(priv)) throw new Error("`wg genkey` printed something that is not a key");
  const privateKey = new Secret(priv);
  const publicKey = (await run(["wg", "pubkey"], { input: `${priv}\n` })).stdout.trim();
  if (!isKey(publicKey)) throw new Error(`\`wg pubkey\` printed something that is not a key: \`${publicKey.slice(0, 60)}'`);
  return { privateKey, publicKey };
}

/** argv prefix that runs a command inside a network namespace. */
export function inNs(ns: string, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}

/**
 * Sets the interface's private key (and listen port, when given).
 *
 * `wg set IFACE private-key /dev/stdin` cannot work through the Runner: Node's
 * stdio "pipes" are Unix sockets, and `wg` fopen()s the path, which fails on a
 * socket (ENXIO). So the key goes through a file instead: created 0600 with
 * O_EXCL in `keyDir` (RAM-backed /dev/shm when available), read by `wg`, and
 * unlinked at once. It never appears in argv or a log.
 */
export async function setPrivateKey(run: Runner, ns: string, iface: string, key: Secret, listenPort: number | undefined, keyDir: string): Promise<void> {
  const file = join(keyDir, `${iface}.${randomBytes(6).toString("hex")}.key`);
  await writeFile(file, `${key.reveal()}\n`, { mode: 0o600, flag: "wx" });
  try {
    const port = listenPort === undefined ? [] : ["listen-port", String(listenPort)];
    await run(inNs(ns, ["wg", "set", iface, ...port, "private-key", file]));
  } finally {
    await rm(file, { force: true });
  }
}

/** A private temp dir for key files: under /dev/shm when it exists (never written to disk), else under `fallback`. */
export async function makeKeyDir(prefix: string, fallback: string): Promise<string> {
  const base = existsSync("/dev/shm") ? "/dev/shm" : fallback;
  return mkdtemp(join(base, prefix)); // mode 0700
}

export interface WireGuardGoOptions {
  /** The namespace (it must exist) and the interface name wireguard-go makes in it. */
  readonly ns: string;
  readonly iface: string;
  /** For logs and the process list: "wireguard-go alice". */
  readonly name: string;
  readonly logName: string;
  readonly privateKey: Secret;
  /** 0700 directory for the moment the key is handed to `wg` ({@link makeKeyDir}). */
  readonly keyDir: string;
  readonly listenPort?: number;
  /** wireguard-go's LOG_LEVEL ("error", "verbose"/"debug"). */
  readonly logLevel?: string;
  /** How long the control socket may take to appear. Default 10 s. */
  readonly timeoutMs?: number;
  /** Called before each look for the socket; throw to stop waiting (the owner is tearing down). */
  readonly check?: () => void;
}

/**
 * Starts `wireguard-go -f IFACE` in a namespace and sets its private key (and
 * listen port): the one way the lab, the benchmarks and the tests start
 * wireguard-go. The interface is left down. The process and its control
 * socket are the owner's to clean up; a refusal to start names the log's
 * last lines.
 */
export async function startWireGuardGo(owner: ProcessOwner, run: Runner, o: WireGuardGoOptions): Promise<LabProcess> {
  if (o.iface.length > IFNAME_MAX) throw new Error(`interface name \`${o.iface}' is longer than ${IFNAME_MAX} characters`);
  const socket = wgSocketPath(o.iface);
  if (existsSync(socket)) throw new Error(`${socket} already exists: another run uses the interface name ${o.iface}`);
  owner.removeLater(socket);
  const proc = await owner.spawn(o.name, o.ns, ["wireguard-go", "-f", o.iface], {
    logName: o.logName,
    ...(o.logLevel ? { env: { LOG_LEVEL: o.logLevel } } : {}),
  });
  // Done when the socket is there, or at once when wireguard-go has exited.
  const outcome = await pollUntil(`${o.iface}'s control socket ${socket}`, () => proc.exitStatus() ?? existsSync(socket), {
    timeoutMs: o.timeoutMs ?? 10_000,
    intervalMs: 50,
    ...(o.check ? { check: o.check } : {}),
  });
  if (outcome !== true) {
    throw new Error(`wireguard-go ${o.iface} exited (${outcome.signal ?? `code ${outcome.code}`}) before making ${socket}:\n${await tailFile(proc.logFile, 10)}`);
  }
  await setPrivateKey(run, o.ns, o.iface, o.privateKey, o.listenPort, o.keyDir);
  return proc;
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

/**
 * A host's peers, read with `wg show IFACE dump` inside its namespace and
 * parsed by the product's own parser (src/wg), which drops the private key.
 */
export async function readPeers(run: Runner, ns: string, iface: string): Promise<readonly WgPeer[]> {
  const inside: Runner = (argv, options) => run(inNs(ns, argv), options);
  return (await wgtoolGetDevice(iface, { runner: inside, timeoutMs: 5_000 })).peers;
}

/** A host's peers' endpoints, as a map public key → endpoint (peers without one are left out). */
export async function readEndpoints(run: Runner, ns: string, iface: string): Promise<Map<string, Endpoint>> {
  const map = new Map<string, Endpoint>();
  for (const p of await readPeers(run, ns, iface)) if (p.endpoint) map.set(p.publicKey, p.endpoint);
  return map;
}
