/** Bounded polling (src/util/wait.ts) and small concurrency helpers. The lab never sleeps a fixed time to wait for something. */
export { type PollOptions, pollUntil, WaitTimeoutError as LabTimeoutError } from "../util/wait.js";

/** Promise.allSettled, then rethrows the first failure (after every task has finished). */
export async function allSettledOrThrow<T>(tasks: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(tasks);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
