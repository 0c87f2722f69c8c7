/**
 * Peer names: what people call the peers whose keys WireGuard shows. Given
 * in the config file's `[names]` table (public key = name); anything that
 * shows a peer to a person uses {@link peerLabel}.
 */
import { checkKey } from "../wg/keys.js";
import { quote } from "../wg/quote.js";
import { ConfigError } from "./values.js";

/** Public key (base64) → name. */
export type PeerNames = ReadonlyMap<string, string>;

export const NO_NAMES: PeerNames = new Map();

export const MAX_NAME_LENGTH = 64;

/** The first 8 characters of a key and an ellipsis, as a peer without a name is shown. */
export function shortKey(publicKey: string): string {
  return publicKey.length > 8 ? `${publicKey.slice(0, 8)}…` : publicKey;
}

/** The peer's name when it has one, else its short key. */
export function peerLabel(names: PeerNames, publicKey: string): string {
  return names.get(publicKey) ?? shortKey(publicKey);
}

/**
 * Checks a `[names]` table: every key a WireGuard public key, every name a
 * string of 1-64 characters without control characters, no name given twice.
 * Returns every problem (empty when none) rather than stopping at the first.
 */
export function checkNames(table: Readonly<Record<string, unknown>>): { names: PeerNames; problems: string[] } {
  const names = new Map<string, string>();
  const problems: string[] = [];
  const owner = new Map<string, string>();
  for (const [key, value] of Object.entries(table)) {
    try {
      checkKey(key, "public key");
    } catch {
      problems.push(`names: key ${quote(key)} is not a WireGuard public key (44 characters of base64, ending in '=')`);
      continue;
    }
    if (typeof value !== "string") {
      problems.push(`names: the name of ${quote(key)} must be a string (got ${describeType(value)})`);
      continue;
    }
    if (value.trim() === "" || value.length > MAX_NAME_LENGTH) {
      problems.push(`names: the name of ${quote(key)}, ${quote(value)}, must have 1 to ${MAX_NAME_LENGTH} characters`);
      continue;
    }
    if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) {
      problems.push(`names: the name of ${quote(key)}, ${quote(value)}, has a control character`);
      continue;
    }
    const other = owner.get(value);
    if (other !== undefined) {
      problems.push(`names: ${quote(value)} is the name of both ${quote(other)} and ${quote(key)}`);
      continue;
    }
    owner.set(value, key);
    names.set(key, value);
  }
  return { names, problems };
}

/** Like {@link checkNames}, throwing one ConfigError with every problem. */
export function parseNames(table: Readonly<Record<string, unknown>>): PeerNames {
  const { names, problems } = checkNames(table);
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
  return names;
}

/** "a number", "a table", ... for type errors. */
export function describeType(value: unknown): string {
  if (value === null) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
    case "bigint":
      return "a number";
    case "boolean":
      return "a boolean";
    case "object":
      return "a table";
    default:
      return typeof value;
  }
}
