/** The built program's command line, run as a user would. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { ConfigError, resolveTokenChoice } from "../../src/config/index.js";

const BIN = fileURLToPath(new URL("../../dist/wormhole.cjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "wormhole-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    timeout: 15_000,
    env: { ...process.env, WORMHOLE_TOKEN: "" },
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe("wormhole registry/node -h show the seed's flags", () => {
  it("registry", () => {
    const { status, out } = run("registry", "-h");
    assert.equal(status, 0);
    for (const flag of ["-a, --address", "-i, --iface", "-t, --token", "--token-file"]) assert.match(out, new RegExp(flag));
    assert.match(out, /default: ":1638"/);
    assert.doesNotMatch(out, /ifcae/, "the misspelt alias is accepted but hidden");
  });
  it("node", () => {
    const { status, out } = run("node", "-h");
    assert.equal(status, 0);
    for (const flag of ["-a, --address", "-i, --iface", "-t, --token", "-r, --refresh", "--token-file"]) assert.match(out, new RegExp(flag));
    assert.match(out, /default: 15s/);
  });
});

describe("bad input gets a clear error, no stack trace", () => {
  const cases: Array<{ args: string[]; status: number; says: RegExp }> = [
    { args: ["registry"], status: 2, says: /--iface is required/ },
    { args: ["node", "-i", "wg0"], status: 2, says: /--address is required/ },
    { args: ["node", "-a", "127.0.0.1:1", "-r", "5x"], status: 2, says: /--refresh `5x' is not a duration/ },
    { args: ["node", "-a", "127.0.0.1:1", "-r", "0s"], status: 2, says: /--refresh `0s' must be more than zero/ },
    { args: ["node", "-a", "127.0.0.1:1", "--keepalive", "abc"], status: 2, says: /--keepalive `abc' is not a whole number/ },
    { args: ["registry", "-i", "wg0", "--token-file", "/nonexistent/token"], status: 2, says: /cannot read --token-file `\/nonexistent\/token': no such file/ },
    { args: ["registry", "-i", "wg0", "-t", "x", "--token-file", "/x"], status: 2, says: /only one of --token and --token-file/ },
    { args: ["registry", "--ifcae", "wh-none-zz9", "--log-level", "silent"], status: 1, says: /WireGuard interface `wh-none-zz9' not found/ },
    { args: ["node", "-a", "127.0.0.1:1", "-i", "wh-none-zz9"], status: 1, says: /WireGuard interface `wh-none-zz9' not found \(existing: / },
    { args: ["registry", "-i", "wg0", "--log-format", "xml"], status: 1, says: /Allowed choices are text, json/ },
    { args: ["frobnicate"], status: 1, says: /unknown command 'frobnicate'/ },
    { args: ["node", "-a", "127.0.0.1:1", "--state-dir", "/var/lib/wormhole"], status: 2, says: /--state-dir is no longer used: the relay keeps no state on disk any more; remove it/ },
  ];
  for (const c of cases) {
    it(`wormhole ${c.args.join(" ")}`, () => {
      const { status, err } = run(...c.args);
      assert.equal(status, c.status, err);
      assert.match(err, c.says);
      assert.doesNotMatch(err, /\n\s+at .*\(.*:\d+:\d+\)/, "no stack trace");
    });
  }
});

describe("token files", () => {
  const fromFile = (path: string) => resolveTokenChoice({ kind: "file", path, origin: { name: "--token-file", config: null } });
  it("reads one line, trimming one trailing newline", () => {
    const f = join(dir, "token");
    writeFileSync(f, "abc def\n");
    chmodSync(f, 0o600);
    assert.equal(fromFile(f), "abc def");
  });
  it("refuses an empty or multi-line token file, naming the setting and quoting its path, never the content", () => {
    const empty = join(dir, "empty");
    writeFileSync(empty, "\n");
    assert.throws(() => fromFile(empty), (e: Error) => e instanceof ConfigError && e.message === `--token-file \`${empty}' is empty`);
    const two = join(dir, "two");
    writeFileSync(two, "secret-a\nsecret-b\n");
    assert.throws(() => fromFile(two), (e: Error) => /more than one line/.test(e.message) && !e.message.includes("secret-"));
    assert.throws(() => fromFile(join(dir, "missing")), /cannot read --token-file `.*missing': no such file/);
  });
  it("refuses a token file whose token has a space at an end or a character metadata cannot carry, never showing it", () => {
    for (const [content, says] of [
      ["secret-a \n", /the token in --token-file `.*' begins or ends with a space/],
      ["secret-\tb\n", /the token in --token-file `.*' has a character gRPC metadata cannot carry/],
    ] as const) {
      const f = join(dir, "bad");
      writeFileSync(f, content);
      assert.throws(() => fromFile(f), (e: Error) => e instanceof ConfigError && says.test(e.message) && !e.message.includes("secret-"));
    }
  });
});
