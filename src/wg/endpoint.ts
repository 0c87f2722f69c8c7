/**
 * UDP endpoints and IP prefixes in their canonical text form.
 *
 * Canonical: IPv4 dotted decimal without leading zeros; IPv6 as RFC 5952 (compressed, lowercase),
 * an IPv4-mapped IPv6 address as plain IPv4; an IPv6 zone is kept (`fe80::1%eth0`).
 * Invalid input is a TypeError whose message names the thing and quotes the value.
 */
import ipaddr from "ipaddr.js";
import type { Endpoint } from "./types.js";
import { quote } from "./quote.js";

/** Four-part decimal IPv4 with no leading zeros: already canonical. */
const CANONICAL_V4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const ZONE = /^[A-Za-z0-9_.-]{1,64}$/;
const PORT = /^[1-9]\d{0,4}$/;
const PREFIX_LEN = /^(?:0|[1-9]\d{0,2})$/;

/** The canonical form of an IP address, or null when `text` is not one. Never throws. */
export function tryCanonicalIp(text: string): string | null {
  if (typeof text !== "string") return null;
  if (CANONICAL_V4.test(text)) return text;
  if (!text.includes(":")) return null;
  if (isCanonicalV6(text)) return text;
  const pct = text.indexOf("%");
  if (pct >= 0 && !ZONE.test(text.slice(pct + 1))) return null;
  if (!ipaddr.IPv6.isValid(text)) return null;
  let addr: ipaddr.IPv6;
  try {
    addr = ipaddr.IPv6.parse(text);
  } catch {
    return null;
  }
  if (addr.isIPv4MappedAddress()) return addr.toIPv4Address().toString();
  return addr.toRFC5952String();
}

/** The canonical form of an IP address; TypeError naming `what` when it is not one. */
export function canonicalIp(text: string, what = "IP address"): string {
  const ip = tryCanonicalIp(text);
  if (ip === null) throw new TypeError(`${what} is not an IPv4 or IPv6 address: ${quoteAny(text)}`);
  return ip;
}

/**
 * The canonical form of a prefix such as "10.0.0.2/32" or "fd00::2/128" (host bits are kept as
 * given: WireGuard reports what it stores). An IPv4-mapped IPv6 prefix stays IPv6, written
 * `::ffff:a.b.c.d/n`. TypeError naming `what` when invalid.
 */
export function canonicalCidr(text: string, what = "allowed IP"): string {
  const cidr = tryCanonicalCidr(text);
  if (cidr === null) throw new TypeError(`${what} is not an IP prefix (address/length): ${quoteAny(text)}`);
  return cidr;
}

/** Like {@link canonicalCidr} but returns null instead of throwing. */
export function tryCanonicalCidr(text: string): string | null {
  if (typeof text !== "string") return null;
  const slash = text.lastIndexOf("/");
  if (slash < 0) return null;
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!PREFIX_LEN.test(lenText)) return null;
  const len = Number(lenText);
  if (CANONICAL_V4.test(addrText)) return len <= 32 ? text : null;
  if (len > 128 || !addrText.includes(":") || addrText.includes("%")) return null;
  if (isCanonicalV6(addrText)) return text;
  if (!ipaddr.IPv6.isValid(addrText)) return null;
  const addr = ipaddr.IPv6.parse(addrText);
  const shown = addr.isIPv4MappedAddress() ? `::ffff:${addr.toIPv4Address().toString()}` : addr.toRFC5952String();
  return `${shown}/${len}`;
}

/** Scratch for {@link isCanonicalV6}: the eight groups of the address being checked. */
const scratch = [0, 0, 0, 0, 0, 0, 0, 0];

/**
 * True when `text` is an IPv6 address already in RFC 5952 form (lowercase, no leading zeros, the
 * first longest run of two or more zero groups written as "::"), not IPv4-mapped, without a zone or
 * embedded IPv4. What WireGuard prints always is, so this allocation-free check spares ipaddr.js's
 * general parser on large replies; anything else (false) goes through ipaddr.js.
 */
function isCanonicalV6(text: string): boolean {
  const n = text.length;
  if (n < 2 || n > 39) return false;
  let i = 0;
  let count = 0;
  let dc = -1; // index in `scratch` where "::" stands
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    dc = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let v = 0;
    while (i < n && i - start < 5) {
      const c = text.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
      if (d < 0) break;
      v = v * 16 + d;
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 4 || (len > 1 && text.charCodeAt(start) === 48) || count === 8) return false;
    scratch[count++] = v;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i === n) return false; // a single trailing ':'
    if (text.charCodeAt(i) === 58) {
      if (dc >= 0) return false;
      dc = count;
      i++;
    }
  }
  if (dc < 0 ? count !== 8 : count > 6) return false;
  if (dc >= 0) {
    // Spread: the groups after "::" move to the end, zeros in between.
    const gap = 8 - count;
    for (let k = count - 1; k >= dc; k--) scratch[k + gap] = scratch[k] ?? 0;
    for (let k = dc; k < dc + gap; k++) scratch[k] = 0;
  }
  if (scratch[0] === 0 && scratch[1] === 0 && scratch[2] === 0 && scratch[3] === 0 && scratch[4] === 0 && scratch[5] === 0xffff) return false;
  // RFC 5952: "::" must stand for the first longest run of two or more zero groups.
  let best = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (scratch[k] !== 0) {
      k++;
      continue;
    }
    let j = k;
    while (j < 8 && scratch[j] === 0) j++;
    if (j - k > bestLen) {
      best = k;
      bestLen = j - k;
    }
    k = j;
  }
  return dc < 0 ? best < 0 : best === dc && bestLen === 8 - count;
}

/**
 * Parses `1.2.3.4:51820` or `[2001:db8::1]:51820` into a canonical {@link Endpoint}.
 * TypeError naming `what` (default "endpoint") and quoting the value when invalid.
 */
export function parseEndpoint(text: string, what = "endpoint"): Endpoint {
  const ep = tryParseEndpoint(text);
  if (ep !== null) return ep;
  if (typeof text === "string") {
    const colon = text.lastIndexOf(":");
    if (colon > 0 && !text.startsWith("[") && text.indexOf(":") !== colon && tryCanonicalIp(text.slice(0, colon)) !== null) {
      throw new TypeError(`${what} has an IPv6 address without brackets (write [ADDRESS]:PORT): ${quote(text)}`);
    }
    if (colon > 0 && parsePort(text.slice(colon + 1)) === null) {
      throw new TypeError(`${what} has no valid port (1-65535): ${quote(text)}`);
    }
  }
  throw new TypeError(`${what} is not IPv4:PORT or [IPv6]:PORT: ${quoteAny(text)}`);
}

/** Like {@link parseEndpoint} but returns null instead of throwing. */
export function tryParseEndpoint(text: string): Endpoint | null {
  if (typeof text !== "string") return null;
  const colon = text.lastIndexOf(":");
  if (colon <= 0) return null;
  const port = parsePort(text.slice(colon + 1));
  if (port === null) return null;
  let host = text.slice(0, colon);
  if (host.startsWith("[")) {
    if (!host.endsWith("]")) return null;
    host = host.slice(1, -1);
    if (!host.includes(":")) return null; // brackets are for IPv6 only
  } else if (host.includes(":")) {
    return null;
  }
  const ip = tryCanonicalIp(host);
  return ip === null ? null : { ip, port };
}

/**
 * Formats an endpoint as WireGuard writes it: `1.2.3.4:51820` or `[2001:db8::1]:51820`, canonicalising
 * the address. TypeError when the address or port is invalid (so the result is safe to put in a
 * `wg` argument or a control-socket line).
 */
export function formatEndpoint(endpoint: Endpoint, what = "endpoint"): string {
  const ep = checkEndpoint(endpoint, what);
  return ep.ip.includes(":") ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/** Returns the canonical form of an {@link Endpoint} object; TypeError when it is invalid. */
export function checkEndpoint(endpoint: Endpoint, what = "endpoint"): Endpoint {
  if (typeof endpoint !== "object" || endpoint === null) throw new TypeError(`${what} is not an endpoint object: ${quoteAny(endpoint)}`);
  const ip = canonicalIp(endpoint.ip, `${what} address`);
  const { port } = endpoint;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`${what} port is not in 1-65535: ${quoteAny(port)}`);
  }
  return ip === endpoint.ip ? endpoint : { ip, port };
}

/** True when both are null/undefined, or both name the same address (compared canonically) and port. Never throws. */
export function endpointsEqual(a: Endpoint | null | undefined, b: Endpoint | null | undefined): boolean {
  if (a == null || b == null) return a == null && b == null;
  if (a.port !== b.port) return false;
  if (a.ip === b.ip) return true;
  const ca = tryCanonicalIp(a.ip);
  return ca !== null && ca === tryCanonicalIp(b.ip);
}

function parsePort(text: string): number | null {
  if (!PORT.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

function quoteAny(value: unknown): string {
  return typeof value === "string" ? quote(value) : quote(String(value));
}
