/**
 * Exponential backoff with full jitter: attempt 0 waits up to minMs, each
 * further attempt doubles the ceiling, capped at maxMs. `random` is injected
 * so tests are deterministic.
 */
export interface BackoffOptions {
  readonly minMs: number;
  readonly maxMs: number;
  readonly random?: () => number;
}

export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxMs, options.minMs * 2 ** Math.min(attempt, 30));
  const r = (options.random ?? Math.random)();
  // Never below half the ceiling, so a failing registry is not hammered.
  return Math.round(ceiling / 2 + (r * ceiling) / 2);
}
