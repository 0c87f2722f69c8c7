/**
 * docs/config.md, made from the KeySpec tables in settings.ts: one table per
 * role, each setting's flag, environment variable, config file key, default
 * and meaning. Pure; `npm run docs:config` writes it, and a unit test fails
 * when the file differs from what this makes.
 */
import { CONFIG_ENV } from "./env.js";
import { KEYS, type KeySpec, type Role } from "./settings.js";

/** The command that writes docs/config.md. */
export const REFERENCE_COMMAND = "npm run docs:config";

/** Where the reference lives, from the repository's root. */
export const REFERENCE_PATH = "docs/config.md";

/** Text for a table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
}

const code = (text: string): string => `\`${text}\``;

/** The flags that give a setting: the one --help shows (with the short flag and argument), then the hidden spellings. */
function flagCell(spec: KeySpec): string {
  const arg = spec.arg === undefined ? "" : ` <${spec.arg}>`;
  const shown = spec.shown ?? spec.flag;
  const main = code(`${spec.short ? `${spec.short}, ` : ""}${shown}${arg}`);
  const also = (spec.hidden ?? []).filter((h) => h !== shown).map((h) => code(`${h}${arg}`));
  const sets = spec.kind === "boolean" && shown.startsWith("--no-") ? " (sets it to false)" : "";
  return [main, sets, spec.repeats ? " (repeatable)" : "", also.length > 0 ? ` (also ${also.join(", ")})` : ""].join("");
}

function defaultCell(spec: KeySpec): string {
  if (spec.required !== undefined) return "required";
  if (spec.default !== undefined) return code(spec.default);
  return spec.unset ?? "none";
}

/** What the file takes, when it is not a string. */
function fileType(spec: KeySpec): string {
  if (spec.kind === "integer") return " (an integer)";
  if (spec.kind === "boolean") return " (true or false)";
  return "";
}

function meaningCell(spec: KeySpec): string {
  const parts = [spec.help.replace(/\.$/, "")];
  if (spec.choices) parts.push(`one of ${spec.choices.map(code).join(", ")}`);
  if (spec.relativeToFile) parts.push("in the config file, a relative path is relative to the file's directory");
  if (spec.secret) parts.push("a secret: never shown in messages");
  return parts.join("; ");
}

function roleTable(role: Role): string[] {
  const rows = Object.values(KEYS[role]).map((spec) =>
    [code(spec.file) + fileType(spec), flagCell(spec), code(spec.env), defaultCell(spec), meaningCell(spec)].map(cell).join(" | "),
  );
  return ["| file key | flag | environment | default | meaning |", "| --- | --- | --- | --- | --- |", ...rows.map((r) => `| ${r} |`)];
}

/** The text of docs/config.md. */
export function configReference(): string {
  return [
    "# Configuration reference",
    "",
    `<!-- Made by \`${REFERENCE_COMMAND}\` from src/config/settings.ts: edit the table there, then run it again. -->`,
    "",
    "[README](../README.md) · [configuration](configuration.md) · [operations](operations.md)",
    "",
    "Every setting of `wormhole registry` and `wormhole node`, as the command line,",
    "the environment and the config file spell it. For each setting the first of",
    "these that gives it wins: **flag > environment variable > config file > default**.",
    `The config file is the one named by \`-c, --config PATH\` or \`${CONFIG_ENV}\`; its`,
    "`[registry]` and `[node]` tables take the file keys below. Booleans in the file are",
    "`true` or `false` (in the environment also `yes`/`no`, `on`/`off`, `1`/`0`); durations",
    'are strings with a unit (`"15s"`, `"1m30s"`, `"500ms"`). `wormhole netcheck` takes',
    "the node's address, interface, token and TLS settings, and `wormhole status` its",
    "control socket. How to put them together, with examples: [configuration.md](configuration.md).",
    "",
    "## `wormhole registry`: the `[registry]` table",
    "",
    ...roleTable("registry"),
    "",
    "## `wormhole node`: the `[node]` table",
    "",
    ...roleTable("node"),
    "",
  ].join("\n");
}
