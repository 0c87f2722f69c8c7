/**
 * Checks of single setting values, shared by the flags, the environment and
 * the config file (through the KeySpec tables in settings.ts). Each takes the
 * value's name as the user wrote it (`node.refresh`, `WORMHOLE_REFRESH`) and
 * throws a {@link ConfigError} whose message names it and quotes the value,
 * never a secret's.
 */
import { parseDuration } from "../util/duration.js";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "../util/log.js";
import { parsePins } from "../tls/pin.js";
import { tryCanonicalCidr, tryCanonicalIp } from "../wg/endpoint.js";
import { networkOf } from "../util/prefix.js";
import { isKey } from "../wg/keys.js";
import { quote } from "../wg/quote.js";

/** A bad config file, environment variable or combination of them. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * A duration such as "15s", "1m30s", "500ms" (Go style, as the flags take);
 * "0" or "0s" only when `allowZero`.
 */
export function durationValue(name: string, text: string, options: { allowZero?: boolean } = {}): number {
  if (options.allowZero && text.trim() === "0") return 0;
  let ms: number;
  try {
    ms = parseDuration(text, name);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (ms <= 0 && !options.allowZero) throw new ConfigError(`${name} ${quote(text)} must be more than zero`);
  return ms;
}

/** A whole number from `min` to `max`, given as a number (file) or digits (environment). */
export function integerValue(name: string, value: string | number, min: number, max: number): number {
  const n = typeof value === "number" ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} ${quote(String(value))} is not a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Linux interface names, as src/wg checks them: 1-15 bytes, no '/', whitespace, ':' or '%'; not "." or "..". */
const IFNAME = /^[^\s/:%]{1,15}$/;

export function ifaceValue(name: string, text: string): string {
  if (!IFNAME.test(text) || text === "." || text === "..") {
    throw new ConfigError(`${name} ${quote(text)} is not a valid interface name (1-15 characters, no '/', ':', '%' or spaces)`);
  }
  return text;
}

/** A gRPC address: not empty, no whitespace. Its form is checked by whoever dials or binds it. */
export function addressValue(name: string, text: string): string {
  if (text === "" || /\s/.test(text)) throw new ConfigError(`${name} ${quote(text)} is not an address such as host:port`);
  return text;
}

/**
 * One registry address, or several separated by commas (a node may watch
 * several registries). Each is checked as {@link addressValue}; the same
 * address twice is a mistake, not a second registry.
 */
export function addressListValue(name: string, text: string): string[] {
  const list = text.split(",").map((a) => a.trim());
  const out: string[] = [];
  for (const a of list) {
    if (a === "") throw new ConfigError(`${name} ${quote(text)} has an empty address in its list (addresses are separated by commas)`);
    addressValue(name, a);
    if (out.includes(a)) throw new ConfigError(`${name} names ${quote(a)} twice`);
    out.push(a);
  }
  return out;
}

/** An IP prefix (address/length) such as 10.77.0.0/24 or fd77::/64, canonical; host bits must be zero. */
export function prefixValue(name: string, text: string): string {
  const cidr = tryCanonicalCidr(text.trim());
  if (cidr === null || !text.includes("/")) throw new ConfigError(`${name} ${quote(text)} is not an IP prefix such as 10.77.0.0/24`);
  const network = networkOf(cidr);
  if (network !== cidr) throw new ConfigError(`${name} ${quote(text)} has host bits set: the prefix is ${network}`);
  return cidr;
}

/** The host of "host:port" or "[v6]:port", canonical when it is an IP; null for ":port" or no port. */
export function addressHost(address: string): string | null {
  const m = /^\[([^\]]+)\]:\d+$/.exec(address) ?? /^([^:]+):\d+$/.exec(address);
  const host = m?.[1];
  if (!host) return null;
  return tryCanonicalIp(host) ?? host;
}

/** A listen address for HTTP: `host:port`, `[v6]:port` or `:port` (every address); "off" for none. */
export interface ListenAddress {
  /** null: every address. */
  readonly host: string | null;
  readonly port: number;
}

const LISTEN = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/;

/** Parses a listen address; null for "off". Throws ConfigError naming `name`. */
export function listenValue(name: string, text: string): ListenAddress | null {
  if (text === "off") return null;
  const m = LISTEN.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ConfigError(`${name} ${quote(text)} is not a listen address such as 127.0.0.1:9638, [::1]:9638, :9638 or off`);
  }
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" ? null : host, port };
}

/** Where the registry answers STUN: a listen address (port 1-65534: the next port is the alternate), or null for "off". */
export function stunValue(name: string, text: string): ListenAddress | null {
  if (text === "off") return null;
  const m = LISTEN.exec(text);
  const port = m ? Number(m[3]) : NaN;
  const host = m ? (m[1] ?? m[2] ?? "") : "";
  if (!m || port > 65534 || (host !== "" && tryCanonicalIp(host) === null)) {
    throw new ConfigError(`${name} ${quote(text)} is not a STUN address such as :3478, 203.0.113.1:3478, [2001:db8::1]:3478 or off (an IP address, a port below 65535)`);
  }
  return { host: host === "" ? null : (tryCanonicalIp(host) as string), port };
}

/** Where the seed's HTTP watch listens (`-A`): a listen address as for --http, but no "off" (leave -A and -w out for that). */
export function seedHttpAddressValue(name: string, text: string): ListenAddress {
  let addr: ListenAddress | null = null;
  try {
    addr = text === "off" ? null : listenValue(name, text);
  } catch {
    // (the message below, without listenValue's "or off")
  }
  if (addr === null) throw new ConfigError(`${name} ${quote(text)} is not a listen address such as :1639, 127.0.0.1:1639 or [::1]:1639`);
  return addr;
}

/**
 * A WireGuard public key as `wg` shows it (44 characters of base64). Spaces
 * around it are dropped, as the seed did (a key pasted with a newline).
 */
export function publicKeyValue(name: string, text: string): string {
  const key = text.trim();
  if (!isKey(key)) throw new ConfigError(`${name} ${quote(text)} is not a WireGuard public key (32 bytes of base64, 44 characters, as wg shows it)`);
  return key;
}

/** The text form of a listen address, as listenValue reads it. */
export function formatListen(addr: ListenAddress): string {
  if (addr.host === null) return `:${addr.port}`;
  return addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

export function logLevelValue(name: string, text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) {
    throw new ConfigError(`${name} ${quote(text)} is not a log level (${LOG_LEVELS.join(", ")})`);
  }
  return text as LogLevel;
}

/** The log formats, as --log-format, WORMHOLE_LOG_FORMAT and log_format take them. */
export const LOG_FORMATS = ["text", "json"] as const satisfies readonly LogFormat[];

export function logFormatValue(name: string, text: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(text)) throw new ConfigError(`${name} ${quote(text)} is not a log format (${LOG_FORMATS.join(", ")})`);
  return text as LogFormat;
}

const TRUE = ["true", "yes", "on", "1"];
const FALSE = ["false", "no", "off", "0"];

/** A boolean: TOML true/false in the file; true/false, yes/no, on/off, 1/0 in the environment. */
export function booleanValue(name: string, value: string | boolean): boolean {
  if (typeof value === "boolean") return value;
  const v = value.trim().toLowerCase();
  if (TRUE.includes(v)) return true;
  if (FALSE.includes(v)) return false;
  throw new ConfigError(`${name} ${quote(value)} is not true or false (also yes/no, on/off, 1/0)`);
}

/** A path to a file; relative paths are left to the caller to resolve. */
export function pathValue(name: string, text: string): string {
  if (text === "" || text.includes("\0")) throw new ConfigError(`${name} ${quote(text)} is not a file path`);
  return text;
}

/**
 * Why a token cannot be used, or null when it can; never quotes it. A
 * wormhole.v1 call carries it in the `authorization` header, which takes
 * printable ASCII only (grpc-js throws on anything else) and loses leading
 * and trailing whitespace on the way (HTTP/2), while the seed API carries it
 * as it is: so only printable ASCII, and no space at either end. Pure.
 */
export function tokenProblem(text: string): string | null {
  if (text === "") return "is empty";
  if (/[\r\n]/.test(text)) return "has more than one line (not shown)";
  const bad = [...text].findIndex((c) => c < " " || c > "~");
  if (bad >= 0) return `has a character gRPC metadata cannot carry (character ${bad + 1}: a tab, a control character or one outside ASCII; only printable ASCII is allowed; the token is not shown)`;
  if (text !== text.trim()) return "begins or ends with a space, which HTTP/2 drops on the way (the token is not shown)";
  return null;
}

/** The token itself: never quoted in a message. */
export function tokenValue(name: string, text: string): string {
  const problem = tokenProblem(text);
  if (problem) throw new ConfigError(`${name} ${problem}`);
  return text;
}

/** Public-key pins: `sha256//BASE64`, several separated by commas. */
export function pinsValue(name: string, text: string): string[] {
  try {
    return parsePins(name, text);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}
