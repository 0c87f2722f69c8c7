/**
 * The config file: TOML with a `[registry]` table, a `[node]` table and a
 * `[names]` table, each optional. Each subcommand reads its own table (and
 * `[names]`); both tables are checked whichever reads the file, so one file
 * can serve a machine that runs both.
 *
 *     [node]
 *     address = "registry.example.net:1638"
 *     token_file = "/etc/wormhole/token"
 *     refresh = "15s"
 *
 *     [names]
 *     "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" = "alice"
 *
 * Keys are the long flags in snake_case. A relative `token_file` is relative
 * to the config file's directory.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
// Named imports, not the `z` namespace: the bundle then carries ~170 KB of zod instead of ~730 KB.
import { boolean, NEVER, number, record, strictObject, string, union, unknown, type core } from "zod";
import { quote } from "../wg/quote.js";
import { checkNames, describeType, NO_NAMES, type PeerNames } from "./names.js";
import { KEYS, type KeySpec, type NodeValues, type RegistryValues, type Role } from "./settings.js";
import { ConfigError } from "./values.js";

export interface ConfigFile {
  readonly path: string;
  /** The `[registry]` table, or null when the file has none. */
  readonly registry: RegistryValues | null;
  /** The `[node]` table, or null when the file has none. */
  readonly node: NodeValues | null;
  readonly names: PeerNames;
  /** Whether a table holds the token itself (the file must then be readable by its owner only). */
  readonly hasToken: boolean;
}

const TABLES = ["registry", "node", "names"] as const;

function typeMessage(name: string, spec: KeySpec, input: unknown): string {
  const want = spec.kind === "integer" ? "a whole number" : spec.kind === "boolean" ? "true or false" : "a string";
  const shown = spec.secret || typeof input === "object" ? "" : `: ${quote(String(input))}`;
  const example = spec.secret ? "" : `, such as ${spec.example}`;
  return `${name} must be ${want}${example} (got ${describeType(input)}${shown})`;
}

function fieldSchema(role: Role, spec: KeySpec) {
  const name = `${role}.${spec.file}`;
  const error = (issue: { input?: unknown }) => typeMessage(name, spec, issue.input);
  const base =
    spec.kind === "integer" ? union([number(), string()], { error }) : spec.kind === "boolean" ? boolean({ error }) : string({ error });
  return base
    .transform((value, ctx) => {
      try {
        return spec.parse(name, value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return NEVER;
      }
    })
    .optional();
}

function tableSchema(role: Role) {
  const shape: Record<string, ReturnType<typeof fieldSchema>> = {};
  for (const spec of Object.values(KEYS[role])) shape[spec.file] = fieldSchema(role, spec);
  return strictObject(shape, { error: (issue) => `[${role}] must be a table (got ${describeType(issue.input)})` }).optional();
}

const fileSchema = strictObject(
  {
    registry: tableSchema("registry"),
    node: tableSchema("node"),
    names: record(string(), unknown(), {
      error: (issue) => `[names] must be a table of public key = "name" (got ${describeType(issue.input)})`,
    }).optional(),
  },
  { error: () => "the file must be a TOML document" },
);

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j] as number;
      row[j] = Math.min(here + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length] as number;
}

/** Keys earlier versions read, with why they are gone. */
const RETIRED_KEYS: Readonly<Record<string, string>> = {
  "node.state_dir": "the relay keeps no state on disk any more",
};

function unknownKeyMessage(table: string | null, key: string): string {
  if (table === null) {
    const roles = Object.keys(KEYS) as Role[];
    const owner = roles.filter((r) => Object.values(KEYS[r]).some((s) => s.file === key));
    if (owner.length > 0) {
      return `unknown key ${quote(key)} at the top level: settings go in a table, ${owner.map((r) => `[${r}]`).join(" or ")}`;
    }
    const near = TABLES.find((t) => distance(t, key) <= 2);
    return `unknown table ${quote(key)}${near ? ` (did you mean [${near}]?)` : ""}; the tables are ${TABLES.map((t) => `[${t}]`).join(", ")}`;
  }
  const retired = RETIRED_KEYS[`${table}.${key}`];
  if (retired) return `${quote(key)} in [${table}] is no longer used: ${retired}; remove it`;
  const known = Object.values(KEYS[table as Role] ?? {}).map((s) => s.file);
  const near = known.filter((k) => distance(k, key) <= 2).sort((a, b) => distance(a, key) - distance(b, key))[0];
  return `unknown key ${quote(key)} in [${table}]${near ? ` (did you mean ${near}?)` : ""}; known keys: ${known.join(", ")}`;
}

function issueMessages(issue: core.$ZodIssue): string[] {
  if (issue.code === "unrecognized_keys") {
    const table = issue.path.length > 0 ? String(issue.path[0]) : null;
    return issue.keys.map((k) => unknownKeyMessage(table, k));
  }
  return [issue.message];
}

function toValues(role: Role, table: Readonly<Record<string, unknown>>, path: string): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(KEYS[role])) {
    let v = table[spec.file];
    if (v === undefined) continue;
    if (spec.relativeToFile && typeof v === "string" && !isAbsolute(v)) v = resolve(dirname(path), v);
    values[key] = v;
  }
  return values;
}

/**
 * Parses and checks the text of a config file. Throws one ConfigError that
 * lists every problem, one per line, each as `config PATH: ...` naming the key
 * and quoting the value (never a token's).
 */
export function parseConfig(text: string, path: string): ConfigFile {
  const fail = (problems: readonly string[]): never => {
    throw new ConfigError(problems.map((p) => `config ${path}: ${p}`).join("\n"));
  };
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      // Only the first line of smol-toml's message: the rest shows the line, which may hold the token.
      const what = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
      fail([`line ${err.line}, column ${err.column}: ${what} (not valid TOML)`]);
    }
    throw err;
  }
  const parsed = fileSchema.safeParse(doc);
  const problems = parsed.success ? [] : parsed.error.issues.flatMap(issueMessages);
  // Names are checked even when a table is bad, so that every problem shows at once.
  const rawNames = isTable(doc) ? doc.names : undefined;
  const names = isTable(rawNames) ? checkNames(rawNames) : { names: NO_NAMES, problems: [] };
  problems.push(...names.problems);
  if (problems.length > 0 || !parsed.success) return fail(problems);
  const { registry, node } = parsed.data;
  return {
    path,
    registry: registry ? (toValues("registry", registry, path) as RegistryValues) : null,
    node: node ? (toValues("node", node, path) as NodeValues) : null,
    names: names.names,
    hasToken: registry?.token !== undefined || node?.token !== undefined,
  };
}
