/**
 * WireGuard keys: 32 bytes, shown as base64 (44 characters, one '=' of padding) by `wg` and
 * in wormhole, and as lowercase hex (64 characters) on the userspace control socket.
 *
 * Invalid input from a caller is a TypeError whose message names the thing and quotes the value,
 * never for a secret (private or preshared) key, which is only described.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { quote } from "./quote.js";

export const KEY_BYTES = 32;

/** 42 free characters, then one whose low 2 bits are 0 (32 bytes leave 4 spare bits), then '='. */
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;

export interface KeyCheckOptions {
  /** The value is a secret: the error message must not show it. Default false. */
  readonly secret?: boolean;
}

/** True when `text` is a canonical base64 WireGuard key. */
export function isKey(text: string): boolean {
  return BASE64_KEY.test(text);
}

/** True when `text` is a 64-digit hex key (either case). */
export function isHexKey(text: string): boolean {
  return HEX_KEY.test(text);
}

/**
 * Returns `text` when it is a canonical base64 key; otherwise throws a TypeError such as
 * ``public key is not 32 bytes of base64: `abc'``.
 * @param what what the key is, for the message (default "key").
 */
export function checkKey(text: string, what = "key", options: KeyCheckOptions = {}): string {
  if (typeof text !== "string" || !BASE64_KEY.test(text)) {
    const shown = options.secret ? `(${describe(text)}, not shown)` : typeof text === "string" ? quote(text) : `(${describe(text)})`;
    throw new TypeError(`${what} is not 32 bytes of base64: ${shown}`);
  }
  return text;
}

/** Base64 key → lowercase hex, as the userspace socket wants it. Throws TypeError when invalid. */
export function keyToHex(base64: string, what = "key", options: KeyCheckOptions = {}): string {
  checkKey(base64, what, options);
  return Buffer.from(base64, "base64").toString("hex");
}

/** Hex key (either case) → base64. Throws TypeError when invalid. */
export function keyFromHex(hex: string, what = "key", options: KeyCheckOptions = {}): string {
  if (typeof hex !== "string" || !HEX_KEY.test(hex)) {
    const shown = options.secret ? `(${describe(hex)}, not shown)` : typeof hex === "string" ? quote(hex) : `(${describe(hex)})`;
    throw new TypeError(`${what} is not 32 bytes of hex: ${shown}`);
  }
  return Buffer.from(hex, "hex").toString("base64");
}

/** PKCS#8 wrapping of a raw X25519 private key (RFC 8410): SEQUENCE { 0, { id-X25519 }, OCTET STRING { OCTET STRING (32) } }. */
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/**
 * The base64 public key of a raw 32-byte private key (Curve25519, clamped as WireGuard does;
 * matches `wg pubkey`). Node 20 refuses a JWK without `x`, so the key goes in as PKCS#8 DER.
 * The DER copy of the secret is wiped after use; wiping `raw32` is the caller's business.
 */
export function publicKeyFromPrivate(raw32: Buffer): string {
  if (!Buffer.isBuffer(raw32) || raw32.length !== KEY_BYTES) {
    throw new TypeError(`private key is not ${KEY_BYTES} bytes (got ${Buffer.isBuffer(raw32) ? raw32.length : typeof raw32}, not shown)`);
  }
  const der = Buffer.concat([PKCS8_X25519_PREFIX, raw32]);
  try {
    const jwk = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" })).export({ format: "jwk" });
    if (typeof jwk.x !== "string") throw new Error("no public key in the derived JWK");
    return Buffer.from(jwk.x, "base64url").toString("base64");
  } finally {
    der.fill(0);
  }
}

/** True when every byte is 0 (WireGuard's "no key"). */
export function isZeroKey(raw: Buffer): boolean {
  for (const b of raw) if (b !== 0) return false;
  return true;
}

function describe(value: unknown): string {
  return typeof value === "string" ? `${value.length} characters` : typeof value;
}
