/**
 * Public-key pins, as curl's --pinnedpubkey and HPKP wrote them:
 * `sha256//` and the base64 SHA-256 of the certificate's SubjectPublicKeyInfo
 * (DER). A pin names a key, not a certificate, so it survives renewing a
 * certificate with the same key. Pure, except for hashing.
 */
import { createHash, X509Certificate } from "node:crypto";
import { quote } from "../wg/quote.js";

const PIN = /^sha256\/\/([A-Za-z0-9+/]{43}=)$/;

/** The pin of a certificate (DER or PEM). */
export function certificatePin(cert: X509Certificate | Buffer | string): string {
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const spki = x509.publicKey.export({ type: "spki", format: "der" });
  return `sha256//${createHash("sha256").update(spki).digest("base64")}`;
}

/**
 * Reads a comma-separated list of pins (several allow a key change without a
 * flag day: pin the next key before the registry uses it). Throws an Error
 * naming `name` and quoting the bad entry.
 */
export function parsePins(name: string, text: string): string[] {
  const pins = text.split(",").map((p) => p.trim());
  if (pins.length === 0 || pins.every((p) => p === "")) throw new Error(`${name} is empty`);
  for (const p of pins) {
    const m = PIN.exec(p);
    // 43 base64 characters and '=' are 32 bytes only when the last character carries no spare bits.
    if (!m || Buffer.from(m[1] as string, "base64").length !== 32 || Buffer.from(m[1] as string, "base64").toString("base64") !== m[1]) {
      throw new Error(
        `${name} ${quote(p)} is not a public-key pin: sha256// and the base64 SHA-256 of the certificate's public key (the registry logs its own at start)`,
      );
    }
  }
  return [...new Set(pins)];
}
