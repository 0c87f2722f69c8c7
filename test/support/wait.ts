import { pollUntil, type Truthy } from "../../src/util/wait.js";

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws, naming `what`): src/util/wait.ts's pollUntil with the tests' defaults. */
export function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 20): Promise<Truthy<T>> {
  return pollUntil(what, check, { timeoutMs, intervalMs: everyMs });
}
