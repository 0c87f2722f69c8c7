/**
 * Fuzz target: the config file and the environment (src/config): parseConfig
 * (TOML → checked settings), registryFromEnv / nodeFromEnv.
 * Inputs: TOML documents built from the real tables and keys, misspelt and
 * unknown ones, values of every TOML type (good settings, bad ones, the token),
 * then damaged; junk text; environments of WORMHOLE_* variables.
 * Checks: only ConfigError is thrown, every line of it names the file, and it
 * never shows the token; what is accepted is in range for its setting (a
 * duration is a positive whole number of ms, a keepalive 1-65535, an interface
 * name 1-15 characters, a name 1-64 characters without control characters).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError, KEYS, nodeFromEnv, parseConfig, registryFromEnv, type ConfigFile } from "../src/config/index.js";
import { isKey } from "../src/wg/keys.js";
import { base64Key, damagedText, nearKey } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

const PATH = "/etc/wormhole/fuzz.toml";
const SECRET = "Zq9FUZZSECRETq9Z";

const fileKeys = [...new Set([...Object.values(KEYS.registry), ...Object.values(KEYS.node)].map((s) => s.file))];
const keyName = fc.oneof(fc.constantFrom(...fileKeys), fc.constantFrom("refersh", "adress", "iface ", "Token", "relay_", "x"), fc.stringMatching(/^[a-z_]{1,12}$/));
const tomlString = (s: string) => JSON.stringify(s);
const scalar = fc.oneof(
  fc.constantFrom('"15s"', '"1m30s"', '"0"', '"0s"', '"5x"', '"-1s"', '"9999999h"', '":1638"', '"10.200.0.1:1638"', '"127.0.0.1:9638"', '"[::1]:9638"', '"off"', '"wg0"', '"a/b"', '"this-is-too-long-name"', '"debug"', '"json"', '"xml"', '"/etc/wormhole/token"', '""'),
  fc.constantFrom("true", "false", "25", "0", "65535", "65536", "-1", "1.5", "inf", "nan", "0x10", "1979-05-27T07:32:00Z", "[]", '["a", 1]', "{ a = 1 }"),
  fc.string({ maxLength: 20 }).map(tomlString),
  fc.integer().map(String),
);
const entry = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(keyName, scalar).map(([k, v]) => `${k} = ${v}`) },
  { weight: 1, arbitrary: fc.constant(`token = "${SECRET}"`) },
  { weight: 1, arbitrary: fc.constantFrom(`token = ${SECRET.length}${SECRET}`, `token = ["${SECRET}"]`, `token = """${SECRET}\nsecond"""`, `token = { a = "${SECRET}" }`, `token = '${SECRET}`) },
);
const nameEntry = fc.tuple(fc.oneof(base64Key, nearKey), fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom("alice", "", " ", "a\u0007b", "x".repeat(65)))).map(([k, v]) => `${tomlString(k)} = ${tomlString(v)}`);
const table = fc.oneof(
  fc.tuple(fc.constantFrom("[registry]", "[node]", "[registry]", "[node]", "[nodes]", "[registry.sub]", "[[node]]", ""), fc.array(entry, { maxLength: 8 })).map(([h, es]) => [h, ...es].join("\n")),
  fc.array(nameEntry, { maxLength: 4 }).map((es) => ["[names]", ...es].join("\n")),
);
const document = fc.array(table, { maxLength: 4 }).map((ts) => `${ts.join("\n\n")}\n`);

const envName = fc.oneof(fc.constantFrom(...new Set([...Object.values(KEYS.registry), ...Object.values(KEYS.node)].map((s) => s.env))), fc.constantFrom("WORMHOLE_X", "PATH"));
const envValue = fc.oneof(fc.constantFrom("", "15s", "0", "25", "65536", "wg0", "true", "maybe", "127.0.0.1:9638", "off", "debug"), fc.string({ maxLength: 20 }));
/** The token, where only the token goes. */
const tokenValue = fc.constantFrom(SECRET, `${SECRET}\nsecond`, `${SECRET}\r`, "");

type Input = { kind: "file"; text: string } | { kind: "env"; role: "registry" | "node"; env: Record<string, string> };

function checkValues(values: Record<string, unknown> | null): void {
  if (values === null) return;
  for (const [k, v] of Object.entries(values)) {
    if (k.endsWith("Ms")) assert.ok(Number.isInteger(v) && (v as number) >= 0 && (k === "probeIntervalMs" || (v as number) > 0), `${k} = ${String(v)}`);
    if (k === "keepaliveSec") assert.ok(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535, `${k} = ${String(v)}`);
    if (k === "iface") assert.ok(typeof v === "string" && /^[^\s/:%]{1,15}$/.test(v) && v !== "." && v !== "..", `iface = ${String(v)}`);
    if (k === "relay" || k === "allowRelay") assert.equal(typeof v, "boolean");
    if (k === "token") assert.ok(typeof v === "string" && v !== "" && !/[\r\n]/.test(v));
  }
}

function checkFile(f: ConfigFile): void {
  checkValues(f.registry as Record<string, unknown> | null);
  checkValues(f.node as Record<string, unknown> | null);
  const names = new Set<string>();
  for (const [k, name] of f.names) {
    assert.ok(isKey(k));
    assert.ok(name.trim() !== "" && name.length <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(name), `name ${JSON.stringify(name)}`);
    assert.ok(!names.has(name), "a name given twice");
    names.add(name);
  }
  assert.equal(f.hasToken, (f.registry?.token ?? f.node?.token) !== undefined);
}

export const target: FuzzTarget<Input> = {
  name: "config-file",
  about: "parseConfig on generated TOML (damaged too) and junk; registryFromEnv/nodeFromEnv",
  arbitrary: fc.oneof(
    { weight: 4, arbitrary: damagedText(document).map((text): Input => ({ kind: "file", text })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((text): Input => ({ kind: "file", text: `[node]\ntoken = "${SECRET}"\n${text}` })) },
    { weight: 2, arbitrary: fc
        .tuple(fc.constantFrom("registry" as const, "node" as const), fc.dictionary(envName, envValue, { maxKeys: 6 }), fc.option(tokenValue, { nil: undefined }))
        .map(([role, env, token]): Input => ({ kind: "env", role, env: token === undefined ? env : { ...env, WORMHOLE_TOKEN: token } })) },
  ),
  check(input) {
    if (input.kind === "env") {
      try {
        checkValues((input.role === "node" ? nodeFromEnv(input.env) : registryFromEnv(input.env)) as Record<string, unknown>);
      } catch (e) {
        assert.ok(e instanceof ConfigError, `threw ${String(e)}`);
        assert.ok(!e.message.includes(SECRET), `shows the token: ${e.message}`);
      }
      return;
    }
    let f: ConfigFile;
    try {
      f = parseConfig(input.text, PATH);
    } catch (e) {
      assert.ok(e instanceof ConfigError, `threw ${String(e)}`);
      assert.ok(!e.message.includes(SECRET), `shows the token: ${e.message}`);
      for (const line of e.message.split("\n")) assert.ok(line.startsWith(`config ${PATH}: `), `a line without the file: ${line}`);
      return;
    }
    checkFile(f);
  },
};

await main(import.meta.url, target);
