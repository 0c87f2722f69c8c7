/** docs/config.md and --help come from the settings tables: a test fails when either drifts from them. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { KEYS, type Role } from "../../src/config/index.js";
import { configReference, REFERENCE_COMMAND, REFERENCE_PATH } from "../../src/config/reference.js";
import { netcheckCommand } from "../../src/cli/netcheck.js";
import { nodeCommand } from "../../src/cli/node.js";
import { registryCommand } from "../../src/cli/registry.js";

const ROLES: readonly Role[] = ["registry", "node"];

describe("docs/config.md", () => {
  const made = configReference();

  it(`is what \`${REFERENCE_COMMAND}\` makes from src/config/settings.ts`, () => {
    const onDisk = readFileSync(fileURLToPath(new URL(`../../${REFERENCE_PATH}`, import.meta.url)), "utf8");
    if (onDisk !== made) {
      const a = onDisk.split("\n");
      const b = made.split("\n");
      const line = a.findIndex((l, i) => l !== b[i]);
      assert.fail(
        `${REFERENCE_PATH} differs from the settings tables (first at line ${line + 1}: ${JSON.stringify(a[line] ?? "")} should be ${JSON.stringify(b[line] ?? "")}); run \`${REFERENCE_COMMAND}\` and commit the result`,
      );
    }
  });

  for (const role of ROLES) {
    it(`has a row for every ${role} setting: its file key, flags, variable and default`, () => {
      const section = made.split(`## \`wormhole ${role}\``)[1]?.split("\n## ")[0] ?? "";
      for (const spec of Object.values(KEYS[role])) {
        const row = section.split("\n").find((l) => l.startsWith(`| \`${spec.file}\``));
        assert.ok(row, `no row for ${role}.${spec.file}`);
        for (const s of [spec.shown ?? spec.flag, ...(spec.hidden ?? []), spec.env, spec.short ?? "", spec.default ?? spec.unset ?? spec.required ?? ""].filter((x) => x !== "")) {
          const want = s === spec.required ? "required" : s;
          assert.ok(row.includes(want), `the ${role}.${spec.file} row lacks ${want}: ${row}`);
        }
      }
    });
  }
});

/** The options a command shows in --help and the ones it hides, by long flag. */
function longFlags(cmd: Command): { shown: string[]; hidden: string[] } {
  const all = cmd.options as unknown as ReadonlyArray<{ long?: string; hidden: boolean }>;
  return {
    shown: all.filter((o) => !o.hidden).map((o) => o.long ?? ""),
    hidden: all.filter((o) => o.hidden).map((o) => o.long ?? ""),
  };
}

describe("--help is the table", () => {
  const commands: ReadonlyArray<{ cmd: Command; role: Role; keys: readonly string[]; others: readonly string[] }> = [
    { cmd: registryCommand(), role: "registry", keys: Object.keys(KEYS.registry), others: ["--config"] },
    { cmd: nodeCommand(), role: "node", keys: Object.keys(KEYS.node), others: ["--config", "--state-dir"] },
    { cmd: netcheckCommand(), role: "node", keys: ["address", "iface", "token", "tokenFile", "tls", "tlsCa", "tlsPin"], others: ["--config", "--stun-host", "--stun-port", "--json"] },
  ];
  for (const { cmd, role, keys, others } of commands) {
    it(`wormhole ${cmd.name()}: every flag is a setting of the table (or one of ${others.join(", ")}), and each setting's flags are there`, () => {
      const specs = keys.map((k) => KEYS[role][k]).filter((s) => s !== undefined);
      const fromTable = specs.flatMap((s) => [s.shown ?? s.flag, ...(s.hidden ?? [])]);
      const { shown, hidden } = longFlags(cmd);
      for (const flag of [...shown, ...hidden]) assert.ok(fromTable.includes(flag) || others.includes(flag), `${flag} is declared by hand, not from the table`);
      for (const s of specs) {
        assert.ok(shown.includes(s.shown ?? s.flag), `${s.shown ?? s.flag} is not in --help`);
        for (const h of (s.hidden ?? []).filter((h) => h !== (s.shown ?? s.flag))) assert.ok(hidden.includes(h), `${h} is not accepted (hidden)`);
      }
    });
    it(`wormhole ${cmd.name()} --help shows each setting's short flag and default`, () => {
      const help = cmd.helpInformation().replace(/\s+/g, " ");
      for (const k of keys) {
        const s = KEYS[role][k];
        if (s === undefined) continue;
        if (s.short) assert.ok(help.includes(`${s.short}, ${s.shown ?? s.flag}`), `${s.short} missing`);
        if (s.default !== undefined && s.kind !== "boolean") assert.match(help, new RegExp(`default: "?${s.default.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}"?\\)`), `${s.flag}'s default`);
        if (s.required !== undefined) assert.ok(help.includes("(required)"), `${s.flag} required`);
      }
    });
  }
});
