import { createHash, timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";

/**
 * Constant-time token check. Both sides are hashed first so that neither the
 * comparison time nor an early length mismatch says anything about the token.
 * A registry started without a token accepts every caller.
 */
export function tokenMatches(expected: string | null, given: string): boolean {
  if (expected === null) return true;
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(given).digest();
  return timingSafeEqual(a, b);
}

const BEARER = /^Bearer (.+)$/;

/** The token of a wormhole.v1 call: metadata `authorization: Bearer <token>`. */
export function tokenFromMetadata(metadata: Metadata): string {
  const value = metadata.get("authorization")[0];
  if (typeof value !== "string") return "";
  return BEARER.exec(value)?.[1] ?? "";
}
