/** The I/O around the pure parsers: reading the config file and the token file, and their modes. */
import { readFileSync, statSync } from "node:fs";
import { fileErrorReason } from "../util/file-error.js";
import { quote } from "../wg/quote.js";
import { parseConfig, type ConfigFile } from "./file.js";
import { describeOrigin, type Origin, type TokenChoice } from "./settings.js";
import { ConfigError, tokenProblem } from "./values.js";

/** Reads and checks a config file; ConfigError (`config PATH: ...`) when it cannot be read or is bad. */
export function loadConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`config ${path}: cannot read it: ${fileErrorReason(err)}`);
  }
  return parseConfig(text, path);
}

/**
 * Reads a token file: one line, a trailing newline allowed. Messages name the
 * setting (`--token-file`, `node.token_file`, ...) and quote the path, never
 * the content.
 */
export function readTokenFile(path: string, origin: Origin): string {
  const prefix = origin.config === null ? "" : `config ${origin.config}: `;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${prefix}cannot read ${origin.name} ${quote(path)}: ${fileErrorReason(err)}`);
  }
  const token = text.replace(/\r?\n$/, "");
  if (token === "") throw new ConfigError(`${prefix}${origin.name} ${quote(path)} is empty`);
  if (/[\r\n]/.test(token)) throw new ConfigError(`${prefix}${origin.name} ${quote(path)} has more than one line`);
  const problem = tokenProblem(token);
  if (problem) throw new ConfigError(`${prefix}the token in ${origin.name} ${quote(path)} ${problem}`);
  return token;
}

/** The token a choice stands for (reading the file if it names one); null for none. */
export function resolveTokenChoice(choice: TokenChoice): string | null {
  switch (choice.kind) {
    case "none":
      return null;
    case "value":
      return choice.token;
    case "file":
      return readTokenFile(choice.path, choice.origin);
  }
}

/** Mode bits others than the owner have on `path`; null when it cannot be stat'ed. */
function othersMode(path: string): { mode: number; open: boolean } | null {
  try {
    const mode = statSync(path).mode & 0o777;
    return { mode, open: (mode & 0o077) !== 0 };
  } catch {
    return null;
  }
}

/**
 * Warnings about secrets other users can read: a token file, or a config
 * file that holds the token itself, with group or other permission bits.
 */
export function secretFileWarnings(choice: TokenChoice, config: ConfigFile | null): string[] {
  const warnings: string[] = [];
  if (choice.kind === "file") {
    const m = othersMode(choice.path);
    if (m?.open) {
      warnings.push(`${describeOrigin(choice.origin)} ${quote(choice.path)} can be read by other users (mode ${m.mode.toString(8)}); chmod 600 it`);
    }
  }
  if (config?.hasToken) {
    const m = othersMode(config.path);
    if (m?.open) {
      warnings.push(`config ${config.path} holds a token and can be read by other users (mode ${m.mode.toString(8)}); chmod 600 it, or use token_file`);
    }
  }
  return warnings;
}
