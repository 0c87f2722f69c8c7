/** What the subcommands share: config layers, token sources, log flags, errors, signals. */
import { Option, type Command } from "commander";
import {
  CONFIG_ENV,
  ConfigError,
  configPathFromEnv,
  describeOrigin,
  loadConfigFile,
  resolveTokenChoice,
  secretFileWarnings,
  type ConfigFile,
  type Layer,
  type Role,
  type TokenChoice,
} from "../config/index.js";
import { parseDuration } from "../util/duration.js";
import { quote } from "../wg/quote.js";
import { createLogger, LOG_LEVELS, type LogFormat, type LogLevel, type Logger } from "../util/log.js";

/** A bad flag or flag combination: printed without a stack, exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
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

/** Runs `fn`, turning a ConfigError (bad file, variable or combination) into a UsageError (exit status 2). */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/** A flag parser from a config value check: the same rules, the flag's name in the message. */
export function configOption<T>(flag: string, check: (name: string, text: string) => T) {
  return (value: string): T => asUsage(() => check(flag, value));
}

/**
 * An argument parser for a flag that may be given several times, each time
 * one value or a comma-separated list: the lists are joined, in order, and
 * the same value twice is an error naming it.
 */
export function listOption(flag: string, check: (name: string, text: string) => string[]) {
  return (value: string, previous: string[] | undefined): string[] =>
    asUsage(() => {
      const all = [...(previous ?? [])];
      for (const v of check(flag, value)) {
        if (all.includes(v)) throw new ConfigError(`${flag} names ${quote(v)} twice`);
        all.push(v);
      }
      return all;
    });
}

export function addConfigOption(cmd: Command, role: Role): Command {
  return cmd.option("-c, --config <path>", `read settings from this TOML file (its [${role}] and [names] tables); also ${CONFIG_ENV}`);
}

/**
 * The values the user typed on the command line (not commander's defaults),
 * renamed to settings keys: `attributes` maps a settings key to the
 * commander attribute(s) that give it, first one given wins.
 */
export function cliValues(cmd: Command, attributes: Readonly<Record<string, string | readonly string[]>>): Record<string, unknown> {
  const opts = cmd.opts<Record<string, unknown>>();
  const values: Record<string, unknown> = {};
  for (const [key, attrs] of Object.entries(attributes)) {
    for (const attr of typeof attrs === "string" ? [attrs] : attrs) {
      if (cmd.getOptionValueSource(attr) === "cli" && opts[attr] !== undefined) {
        values[key] = opts[attr];
        break;
      }
    }
  }
  return values;
}

/** The config file from --config or WORMHOLE_CONFIG, read and checked; null when neither is given. */
export function configFileFor(configFlag: string | undefined, env: NodeJS.ProcessEnv): ConfigFile | null {
  const path = configFlag ?? configPathFromEnv(env);
  return path === null ? null : asUsage(() => loadConfigFile(path));
}

/** The layers, highest first: flags, environment, then the file's table for `role` (when it has one). */
export function layersFor<V>(cli: V, env: V, file: ConfigFile | null, table: V | null): Layer<V>[] {
  const layers: Layer<V>[] = [
    { source: { kind: "flags" }, values: cli },
    { source: { kind: "env" }, values: env },
  ];
  if (file && table) layers.push({ source: { kind: "file", path: file.path }, values: table });
  return layers;
}

/** Reads the token a merged setting points at; UsageError when its file cannot be read. */
export function tokenFor(choice: TokenChoice): string | null {
  return asUsage(() => resolveTokenChoice(choice));
}

/** What to warn about once the logger exists: secrets others can read, a token on the command line, a file without our table. */
export function startupWarnings(role: Role, choice: TokenChoice, file: ConfigFile | null): string[] {
  const warnings = secretFileWarnings(choice, file);
  if (choice.kind === "value" && choice.origin.name === "--token") {
    warnings.push(`--token is visible to every user in the process list; prefer --token-file, WORMHOLE_TOKEN or token_file in the config file`);
  }
  if (file && file[role] === null) warnings.push(`config ${file.path} has no [${role}] table; using flags, environment and defaults only`);
  return warnings;
}

/**
 * What both subcommands do once their settings are merged: read the token,
 * make the logger, and log the warnings and where things came from.
 */
export function startUp(role: Role, settings: LogFlags & { readonly token: TokenChoice }, file: ConfigFile | null): { token: string | null; logger: Logger } {
  const token = tokenFor(settings.token);
  const logger = loggerFor(settings);
  for (const w of startupWarnings(role, settings.token, file)) logger.warn(w);
  if (file) logger.info({ config: file.path, names: file.names.size }, "config file read");
  logger.debug({ tokenFrom: tokenOrigin(settings.token) }, "token source");
  return { token, logger };
}

/** Where the token came from, for the log (never the token). */
export function tokenOrigin(choice: TokenChoice): string {
  return choice.kind === "none" ? "none" : describeOrigin(choice.origin);
}

/** Help text listing the environment variables and the config file, after the flags. */
export function configHelp(role: Role, envVars: readonly string[]): string {
  return [
    "",
    `Every flag can also be set as an environment variable (${envVars.join(", ")})`,
    `or in the [${role}] table of the config file (--config or ${CONFIG_ENV}; keys are the long flags in snake_case,`,
    `e.g. token_file, log_level). Precedence: flag > environment > config file > default.`,
    "",
  ].join("\n");
}
