/**
 * Quoting of untrusted values in error messages, wireguard-tools style: `value'.
 * Control characters are escaped and long values cut, so a message stays one readable line.
 */

const MAX_QUOTED = 120;

/** Quotes a value for an error message: `value' with control characters escaped, cut at 120 characters. */
export function quote(value: string): string {
  let text = value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value;
  text = text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `\`${text}'`;
}

/**
 * Quotes a value that comes from a stream which also carries secrets (the interface's private key,
 * preshared keys). A value holding a run of 16 or more key-like characters (hex or base64) could be
 * a piece of a secret that ended up in the wrong place, so it is described, never shown.
 */
export function quoteUntrusted(value: string): string {
  return mayHoldSecret(value) ? `<${value.length} characters, not shown>` : quote(value);
}

/** True when `value` has a run of 16 or more hex/base64 characters (a key, or a piece of one). */
export function mayHoldSecret(value: string): boolean {
  return /[A-Za-z0-9+/]{16,}/.test(value);
}
