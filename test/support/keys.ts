/** Deterministic, valid WireGuard public keys for tests: key(1), key(2), ... */
export function key(n: number): string {
  return Buffer.alloc(32, n).toString("base64");
}
