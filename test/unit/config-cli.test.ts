/** The config file and WORMHOLE_* variables through the built program, as a user runs it. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";

const BIN = fileURLToPath(new URL("../../dist/wormhole.cjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "wormhole-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The parent's environment without any WORMHOLE_* variable, plus `env`. */
function run(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WORMHOLE_")));
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 15_000, env: { ...clean, ...env } });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

describe("--config and WORMHOLE_CONFIG", () => {
  it("a missing file is a usage error naming it", () => {
    const r = run(["node", "--config", "/nonexistent/node.toml"]);
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /^wormhole: config \/nonexistent\/node\.toml: cannot read it: no such file$/m);
  });

  it("a bad value is a usage error naming file, key and value", () => {
    const bad = file("bad.toml", `[node]\naddress = "127.0.0.1:1"\nrefresh = "5x"\n`);
    const r = run(["node", "--config", bad]);
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, new RegExp(`config ${bad}: node\\.refresh \`5x' is not a duration`));
    assert.doesNotMatch(r.err, /\n\s+at .*\(.*:\d+:\d+\)/, "no stack trace");
  });

  it("WORMHOLE_CONFIG selects the file when --config is not given", () => {
    const bad = file("bad-env.toml", `[registry]\npoll_interval = "0s"\n`);
    const r = run(["registry", "-i", "wg0"], { WORMHOLE_CONFIG: bad });
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /registry\.poll_interval `0s' must be more than zero/);
  });

  const settings = file("node.toml", `[node]\naddress = "127.0.0.1:1"\niface = "wh-file-zz9"\n`);
  it("settings come from the file when nothing else gives them", () => {
    const r = run(["node", "--config", settings, "--log-level", "silent"]);
    assert.equal(r.status, 1, r.err);
    assert.match(r.err, /WireGuard interface `wh-file-zz9' not found/);
  });
  it("the environment beats the file", () => {
    const r = run(["node", "--config", settings, "--log-level", "silent"], { WORMHOLE_IFACE: "wh-env-zz9" });
    assert.match(r.err, /WireGuard interface `wh-env-zz9' not found/);
  });
  it("a flag beats the environment", () => {
    const r = run(["node", "--config", settings, "-i", "wh-flag-zz9", "--log-level", "silent"], { WORMHOLE_IFACE: "wh-env-zz9" });
    assert.match(r.err, /WireGuard interface `wh-flag-zz9' not found/);
  });

  it("a file without the role's table leaves the required settings unset", () => {
    const nodeOnly = file("node-only.toml", `[node]\naddress = "127.0.0.1:1"\n`);
    const r = run(["registry", "--config", nodeOnly]);
    assert.equal(r.status, 2);
    assert.match(r.err, /--iface is required/);
  });

  it("an unreadable token_file names the key and the file", () => {
    const f = file("tokfile.toml", `[node]\naddress = "127.0.0.1:1"\ntoken_file = "/nonexistent/token"\n`);
    const r = run(["node", "--config", f]);
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, new RegExp(`config ${f}: cannot read node\\.token_file \`/nonexistent/token': no such file`));
  });

  it("warns when a file holding the token can be read by others, and never prints the token", () => {
    const f = file("open.toml", `[node]\naddress = "127.0.0.1:1"\niface = "wh-none-zz9"\ntoken = "tok-8675309"\n`, 0o644);
    const r = run(["node", "--config", f]);
    assert.equal(r.status, 1, r.err);
    assert.match(r.err, /holds a token and can be read by other users \(mode 644\); chmod 600 it/);
    assert.doesNotMatch(r.err + r.out, /8675309/);
  });
});

describe("WORMHOLE_* variables", () => {
  it("a bad one is a usage error naming the variable", () => {
    const r = run(["node", "-a", "127.0.0.1:1"], { WORMHOLE_REFRESH: "5x" });
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /WORMHOLE_REFRESH `5x' is not a duration/);
  });
  it("WORMHOLE_ADDRESS stands for --address", () => {
    const r = run(["node", "-i", "wh-none-zz9", "--log-level", "silent"], { WORMHOLE_ADDRESS: "127.0.0.1:1" });
    assert.doesNotMatch(r.err, /--address is required/);
    assert.match(r.err, /WireGuard interface `wh-none-zz9' not found/);
  });
  it("WORMHOLE_RELAY must be a boolean", () => {
    const r = run(["registry", "-i", "wg0"], { WORMHOLE_RELAY: "maybe" });
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /WORMHOLE_RELAY `maybe' is not true or false/);
  });
  it("--no-relay beats relay = true in the file", () => {
    const f = file("relay.toml", `[registry]\niface = "wh-none-zz9"\nrelay = true\n`);
    const r = run(["registry", "--config", f, "--no-relay", "--log-level", "silent"]);
    assert.equal(r.status, 1, r.err);
    assert.doesNotMatch(r.err, /--relay/, "no relay, so no IP forwarding check");
    assert.match(r.err, /WireGuard interface `wh-none-zz9' not found/);
  });
  it("a flag's bad value still names the flag", () => {
    const r = run(["registry", "-i", "wg0", "--http", "9638"]);
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /--http `9638' is not a listen address/);
  });
});

describe("help", () => {
  it("registry -h shows --config, --http and the environment variables", () => {
    const r = run(["registry", "-h"]);
    assert.equal(r.status, 0);
    for (const s of ["--config <path>", "--http <address>", "WORMHOLE_IFACE", "WORMHOLE_HTTP", "flag > environment > config file > default"]) {
      assert.ok(r.out.includes(s), `help lacks ${s}`);
    }
  });
  it("node -h shows the node's variables", () => {
    const r = run(["node", "-h"]);
    assert.equal(r.status, 0);
    for (const s of ["--config <path>", "WORMHOLE_REFRESH", "WORMHOLE_PROBE_INTERVAL", "[node] table"]) assert.ok(r.out.includes(s), `help lacks ${s}`);
  });
});
