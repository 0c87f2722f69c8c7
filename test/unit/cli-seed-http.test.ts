/**
 * The seed's `-A/--address-http` and `-w/--watch-peer-key` on the built
 * program's command line. The interface named does not exist, so the
 * registry stops before it listens anywhere: these test the parsing only.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { key } from "../support/keys.js";

const BIN = fileURLToPath(new URL("../../dist/wormhole.cjs", import.meta.url));
const TOKEN = "tok-cli-5551212";
const KEY = key(1);

/** The parent's environment without any WORMHOLE_* variable, plus `env`. */
function run(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WORMHOLE_")));
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 15_000, env: { ...clean, ...env } });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe("wormhole registry -A / -w", () => {
  const accepted: Array<{ name: string; args: string[]; env?: Record<string, string> }> = [
    { name: "-A :1639 (the seed's command line)", args: ["-t", TOKEN, "-A", ":1639"] },
    { name: "--address-http and --watch-peer-key", args: ["-t", TOKEN, "--address-http", "127.0.0.1:1639", "--watch-peer-key", KEY] },
    { name: "-w alone", args: ["-t", TOKEN, "-w", KEY] },
    { name: "-A and -w in one go, IPv6", args: ["-t", TOKEN, "-A", "[::1]:1639", "-w", KEY] },
    { name: "the environment", args: [], env: { WORMHOLE_TOKEN: TOKEN, WORMHOLE_ADDRESS_HTTP: ":1639", WORMHOLE_WATCH_PEER_KEY: KEY } },
  ];
  for (const c of accepted) {
    it(`accepts ${c.name}: it gets as far as the interface`, () => {
      const r = run(["registry", "-i", "wh-none-zz9", ...c.args, "--log-level", "silent"], c.env);
      assert.doesNotMatch(r.err, /unknown option/);
      assert.equal(r.status, 1, r.err);
      assert.match(r.err, /WireGuard interface `wh-none-zz9' not found/);
      assert.doesNotMatch(r.err + r.out, new RegExp(TOKEN));
    });
  }

  const refused: Array<{ name: string; args: string[]; env?: Record<string, string>; says: RegExp }> = [
    { name: "an address without a port", args: ["-A", "localhost"], says: /^wormhole: --address-http `localhost' is not a listen address such as :1639/m },
    { name: "a port too large", args: ["--address-http", ":70000"], says: /--address-http `:70000' is not a listen address/ },
    { name: "a key that is not one", args: ["-w", "not-a-key"], says: /^wormhole: --watch-peer-key `not-a-key' is not a WireGuard public key/m },
    { name: "a bad key in the environment", args: [], env: { WORMHOLE_WATCH_PEER_KEY: "xyz" }, says: /WORMHOLE_WATCH_PEER_KEY `xyz' is not a WireGuard public key/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}: a usage error naming the setting and quoting the value, never the token`, () => {
      const r = run(["registry", "-i", "wh-none-zz9", "-t", TOKEN, ...c.args], c.env);
      assert.equal(r.status, 2, r.err);
      assert.match(r.err, c.says);
      assert.doesNotMatch(r.err + r.out, new RegExp(TOKEN));
      assert.doesNotMatch(r.err, /\n\s+at .*\(.*:\d+:\d+\)/, "no stack trace");
    });
  }

  it("-h lists both, and says the HTTP watch is off by default", () => {
    const r = run(["registry", "-h"]);
    assert.equal(r.status, 0);
    assert.match(r.out, /-A, --address-http <address>/);
    assert.match(r.out, /-w, --watch-peer-key <key>/);
    assert.match(r.out, /default: off; :1639 when only -w is\s+given/);
  });
});
