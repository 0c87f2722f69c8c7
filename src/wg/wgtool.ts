/**
 * The kernel backend: runs `wg` (wireguard-tools) through the Runner, with argv arrays only.
 *
 * `wg show NAME dump` prints the interface's PRIVATE KEY as the first field of its first line:
 * the parser never reads that field, and the output is never quoted in an error.
 */
import { CommandError } from "../util/runner.js";
import type { RunResult, Runner } from "../util/runner.js";
import { canonicalCidr, formatEndpoint, tryParseEndpoint } from "./endpoint.js";
import { isKey } from "./keys.js";
import { quote, quoteUntrusted } from "./quote.js";
import type { Endpoint, PeerUpdate, WgDevice, WgPeer } from "./types.js";
import { WgError } from "./types.js";
import { checkAllowedIps, checkKeepalive, checkUpdates } from "./uapi-parse.js";

export interface WgToolOptions {
  readonly runner: Runner;
  /** Limit for one `wg` run, in milliseconds. */
  readonly timeoutMs: number;
}

const DIGITS = /^\d{1,20}$/;
/** Peers per `wg set` run. */
export const SET_BATCH = 500;

/** Reads the state of kernel interface `name` with `wg show NAME dump`. */
export async function wgtoolGetDevice(name: string, options: WgToolOptions): Promise<WgDevice> {
  const result = await runWg(name, ["wg", "show", name, "dump"], options);
  return parseDump(name, result.stdout);
}

/**
 * Applies updates to peers that exist, in one `wg set NAME peer K endpoint E persistent-keepalive N ...`.
 * `wg set` creates a peer it does not know, so the current peer list is read first and updates
 * for peers that are gone are skipped (as the userspace `update_only=true` does). An add is
 * carried out only for a peer that is not there (`wg set NAME peer K allowed-ips ...`), a remove
 * only for one that is (`wg set NAME peer K remove`).
 *
 * Race: a peer removed by someone else between `wg show peers` and `wg set` is re-created, with
 * this endpoint and keepalive but no allowed IPs (so it routes nothing); a peer someone adds in
 * that window with the key of an add gets the add's allowed IPs instead of its own. The netlink API has an
 * update-only flag; wg(8) does not expose it, and this backend exists to avoid speaking netlink.
 */
export async function wgtoolUpdatePeers(name: string, updates: readonly PeerUpdate[], options: WgToolOptions): Promise<void> {
  checkUpdates(updates);
  const wanted = updates.filter(
    (u) =>
      u.endpoint !== undefined ||
      u.persistentKeepaliveSec !== undefined ||
      u.recreate !== undefined ||
      u.allowedIps !== undefined ||
      u.add !== undefined ||
      u.remove === true,
  );
  if (wanted.length === 0) return;

  const listed = await runWg(name, ["wg", "show", name, "peers"], options);
  const existing = new Set(listed.stdout.split("\n").filter((l) => l !== ""));
  const present = wanted.filter((u) => existing.has(u.publicKey) && u.add === undefined);
  // A recreate is a remove, then the peer is set again below with its allowed IPs. Two runs, so
  // not atomic as on the userspace socket: between them the peer does not exist.
  const removed = present.filter((u) => u.recreate !== undefined || u.remove === true);
  for (let i = 0; i < removed.length; i += SET_BATCH) {
    const argv = ["wg", "set", name];
    for (const u of removed.slice(i, i + SET_BATCH)) argv.push("peer", u.publicKey, "remove");
    await runWg(name, argv, options);
  }
  const set = [...present.filter((u) => u.remove !== true), ...wanted.filter((u) => u.add !== undefined && !existing.has(u.publicKey))];
  // Batches keep argv far below the kernel's limit (ARG_MAX) even for thousands of peers.
  for (let i = 0; i < set.length; i += SET_BATCH) {
    const argv = ["wg", "set", name];
    for (const u of set.slice(i, i + SET_BATCH)) {
      argv.push("peer", u.publicKey);
      if (u.endpoint !== undefined) argv.push("endpoint", formatEndpoint(u.endpoint));
      if (u.persistentKeepaliveSec !== undefined) argv.push("persistent-keepalive", String(checkKeepalive(u.persistentKeepaliveSec)));
      const allowed = u.add?.allowedIps ?? u.allowedIps ?? u.recreate?.allowedIps;
      if (allowed !== undefined) argv.push("allowed-ips", checkAllowedIps(allowed).join(","));
    }
    await runWg(name, argv, options);
  }
}

/** Runs one `wg` command; maps every failure to a WgError. Errors quote stderr, never stdout. */
async function runWg(name: string, argv: string[], options: WgToolOptions): Promise<RunResult> {
  let result: RunResult;
  try {
    result = await options.runner(argv, { allowFailure: true, timeoutMs: options.timeoutMs });
  } catch (err) {
    if (err instanceof CommandError && err.result === null && (err.cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
      throw new WgError(
        "tool-missing",
        `\`wg' (wireguard-tools) is needed for kernel interface ${quote(name)} but was not found; install wireguard-tools`,
        { cause: err },
      );
    }
    throw new WgError("failed", `${command(argv)} could not run: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (result.code === 0) return result;
  const stderr = result.stderr.trim();
  const detail = `${command(argv)} failed (exit status ${result.code})${stderr ? `: ${stderr}` : ""}`;
  if (/No such device|does not exist/i.test(stderr)) {
    throw new WgError("not-found", `WireGuard interface ${quote(name)} not found (${detail})`);
  }
  if (/Operation not permitted|Permission denied/i.test(stderr)) {
    throw new WgError("permission", `no permission to control WireGuard interface ${quote(name)}: run as root (${detail})`);
  }
  throw new WgError("failed", detail);
}

function command(argv: readonly string[]): string {
  return `\`${argv.join(" ")}'`;
}

/**
 * Parses `wg show NAME dump` (pure; throws only WgError "protocol"). Line 1: private-key public-key
 * listen-port fwmark (the private key is skipped unread). Then one line per peer: public-key
 * preshared-key endpoint allowed-ips latest-handshake transfer-rx transfer-tx persistent-keepalive,
 * tab-separated, with `(none)` and `off` for absent values. Never quotes a secret field.
 */
export function parseDump(name: string, text: string): WgDevice {
  const where = `\`wg show ${name} dump' output`;
  if (typeof text !== "string") throw new WgError("protocol", `${where} is not text`);
  let pos = 0;
  let lineNo = 0;
  const nextLine = (): string | null => {
    if (pos >= text.length) return null;
    let nl = text.indexOf("\n", pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl);
    pos = nl + 1;
    lineNo++;
    return line;
  };
  const bad = (field: string, value: string): WgError =>
    new WgError("protocol", `${where}, line ${lineNo}: bad ${field}: ${quoteUntrusted(value)}`);

  const head = nextLine();
  if (head === null || head === "") throw new WgError("protocol", `${where} is empty`);
  const hf = head.split("\t");
  if (hf.length !== 4) throw new WgError("protocol", `${where}, line 1: ${hf.length} fields, expected 4 (private-key public-key listen-port fwmark)`);
  const [, pub = "", portText = "", fwmark = ""] = hf;
  hf[0] = ""; // drop the private key at once
  let publicKey = "";
  if (pub !== "(none)") {
    if (!isKey(pub)) throw bad("public key", pub);
    publicKey = pub;
  }
  const listenPort = num(portText, 65535);
  if (listenPort < 0) throw bad("listen port", portText);
  if (fwmark !== "off" && !/^(?:0x[0-9a-fA-F]{1,8}|\d{1,10})$/.test(fwmark)) throw bad("fwmark", fwmark);

  const peers: WgPeer[] = [];
  for (let line = nextLine(); line !== null; line = nextLine()) {
    if (line === "") continue;
    const f = line.split("\t");
    if (f.length !== 8) {
      throw new WgError(
        "protocol",
        `${where}, line ${lineNo}: ${f.length} fields, expected 8 (public-key preshared-key endpoint allowed-ips latest-handshake transfer-rx transfer-tx persistent-keepalive)`,
      );
    }
    const [key = "", , epText = "", allowedText = "", hsText = "", rxText = "", txText = "", kaText = ""] = f;
    const hasPresharedKey = f[1] !== "(none)"; // whether one is set; the key is not kept
    f[1] = "";
    if (!isKey(key)) throw bad("peer public key", key);
    let endpoint: Endpoint | null = null;
    if (epText !== "(none)") {
      endpoint = tryParseEndpoint(epText);
      if (endpoint === null) throw bad("endpoint", epText);
    }
    const allowedIps: string[] = [];
    if (allowedText !== "(none)") {
      for (const cidr of allowedText.split(",")) {
        try {
          allowedIps.push(canonicalCidr(cidr));
        } catch {
          throw bad("allowed IP", cidr);
        }
      }
    }
    const hs = num(hsText, Number.MAX_SAFE_INTEGER / 1000);
    if (hs < 0) throw bad("latest handshake", hsText);
    const rx = num(rxText, Number.MAX_VALUE);
    if (rx < 0) throw bad("transfer-rx", rxText);
    const tx = num(txText, Number.MAX_VALUE);
    if (tx < 0) throw bad("transfer-tx", txText);
    const ka = kaText === "off" ? 0 : num(kaText, 65535);
    if (ka < 0) throw bad("persistent keepalive", kaText);
    peers.push({ publicKey: key, endpoint, lastHandshakeMs: hs * 1000, rxBytes: rx, txBytes: tx, allowedIps, persistentKeepaliveSec: ka, hasPresharedKey });
  }
  return { name, type: "kernel", publicKey, listenPort, peers };
}

function num(text: string, max: number): number {
  if (!DIGITS.test(text)) return -1;
  const n = Number(text);
  return n > max ? -1 : n;
}
