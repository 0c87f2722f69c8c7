/** Bounded polling and small concurrency helpers. The lab never sleeps a fixed time to wait for something. */
import { setTimeout as delay } from "node:timers/promises";

export class LabTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LabTimeoutError";
  }
}

export interface PollOptions {
  /** Give up after this many milliseconds. */
  readonly timeoutMs: number;
  /** Pause between attempts. Default 200. */
  readonly intervalMs?: number;
  /** Called before each attempt; throw to stop waiting (e.g. the lab is being torn down). */
  readonly check?: () => void;
}

/**
 * Calls `attempt` until it returns a value other than undefined, or the time is up
 * (then throws LabTimeoutError naming `what`, with the last error seen).
 */
export async function pollUntil<T>(what: string, attempt: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    options.check?.();
    try {
      const value = await attempt();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new LabTimeoutError(`timed out after ${options.timeoutMs} ms waiting for ${what}${why}`);
    }
    await delay(Math.min(options.intervalMs ?? 200, left));
  }
}

/** Promise.allSettled, then rethrows the first failure (after every task has finished). */
export async function allSettledOrThrow<T>(tasks: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(tasks);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
