/** What the subcommands share: config layers, token sources, log flags, errors, signals. */
import { InvalidArgumentError, Option, type Command } from "commander";
import {
  CONFIG_ENV,
  ConfigError,
  configPathFromEnv,
  describeOrigin,
  KEYS,
  loadConfigFile,
  resolveTokenChoice,
  secretFileWarnings,
  type ConfigFile,
  type KeySpec,
  type Layer,
  type Role,
  type TokenChoice,
} from "../config/index.js";
import { quote } from "../wg/quote.js";
import { createLogger, type LogFormat, type LogLevel, type Logger } from "../util/log.js";

/** A bad flag or flag combination: printed without a stack, exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface LogFlags {
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
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
function listOption(flag: string, check: (name: string, text: string) => unknown) {
  return (value: string, previous: string[] | undefined): string[] =>
    asUsage(() => {
      const all = [...(previous ?? [])];
      for (const v of check(flag, value) as string[]) {
        if (all.includes(v)) throw new ConfigError(`${flag} names ${quote(v)} twice`);
        all.push(v);
      }
      return all;
    });
}

/**
 * A flag parser for a setting with a few allowed values: the setting's own
 * check, failing as commander's choices do (its message lists them; exit
 * status 1), which users and tests have known since the seed.
 */
function choiceOption(flag: string, check: (name: string, text: string) => unknown, choices: readonly string[]) {
  return (value: string): unknown => {
    try {
      return check(flag, value);
    } catch (err) {
      if (err instanceof ConfigError) throw new InvalidArgumentError(`Allowed choices are ${choices.join(", ")}.`);
      throw err;
    }
  };
}

/** A default as --help shows it: quoted when it does not begin with a letter or digit (":1638", "/run/…"). */
function showDefault(text: string): string {
  return /^[A-Za-z0-9]/.test(text) ? text : JSON.stringify(text);
}

/** The help line of a setting: its text, then what it is when not given. A boolean's text says that itself. */
function optionHelp(spec: KeySpec, help: string): string {
  if (spec.required !== undefined) return `${help} (required)`;
  if (spec.kind === "boolean") return help;
  if (spec.choices !== undefined) return `${help}: ${spec.choices.join(", ")} (default: ${spec.default ?? spec.unset ?? "none"})`;
  if (spec.default !== undefined) return `${help} (default: ${showDefault(spec.default)})`;
  if (spec.unset !== undefined) return `${help} (default: ${spec.unset})`;
  return help;
}

/** The flags a setting is given by: the one --help shows first, then the hidden spellings. */
function spellings(spec: KeySpec): string[] {
  const shown = spec.shown ?? spec.flag;
  return [shown, ...(spec.hidden ?? []).filter((h) => h !== shown)];
}

/** The commander options of one setting: its flag (and short flag), and its hidden spellings, each checked by the setting's own parse. */
function settingOptions(spec: KeySpec, help: string): Option[] {
  const arg = spec.arg === undefined ? "" : ` <${spec.arg}>`;
  return spellings(spec).map((flag, i) => {
    const option = i === 0 ? new Option(`${spec.short ? `${spec.short}, ` : ""}${flag}${arg}`, optionHelp(spec, help)) : new Option(`${flag}${arg}`).hideHelp();
    if (spec.kind === "boolean") return option;
    if (spec.choices) return option.argParser(choiceOption(flag, spec.parse, spec.choices));
    return spec.repeats ? option.argParser(listOption(flag, spec.parse)) : option.argParser(configOption(flag, spec.parse));
  });
}

/**
 * Adds the flags of `role`'s settings (`keys`, in this order; all of them by
 * default) to `cmd`, built from the table in src/config/settings.ts: their
 * spellings, argument names, help text (`help` overrides a key's, for a
 * command that uses it differently), checks and shown defaults. Commander
 * applies no default of its own: read the values with {@link flagValues},
 * and the defaults come with mergeNode/mergeRegistry, below the environment
 * and the config file.
 */
export function addSettingOptions(cmd: Command, role: Role, keys: readonly string[] = Object.keys(KEYS[role]), help: Readonly<Record<string, string>> = {}): Command {
  for (const key of keys) {
    const spec = KEYS[role][key];
    if (spec === undefined) throw new Error(`no ${role} setting ${key}`);
    for (const option of settingOptions(spec, help[key] ?? spec.help)) {
      cmd.addOption(option);
      // A lone --no-relay makes commander default relay to true: not a value anyone gave.
      if (cmd.getOptionValueSource(option.attributeName()) === "default") cmd.setOptionValueWithSource(option.attributeName(), undefined, "default");
    }
  }
  return cmd;
}

/**
 * The settings the user gave on the command line (see
 * {@link addSettingOptions}), by settings key: checked values, nothing for a
 * flag not given. Of a setting's spellings, the one --help shows wins.
 */
export function flagValues(cmd: Command, role: Role, keys: readonly string[] = Object.keys(KEYS[role])): Record<string, unknown> {
  const opts = cmd.opts<Record<string, unknown>>();
  const values: Record<string, unknown> = {};
  for (const key of keys) {
    const spec = KEYS[role][key];
    if (spec === undefined) continue;
    for (const flag of spellings(spec)) {
      const attr = new Option(flag).attributeName();
      const value = opts[attr];
      if (cmd.getOptionValueSource(attr) !== "cli" || value === undefined) continue;
      values[key] = spec.kind === "boolean" ? asUsage(() => spec.parse(flag, value as boolean)) : value;
      break;
    }
  }
  return values;
}

export function addConfigOption(cmd: Command, role: Role): Command {
  return cmd.option("-c, --config <path>", `read settings from this TOML file (its [${role}] and [names] tables); also ${CONFIG_ENV}`);
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

/** Help text after the flags: the environment variables of `keys`, the config file, the precedence, and where every setting is described. */
export function configHelp(role: Role, keys: readonly string[] = Object.keys(KEYS[role])): string {
  const envVars = keys.map((k) => KEYS[role][k]?.env).filter((e) => e !== undefined);
  return [
    "",
    `Every flag can also be set as an environment variable (${envVars.join(", ")})`,
    `or in the [${role}] table of the config file (--config or ${CONFIG_ENV}; keys are the long flags in snake_case,`,
    `e.g. token_file, log_level). Precedence: flag > environment > config file > default.`,
    "Every setting, with its variable, file key and default: docs/config.md.",
    "",
  ].join("\n");
}
