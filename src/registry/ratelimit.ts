/**
 * Failed token attempts, limited per source: a token bucket for each source
 * address. Each failed attempt takes one token; a source with less than one
 * token left is refused before its token is even checked, until the bucket
 * refills. Successful calls take nothing. Pure apart from the injected clock.
 *
 * Memory is bounded: at most `maxSources` buckets, the least recently failed
 * forgotten first, and a bucket that has refilled completely is forgotten
 * (it says nothing a fresh one would not).
 *
 * A source is one IPv4 address, or one IPv6 /64: whoever holds an IPv6
 * address usually holds its whole /64, and could otherwise take a fresh
 * budget from each of 2^64 addresses (see {@link sourceKey}).
 */
import ipaddr from "ipaddr.js";
import { systemClock, type Clock } from "../util/clock.js";
import { callerIp } from "./identity.js";

export interface FailureLimitOptions {
  /** Failed attempts a source may make at once before it is refused. Default 10. */
  readonly burst?: number;
  /** One more failed attempt is allowed every this many milliseconds. Default 6000 (10 a minute). */
  readonly refillMs?: number;
  /** Sources tracked at most; the least recently failed is forgotten first. Default 10,000 (about 1 MB). */
  readonly maxSources?: number;
  /** Default the system clock. */
  readonly clock?: Clock;
}

export interface Refusal {
  /** Milliseconds until the source may try once more (at least 1). */
  readonly retryInMs: number;
  /** Whether to log this refusal: the first of this source in a window (burst × refillMs). */
  readonly log: boolean;
}

interface Bucket {
  /** Tokens at `atMs` (refilled since then at one per refillMs, up to burst). */
  tokens: number;
  atMs: number;
  /** When a refusal of this source was last logged. */
  loggedAtMs: number;
}

export class FailureLimiter {
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly maxSources: number;
  private readonly clock: Clock;
  /** In order of the last failure: the oldest first. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: FailureLimitOptions = {}) {
    this.burst = options.burst ?? 10;
    this.refillMs = options.refillMs ?? 6_000;
    this.maxSources = options.maxSources ?? 10_000;
    this.clock = options.clock ?? systemClock;
    if (!(this.burst >= 1) || !(this.refillMs > 0) || !(this.maxSources >= 1)) {
      throw new RangeError(`failure limit needs burst >= 1, refillMs > 0 and maxSources >= 1 (got ${this.burst}, ${this.refillMs}, ${this.maxSources})`);
    }
  }

  /** How many sources are tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Null when `source` may try its token; otherwise a refusal saying when it may. */
  check(source: string): Refusal | null {
    const now = this.clock.now();
    this.sweep(now);
    const b = this.buckets.get(source);
    if (b === undefined) return null;
    const tokens = this.tokensAt(b, now);
    if (tokens >= 1) return null;
    const log = now - b.loggedAtMs >= this.burst * this.refillMs;
    if (log) b.loggedAtMs = now;
    // (1e-6: 0.999 tokens at refill 1000 ms is 1 ms to go, not 1.0000000000000009.)
    return { retryInMs: Math.max(1, Math.ceil((1 - tokens) * this.refillMs - 1e-6)), log };
  }

  /**
   * For a plain rate limit (the same buckets, counting every attempt, not
   * only failures): null and one token spent when `source` may go on;
   * otherwise the refusal, nothing spent.
   */
  spend(source: string): Refusal | null {
    const refusal = this.check(source);
    if (refusal === null) this.fail(source);
    return refusal;
  }

  /** Counts one failed attempt of `source`. */
  fail(source: string): void {
    const now = this.clock.now();
    this.sweep(now);
    const old = this.buckets.get(source);
    const tokens = old === undefined ? this.burst : this.tokensAt(old, now);
    if (old === undefined) {
      while (this.buckets.size >= this.maxSources) {
        const oldest = this.buckets.keys().next();
        if (oldest.done) break;
        this.buckets.delete(oldest.value);
      }
    } else {
      this.buckets.delete(source); // re-inserted at the end: the most recent failure
    }
    this.buckets.set(source, { tokens: Math.max(0, tokens - 1), atMs: now, loggedAtMs: old?.loggedAtMs ?? -Infinity });
  }

  private tokensAt(b: Bucket, now: number): number {
    return Math.min(this.burst, b.tokens + Math.max(0, now - b.atMs) / this.refillMs);
  }

  /** Forgets buckets that have refilled, oldest first (amortized constant time). */
  private sweep(now: number): void {
    for (const [source, b] of this.buckets) {
      if (this.tokensAt(b, now) < this.burst) return;
      this.buckets.delete(source);
    }
  }
}

/**
 * The source a grpc-js peer string ("ipv4:203.0.113.5:4242", "ipv6:[2001:db8::1]:4242")
 * counts against: an IPv4 address as it is, an IPv6 address as its /64
 * ("2001:db8:0:0::/64"), anything else (a unix socket) as the whole string.
 */
export function sourceKey(peer: string): string {
  const ip = callerIp(peer);
  if (ip === null) return peer;
  const addr = ipaddr.parse(ip);
  if (addr.kind() === "ipv4") return ip;
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(":")}::/64`;
}
