import { spawn } from "node:child_process";

/** The result of one finished command. */
export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface RunOptions {
  /** Text written to the command's standard input (the way secrets are passed: never in argv). */
  readonly input?: string;
  /** Kill the command after this many milliseconds. Default 10 000. */
  readonly timeoutMs?: number;
  /** Do not throw on a non-zero exit status; return it instead. */
  readonly allowFailure?: boolean;
}

/** Runs a program with an argv array (never a shell string). Swapped for a fake in tests. */
export type Runner = (argv: readonly string[], options?: RunOptions) => Promise<RunResult>;

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult | null,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CommandError";
  }
}

function quote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

/** The real runner: LC_ALL=C, argv array, stderr quoted in errors. */
export const runCommand: Runner = (argv, options = {}) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new CommandError(argv, null, "empty command"));
      return;
    }
    const child = spawn(file, args, {
      env: { ...process.env, LC_ALL: "C" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 10_000);
    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === "ENOENT" ? `${file}: command not found` : `${file}: ${err.message}`;
      reject(new CommandError(argv, null, why, { cause: err }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { stdout, stderr, code: code ?? 128 };
      if (result.code !== 0 && !options.allowFailure) {
        const how = signal ? `killed by ${signal}` : `exit status ${result.code}`;
        const detail = stderr.trim() || stdout.trim();
        reject(new CommandError(argv, result, `\`${quote(argv)}\` failed (${how})${detail ? `: ${detail}` : ""}`));
        return;
      }
      resolve(result);
    });
    child.stdin.on("error", () => {
      /* the command may exit before reading its input; its exit status tells */
    });
    child.stdin.end(options.input ?? "");
  });
