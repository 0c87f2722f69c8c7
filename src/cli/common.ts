/** What the subcommands share: token sources, log flags, errors, signals. */
import { readFileSync, statSync } from "node:fs";
import { Option, type Command } from "commander";
import { parseDuration } from "../util/duration.js";
import { createLogger, LOG_LEVELS, type LogFormat, type LogLevel, type Logger } from "../util/log.js";

/** A bad flag or flag combination: printed without a stack, exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface TokenFlags {
  readonly token?: string;
  readonly tokenFile?: string;
}

export interface TokenSource {
  readonly token: string | null;
  /** Where it came from, for the log (never the token itself). */
  readonly from: "--token" | "--token-file" | "WORMHOLE_TOKEN" | "none";
}

/**
 * The shared token, from exactly one of: -t/--token (visible to every user
 * in the process list, so discouraged), --token-file PATH, or the
 * WORMHOLE_TOKEN environment variable.
 */
export function resolveToken(flags: TokenFlags, env: NodeJS.ProcessEnv = process.env): TokenSource {
  if (flags.token !== undefined && flags.tokenFile !== undefined) {
    throw new UsageError("give the token with only one of --token and --token-file");
  }
  if (flags.token !== undefined) {
    if (flags.token === "") throw new UsageError("--token is empty");
    return { token: flags.token, from: "--token" };
  }
  if (flags.tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.tokenFile, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String((err as Error).message);
      throw new UsageError(`cannot read --token-file \`${flags.tokenFile}': ${why}`);
    }
    const token = text.replace(/\r?\n$/, "");
    if (token === "") throw new UsageError(`--token-file \`${flags.tokenFile}' is empty`);
    if (token.includes("\n")) throw new UsageError(`--token-file \`${flags.tokenFile}' has more than one line`);
    return { token, from: "--token-file" };
  }
  const fromEnv = env.WORMHOLE_TOKEN;
  if (fromEnv !== undefined && fromEnv !== "") return { token: fromEnv, from: "WORMHOLE_TOKEN" };
  return { token: null, from: "none" };
}

/** Warns when a token file can be read by others than its owner. */
export function tokenFileWarnings(path: string | undefined): string[] {
  if (path === undefined) return [];
  try {
    const mode = statSync(path).mode & 0o077;
    return mode ? [`--token-file \`${path}' can be read by other users (mode ${(statSync(path).mode & 0o777).toString(8)}); chmod 600 it`] : [];
  } catch {
    return [];
  }
}

export function durationOption(flag: string, options: { allowZero?: boolean } = {}) {
  return (value: string): number => {
    try {
      if (options.allowZero && value.trim() === "0") return 0;
      const ms = parseDuration(value, flag);
      if (ms <= 0 && !options.allowZero) throw new Error(`${flag} \`${value}' must be more than zero`);
      return ms;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
}

export function integerOption(flag: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new UsageError(`${flag} \`${value}' is not a whole number from ${min} to ${max}`);
    }
    return Number(value);
  };
}

export interface LogFlags {
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

export function addLogOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS).default("info"))
    .addOption(new Option("--log-format <format>", "log format").choices(["text", "json"]).default("text"));
}

export function loggerFor(flags: LogFlags): Logger {
  return createLogger({ level: flags.logLevel, format: flags.logFormat });
}

/** Runs `stop` on SIGINT/SIGTERM, then exits 0. */
export function stopOnSignal(logger: Logger, stop: () => Promise<void> | void): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    void Promise.resolve()
      .then(stop)
      .catch((err: unknown) => logger.error({ err: String(err) }, "error while stopping"))
      .finally(() => process.exit(0));
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
