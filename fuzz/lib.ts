/**
 * The fuzz harness: one target per parser (fuzz/<name>.ts), each a
 * fast-check arbitrary and a check that throws when the parser misbehaves.
 *
 *   node --import tsx fuzz/<name>.ts [--runs N] [--seed S] [--path P] [--timeout-ms T]
 *
 * A target runs in a worker thread watched from the main thread: a case
 * that takes longer than --timeout-ms (default 10 s; a synchronous loop
 * cannot be interrupted from inside) or a crash (out of memory included:
 * the worker has a 2 GB heap) ends the run with exit status 1, as does a
 * failed check. Every report prints the seed; `--seed S --path P` replays
 * the case (P is the case number for a hang, fast-check's path for a failure).
 * Async checks also have fast-check's own per-case timeout.
 *
 * The unit tests run every target with a few hundred cases in-process
 * (test/unit/fuzz-targets.test.ts); fuzz/run-all.ts runs them all at full size.
 */
import fc from "fast-check";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

export interface FuzzTarget<T> {
  /** The file's name without .ts, e.g. "uapi-get". */
  readonly name: string;
  /** What is fuzzed, for the report. */
  readonly about: string;
  readonly arbitrary: fc.Arbitrary<T>;
  /** Throws (an assertion) when the parser misbehaved on `input`. */
  readonly check: (input: T) => void | Promise<void>;
}

export interface FuzzOptions {
  /** Cases to run. Default 100,000. */
  readonly runs?: number;
  /** Default: random, printed. */
  readonly seed?: number;
  /** Replays one case: fast-check's counterexample path, or a case number. */
  readonly path?: string;
  /** A case running longer than this is a hang. Default 10,000. */
  readonly timeoutMs?: number;
}

export interface FuzzReport {
  readonly name: string;
  readonly runs: number;
  readonly ms: number;
  readonly seed: number;
  readonly failure: string | null;
  readonly path: string | null;
}

const DEFAULT_RUNS = 100_000;
const DEFAULT_TIMEOUT_MS = 10_000;

function property<T>(target: FuzzTarget<T>, onCase: () => void) {
  return fc.asyncProperty(target.arbitrary, async (input) => {
    onCase();
    await target.check(input);
  });
}

function describeFailure<Ts>(details: fc.RunDetails<Ts>): string {
  const err = details.errorInstance;
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  let example: string;
  try {
    example = fc.stringify(details.counterexample);
  } catch {
    example = "(cannot be shown)";
  }
  if (example.length > 2000) example = `${example.slice(0, 2000)}… (${example.length} characters)`;
  return `${message.split("\n").slice(0, 8).join("\n")}\n  counterexample: ${example}`;
}

/** Runs `target` in this thread (no watchdog: a synchronous hang hangs the caller). */
export async function runInline<T>(target: FuzzTarget<T>, options: FuzzOptions = {}, onCase: () => void = () => {}): Promise<FuzzReport> {
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x100000000)) | 0;
  const started = performance.now();
  let runs = 0;
  const details = await fc.check(
    property(target, () => {
      runs++;
      onCase();
    }),
    {
      numRuns: options.runs ?? DEFAULT_RUNS,
      seed,
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ...(options.path !== undefined ? { path: options.path } : {}),
    },
  );
  return {
    name: target.name,
    runs: details.failed ? details.numRuns : runs,
    ms: performance.now() - started,
    seed,
    failure: details.failed ? describeFailure(details) : null,
    path: details.failed ? (details.counterexamplePath ?? null) : null,
  };
}

interface WorkerInput {
  readonly fuzzUrl: string;
  readonly options: FuzzOptions & { seed: number };
  readonly progress: SharedArrayBuffer;
}

/** Runs the target of module `url` in a worker thread, watched for hangs and crashes. */
export function runInWorker(url: string, name: string, options: FuzzOptions = {}): Promise<FuzzReport> {
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x100000000)) | 0;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const progress = new SharedArrayBuffer(4);
  const cases = new Int32Array(progress);
  const input: WorkerInput = { fuzzUrl: url, options: { ...options, seed }, progress };
  const started = performance.now();
  // The worker loads tsx first (the --import of the main thread does not reach workers), then the target.
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(url)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: input, resourceLimits: { maxOldGenerationSizeMb: 2048 } });
  return new Promise((resolve) => {
    let done = false;
    let last = -1;
    let lastChange = performance.now();
    const finish = (report: FuzzReport) => {
      if (done) return;
      done = true;
      clearInterval(watchdog);
      void worker.terminate();
      resolve(report);
    };
    const stopped = (why: string, pathOfCase: boolean): FuzzReport => {
      const n = Atomics.load(cases, 0);
      return { name, runs: n, ms: performance.now() - started, seed, failure: `${why} in case ${n - 1}`, path: pathOfCase ? String(Math.max(0, n - 1)) : null };
    };
    const watchdog = setInterval(() => {
      const n = Atomics.load(cases, 0);
      if (n !== last) {
        last = n;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > timeoutMs) {
        finish(stopped(`hang: no progress for ${timeoutMs} ms`, true));
      }
    }, Math.min(250, timeoutMs / 4));
    worker.on("message", (report: FuzzReport) => finish(report));
    worker.on("error", (err) => finish(stopped(`crash: ${err.message}`, true)));
    worker.on("exit", (code) => finish(stopped(`the worker exited (status ${code}) without a report`, true)));
  });
}

function parseArgs(argv: readonly string[]): FuzzOptions {
  const out: { runs?: number; seed?: number; path?: string; timeoutMs?: number } = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const number = () => {
      const n = Number(value);
      if (value === undefined || !Number.isInteger(n)) throw new Error(`${flag} needs a whole number (got ${value})`);
      i++;
      return n;
    };
    if (flag === "--runs") out.runs = number();
    else if (flag === "--seed") out.seed = number();
    else if (flag === "--timeout-ms") out.timeoutMs = number();
    else if (flag === "--path" && value !== undefined) {
      out.path = value;
      i++;
    } else throw new Error(`unknown argument ${flag}; use --runs N, --seed S, --path P, --timeout-ms T`);
  }
  return out;
}

export function formatReport(r: FuzzReport, file: string): string {
  const secs = (r.ms / 1000).toFixed(1);
  const rate = r.ms > 0 ? Math.round((r.runs * 1000) / r.ms) : 0;
  if (r.failure === null) return `${r.name}: ${r.runs} cases in ${secs} s (${rate}/s), 0 failures, seed ${r.seed}`;
  const replay = `node --import tsx ${file} --seed ${r.seed}${r.path !== null ? ` --path ${r.path}` : ""}`;
  return `${r.name}: FAILED after ${r.runs} cases in ${secs} s, seed ${r.seed}\n  ${r.failure.replace(/\n/g, "\n  ")}\n  replay: ${replay}`;
}

/**
 * Call at the bottom of every target file: in a worker started for it, runs
 * the target and reports to the parent; run as a program, parses the flags,
 * runs it in a worker and prints the report; imported, does nothing.
 */
export async function main<T>(url: string, target: FuzzTarget<T>): Promise<void> {
  if (!isMainThread) {
    const input = workerData as Partial<WorkerInput> | null;
    if (input?.fuzzUrl !== url || !input.progress || !input.options) return;
    const cases = new Int32Array(input.progress);
    const report = await runInline(target, input.options, () => Atomics.add(cases, 0, 1));
    parentPort?.postMessage(report);
    return;
  }
  if (process.argv[1] === undefined || fileURLToPath(url) !== process.argv[1]) return;
  let options: FuzzOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`fuzz ${target.name}: ${(err as Error).message}`);
    process.exit(2);
  }
  console.log(`fuzz ${target.name}: ${target.about}`);
  const report = await runInWorker(url, target.name, options);
  console.log(formatReport(report, `fuzz/${target.name}.ts`));
  process.exit(report.failure === null ? 0 : 1);
}
