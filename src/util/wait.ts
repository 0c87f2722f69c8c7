/**
 * The one bounded poll: ask again until the answer is yes or the deadline
 * passes. Used by the lab, the benchmarks and the tests (test/support/wait.ts)
 * wherever they wait for something outside their control (a socket file, a
 * log line, a handshake), so none of them sleeps a fixed time instead.
 */
import { setTimeout as delay } from "node:timers/promises";

/** A poll that ran out of time; the message names what was awaited. */
export class WaitTimeoutError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WaitTimeoutError";
  }
}

export interface PollOptions {
  /** Give up after this many milliseconds. */
  readonly timeoutMs: number;
  /** Pause between attempts. Default 200. */
  readonly intervalMs?: number;
  /**
   * Called before each attempt; throw to stop waiting at once (the lab is
   * being torn down, the process that was to make the file has exited).
   * An error thrown by `attempt` itself is only remembered and tried again.
   */
  readonly check?: () => void;
}

/** What a successful attempt returns: anything but undefined, null, false, 0 or "". */
export type Truthy<T> = Exclude<T, undefined | null | false | 0 | "">;

/**
 * Calls `attempt` until it returns a truthy value, and returns that value. At
 * the deadline throws WaitTimeoutError "timed out after N ms waiting for
 * WHAT", with the last error `attempt` threw, if the last attempt threw.
 */
export async function pollUntil<T>(what: string, attempt: () => T | Promise<T>, options: PollOptions): Promise<Truthy<T>> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.check?.();
    let lastError: unknown;
    try {
      const value = await attempt();
      if (value) return value as Truthy<T>;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const why = lastError === undefined ? "" : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new WaitTimeoutError(`timed out after ${options.timeoutMs} ms waiting for ${what}${why}`, lastError === undefined ? undefined : { cause: lastError });
    }
    await delay(Math.min(options.intervalMs ?? 200, left));
  }
}
