/**
 * Runs every fuzz target, one after another, each in its own watched worker
 * (see lib.ts), and prints each one's cases, time and failures, and the total.
 *
 *   node --import tsx fuzz/run-all.ts [--runs N] [--seed S] [--timeout-ms T] [--only a,b]
 *
 * Exit status 1 when any target failed, hung or crashed. Not part of `npm test`
 * (at 100,000 cases a target it takes seconds to a minute); the unit tests run
 * every target with a few hundred cases (test/unit/fuzz-targets.test.ts).
 */
import { formatReport, runInWorker, type FuzzReport } from "./lib.js";

export const TARGETS = ["uapi-get", "wg-dump", "endpoint", "duration", "config-file", "watch-event", "report-check", "caller-ip", "grpc-decode", "stun"] as const;

const args = process.argv.slice(2);
const value = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = Number(value("--runs") ?? 100_000);
const seed = value("--seed") === undefined ? undefined : Number(value("--seed"));
const timeoutMs = value("--timeout-ms") === undefined ? undefined : Number(value("--timeout-ms"));
const only = value("--only")?.split(",");

const started = performance.now();
const reports: FuzzReport[] = [];
for (const name of TARGETS) {
  if (only && !only.includes(name)) continue;
  const url = new URL(`./${name}.ts`, import.meta.url).href;
  const report = await runInWorker(url, name, { runs, ...(seed !== undefined ? { seed } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  console.log(formatReport(report, `fuzz/${name}.ts`));
  reports.push(report);
}
const failed = reports.filter((r) => r.failure !== null);
const cases = reports.reduce((n, r) => n + r.runs, 0);
console.log(`\n${reports.length} targets, ${cases} cases in ${((performance.now() - started) / 1000).toFixed(1)} s; ${failed.length === 0 ? "no failures" : `FAILED: ${failed.map((r) => r.name).join(", ")}`}`);
process.exit(failed.length === 0 ? 0 : 1);
