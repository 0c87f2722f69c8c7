/**
 * Pure text side of the cross-platform userspace API (wireguard-go, boringtun):
 * parsing a `get=1` reply and writing a `set=1` request. No I/O here.
 *
 * Secrets: the reply carries the interface's private key and the peers' preshared keys. The parser
 * derives the public key from the private key and drops both; neither is stored, returned or put in
 * an error message (a bad line with a secret key is shown as `private_key=<not shown>`).
 */
import { constants as osConstants } from "node:os";
import { canonicalCidr, formatEndpoint, tryCanonicalCidr, tryParseEndpoint } from "./endpoint.js";
import { checkKey, isHexKey, isZeroKey, keyToHex, publicKeyFromPrivate } from "./keys.js";
import { mayHoldSecret, quote, quoteUntrusted } from "./quote.js";
import type { Endpoint, PeerUpdate, WgDevice, WgPeer } from "./types.js";
import { WgError } from "./types.js";

const DIGITS = /^\d{1,20}$/;
const SECRET_KEYS = new Set(["private_key", "preshared_key"]);
const ZERO_KEY_HEX = /^0{64}$/;
/** Keys that belong to a peer block (after its public_key). */
const PEER_KEYS = new Set([
  "preshared_key",
  "endpoint",
  "last_handshake_time_sec",
  "last_handshake_time_nsec",
  "tx_bytes",
  "rx_bytes",
  "persistent_keepalive_interval",
  "allowed_ip",
]);
/** Largest handshake time (seconds) whose milliseconds are still exact. */
const MAX_SEC = Math.floor(Number.MAX_SAFE_INTEGER / 1000);

/**
 * Parses the reply to `get=1` (everything up to and including the `errno=N` line; a trailing empty
 * line is allowed). Throws only WgError: "failed" when errno is not 0, "protocol" for anything that
 * does not parse. Unknown keys are ignored.
 */
export function parseUapiGet(name: string, reply: string): WgDevice {
  const where = `reply from WireGuard interface ${quote(name)}`;
  if (typeof reply !== "string") throw new WgError("protocol", `${where} is not text`);

  // The last non-empty line must be errno=N; without it the reply was cut short.
  let end = reply.length;
  while (end > 0 && reply.charCodeAt(end - 1) === 10) end--;
  const lastStart = reply.lastIndexOf("\n", end - 1) + 1;
  const last = reply.slice(lastStart, end);
  if (!last.startsWith("errno=")) {
    throw new WgError("protocol", `${where} ended early (no errno line${end === 0 ? "; the reply was empty" : ""})`);
  }
  const errnoText = last.slice(6);
  if (!/^-?\d{1,10}$/.test(errnoText)) throw new WgError("protocol", `${where} has a bad errno line: ${quoteUntrusted(last)}`);
  const errno = Number(errnoText);
  if (errno !== 0) throw new WgError("failed", `WireGuard interface ${quote(name)} refused to report its state: ${describeErrno(errno)}`);

  let publicKey = "";
  let listenPort = 0;
  const peers: WgPeer[] = [];

  // The peer being read; pushed into `peers` at the next public_key or at the end. Plain locals,
  // captured by no closure, so V8 keeps them in registers.
  let inPeer = false;
  let pKey = "";
  let pEndpoint: Endpoint | null = null;
  let pSec = 0;
  let pNsec = 0;
  let pRx = 0;
  let pTx = 0;
  let pKeepalive = 0;
  let pAllowed: string[] = [];
  let pPsk = false;
  let lineNo = 0;
  let pos = 0;
  // No closures inside this loop: it runs once per line (over 100 000 lines for 10 000 peers).
  while (pos < lastStart) {
    let nl = reply.indexOf("\n", pos);
    if (nl < 0 || nl > lastStart) nl = lastStart;
    const lineStart = pos;
    pos = nl + 1;
    lineNo++;
    if (nl === lineStart) throw new WgError("protocol", `${where}, line ${lineNo}: empty line before the errno line`);
    const eq = reply.indexOf("=", lineStart);
    if (eq <= lineStart || eq > nl) {
      throw new WgError("protocol", `${where}, line ${lineNo}: not key=value: ${quoteUntrusted(reply.slice(lineStart, nl))}`);
    }
    const key = reply.slice(lineStart, eq);
    const value = reply.slice(eq + 1, nl);
    let n: number;

    if (!inPeer && PEER_KEYS.has(key)) throw badLine(where, lineNo, key, value, `${key} before any public_key`);
    switch (key) {
      case "private_key": {
        if (inPeer) throw badLine(where, lineNo, key, value, "private_key inside a peer");
        if (!isHexKey(value)) throw badLine(where, lineNo, key, value, "not 32 bytes of hex");
        const raw = Buffer.from(value, "hex");
        try {
          publicKey = isZeroKey(raw) ? "" : publicKeyFromPrivate(raw);
        } finally {
          raw.fill(0);
        }
        break;
      }
      case "listen_port":
        if (inPeer) throw badLine(where, lineNo, key, value, "listen_port inside a peer");
        if ((n = parseNum(value, 65535)) < 0) throw badNum(where, lineNo, key, value, 65535);
        listenPort = n;
        break;
      case "public_key": {
        // Buffer's hex decoder stops at the first bad digit, so 32 bytes out means 64 good digits in.
        const raw = value.length === 64 ? Buffer.from(value, "hex") : null;
        if (raw === null || raw.length !== 32) throw badLine(where, lineNo, key, value, "not 32 bytes of hex");
        if (inPeer) peers.push(makePeer(pKey, pEndpoint, pSec, pNsec, pRx, pTx, pAllowed, pKeepalive, pPsk));
        inPeer = true;
        pPsk = false;
        pKey = raw.toString("base64");
        pEndpoint = null;
        pSec = pNsec = pRx = pTx = pKeepalive = 0;
        pAllowed = [];
        break;
      }
      case "preshared_key":
        // Only whether one is set (all zeros means none); the value is not kept.
        pPsk = !ZERO_KEY_HEX.test(value);
        break;
      case "endpoint":
        pEndpoint = tryParseEndpoint(value);
        if (pEndpoint === null) throw badLine(where, lineNo, key, value, "not an endpoint");
        break;
      case "last_handshake_time_sec":
        if ((n = parseNum(value, MAX_SEC)) < 0) throw badNum(where, lineNo, key, value, MAX_SEC);
        pSec = n;
        break;
      case "last_handshake_time_nsec":
        if ((n = parseNum(value, 999_999_999)) < 0) throw badNum(where, lineNo, key, value, 999_999_999);
        pNsec = n;
        break;
      case "tx_bytes":
        if ((n = parseNum(value, Number.MAX_VALUE)) < 0) throw badNum(where, lineNo, key, value, Number.MAX_VALUE);
        pTx = n;
        break;
      case "rx_bytes":
        if ((n = parseNum(value, Number.MAX_VALUE)) < 0) throw badNum(where, lineNo, key, value, Number.MAX_VALUE);
        pRx = n;
        break;
      case "persistent_keepalive_interval":
        if ((n = parseNum(value, 65535)) < 0) throw badNum(where, lineNo, key, value, 65535);
        pKeepalive = n;
        break;
      case "allowed_ip": {
        const cidr = tryCanonicalCidr(value);
        if (cidr === null) throw badLine(where, lineNo, key, value, "not an IP prefix");
        pAllowed.push(cidr);
        break;
      }
      default:
        // fwmark, protocol_version, and keys of later versions: not ours.
        break;
    }
  }
  if (inPeer) peers.push(makePeer(pKey, pEndpoint, pSec, pNsec, pRx, pTx, pAllowed, pKeepalive, pPsk));
  return { name, type: "userspace", publicKey, listenPort, peers };
}

/**
 * The `set=1` request for a list of updates: one `public_key` block per update, each with
 * `update_only=true` so a peer that is gone is never re-created. Updates that change nothing
 * are left out; returns null when nothing is left. Throws TypeError for an invalid update.
 *
 * A `recreate` update becomes `remove=true` followed by a fresh block for the same key with
 * the given allowed IPs, in the same request (the daemon applies it under one lock). Race: a
 * peer someone else removed between our read and this write is added back.
 */
export function formatUapiSet(updates: readonly PeerUpdate[]): string | null {
  let body = "";
  for (const [i, u] of updates.entries()) {
    const what = `update ${i + 1}`;
    checkIntent(u, what);
    const hex = keyToHex(u.publicKey, `${what}: peer public key`);
    if (u.remove === true) {
      // update_only first: a peer that is gone is not created only to be removed.
      body += `public_key=${hex}\nupdate_only=true\nremove=true\n`;
      continue;
    }
    const endpoint = u.endpoint === undefined ? undefined : formatEndpoint(u.endpoint, `${what}: endpoint`);
    const keepalive = u.persistentKeepaliveSec === undefined ? undefined : checkKeepalive(u.persistentKeepaliveSec, what);
    const recreated = u.recreate === undefined ? undefined : checkAllowedIps(u.recreate.allowedIps, what);
    const replaced = u.allowedIps === undefined ? undefined : checkAllowedIps(u.allowedIps, what);
    const added = u.add === undefined ? undefined : checkAllowedIps(u.add.allowedIps, what);
    if (added !== undefined) {
      // No update_only: the daemon creates the peer. The caller has left out peers that exist (see uapiUpdatePeers).
      body += `public_key=${hex}\n`;
      if (endpoint !== undefined) body += `endpoint=${endpoint}\n`;
      if (keepalive !== undefined) body += `persistent_keepalive_interval=${keepalive}\n`;
      body += "replace_allowed_ips=true\n";
      for (const cidr of added) body += `allowed_ip=${cidr}\n`;
      continue;
    }
    const allowed = replaced ?? recreated;
    if (endpoint === undefined && keepalive === undefined && allowed === undefined) continue;
    body += `public_key=${hex}\nupdate_only=true\n`;
    if (recreated !== undefined) body += `remove=true\npublic_key=${hex}\n`;
    if (endpoint !== undefined) body += `endpoint=${endpoint}\n`;
    if (keepalive !== undefined) body += `persistent_keepalive_interval=${keepalive}\n`;
    if (replaced !== undefined) body += "replace_allowed_ips=true\n";
    if (allowed !== undefined) for (const cidr of allowed) body += `allowed_ip=${cidr}\n`;
  }
  return body === "" ? null : `set=1\n${body}\n`;
}

/** An add or a remove goes alone: TypeError naming the update otherwise. */
function checkIntent(u: PeerUpdate, what: string): void {
  if (u.remove !== undefined && u.remove !== true) throw new TypeError(`${what}: remove is not true: ${quote(String(u.remove))}`);
  if (u.remove === true && (u.endpoint !== undefined || u.persistentKeepaliveSec !== undefined || u.recreate !== undefined || u.allowedIps !== undefined || u.add !== undefined)) {
    throw new TypeError(`${what}: a remove cannot also set an endpoint, keepalive or allowed IPs`);
  }
  if (u.add !== undefined && (u.recreate !== undefined || u.allowedIps !== undefined)) {
    throw new TypeError(`${what}: an add cannot also recreate the peer or replace its allowed IPs`);
  }
}

/** Validates the allowed IPs of a recreate; TypeError naming the update otherwise. */
export function checkAllowedIps(allowedIps: readonly string[], what = "update"): string[] {
  if (!Array.isArray(allowedIps)) throw new TypeError(`${what}: allowed IPs are not a list`);
  return allowedIps.map((cidr) => canonicalCidr(cidr, `${what}: allowed IP`));
}

function makePeer(
  publicKey: string,
  endpoint: Endpoint | null,
  sec: number,
  nsec: number,
  rxBytes: number,
  txBytes: number,
  allowedIps: string[],
  persistentKeepaliveSec: number,
  hasPresharedKey: boolean,
): WgPeer {
  return {
    publicKey,
    endpoint,
    lastHandshakeMs: sec * 1000 + Math.floor(nsec / 1e6),
    rxBytes,
    txBytes,
    allowedIps,
    persistentKeepaliveSec,
    hasPresharedKey,
  };
}

function badLine(where: string, lineNo: number, key: string, value: string, why: string): WgError {
  const shown = SECRET_KEYS.has(key)
    ? `${key}=<not shown>`
    : mayHoldSecret(value)
      ? `${key}=<${value.length} characters, not shown>`
      : quote(`${key}=${value}`);
  return new WgError("protocol", `${where}, line ${lineNo}: ${why}: ${shown}`);
}

function badNum(where: string, lineNo: number, key: string, value: string, max: number): WgError {
  return badLine(where, lineNo, key, value, DIGITS.test(value) ? `larger than ${max}` : "not a number");
}

/** A decimal number (1-20 digits) 0..max, or -1. */
function parseNum(value: string, max: number): number {
  const len = value.length;
  if (len === 0 || len > 20) return -1;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n > max ? -1 : n;
}

/** Parses the reply to `set=1`: `errno=0` alone is success. Throws WgError only. */
export function parseUapiSetReply(name: string, reply: string): void {
  const trimmed = reply.replace(/\n+$/, "");
  const m = /^errno=(-?\d{1,10})$/.exec(trimmed);
  if (m === null || m[1] === undefined) {
    throw new WgError("protocol", `reply to set from WireGuard interface ${quote(name)} is not errno=N: ${quoteUntrusted(trimmed)}`);
  }
  const errno = Number(m[1]);
  if (errno !== 0) throw new WgError("failed", `WireGuard interface ${quote(name)} refused the peer update: ${describeErrno(errno)}`);
}

/** Validates a keepalive interval (integer seconds 0-65535, 0 = off); TypeError otherwise. */
export function checkKeepalive(sec: number, what = "update"): number {
  if (typeof sec !== "number" || !Number.isInteger(sec) || sec < 0 || sec > 65535) {
    throw new TypeError(`${what}: persistent keepalive is not 0-65535 seconds: ${quote(String(sec))}`);
  }
  return sec;
}

/** Validates every update up front so nothing is half-applied because of a bad one. */
export function checkUpdates(updates: readonly PeerUpdate[]): void {
  if (!Array.isArray(updates)) throw new TypeError("updates is not an array");
  for (const [i, u] of updates.entries()) {
    const what = `update ${i + 1}`;
    checkKey(u.publicKey, `${what}: peer public key`);
    if (u.endpoint !== undefined) formatEndpoint(u.endpoint, `${what}: endpoint`);
    if (u.persistentKeepaliveSec !== undefined) checkKeepalive(u.persistentKeepaliveSec, what);
    if (u.recreate !== undefined) checkAllowedIps(u.recreate.allowedIps, what);
    if (u.allowedIps !== undefined) checkAllowedIps(u.allowedIps, what);
    if (u.add !== undefined) checkAllowedIps(u.add.allowedIps, what);
    checkIntent(u, what);
  }
}

/** "errno 22 (EINVAL)"; wireguard-go sends negative numbers, boringtun positive ones. */
export function describeErrno(errno: number): string {
  const abs = Math.abs(errno);
  const entry = Object.entries(osConstants.errno).find(([, n]) => n === abs);
  return entry ? `errno ${abs} (${entry[0]})` : `errno ${errno}`;
}
