/** The config module: file parsing, environment, merging, names. Pure functions, table-tested. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  ConfigError,
  listenValue,
  mergeNode,
  mergeRegistry,
  nodeFromEnv,
  parseConfig,
  peerLabel,
  registryFromEnv,
  shortKey,
  type Layer,
  type NodeValues,
  type RegistryValues,
} from "../../src/config/index.js";
import { key } from "../support/keys.js";
import { addressListValue, prefixValue } from "../../src/config/values.js";

const PATH = "/etc/wormhole/node.toml";
const ALICE = key(1);
const BOB = key(2);

function parseError(text: string): string {
  try {
    parseConfig(text, PATH);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("expected the file to be refused");
}

describe("parseConfig: a good file", () => {
  it("reads every key of both tables and the names", () => {
    const file = parseConfig(
      `
[registry]
address = ":1638"
iface = "wg0"
token_file = "/etc/wormhole/token"
poll_interval = "500ms"
http = "127.0.0.1:9638"
relay = true
log_level = "debug"
log_format = "json"

[node]
address = "10.200.0.1:1638"
iface = "wg1"
token = "s3cret"
refresh = "1m30s"
keepalive = 20
probe_interval = "0"

[names]
"${ALICE}" = "alice"
"${BOB}" = "bob's laptop"
`,
      PATH,
    );
    assert.deepEqual(file.registry, {
      address: ":1638",
      iface: "wg0",
      tokenFile: "/etc/wormhole/token",
      pollIntervalMs: 500,
      http: { host: "127.0.0.1", port: 9638 },
      relay: true,
      logLevel: "debug",
      logFormat: "json",
    });
    assert.deepEqual(file.node, {
      address: ["10.200.0.1:1638"],
      iface: "wg1",
      token: "s3cret",
      refreshMs: 90_000,
      keepaliveSec: 20,
      probeIntervalMs: 0,
    });
    assert.deepEqual([...file.names], [
      [ALICE, "alice"],
      [BOB, "bob's laptop"],
    ]);
    assert.equal(file.hasToken, true);
  });

  it("an empty file, or one table alone, is fine", () => {
    const empty = parseConfig("", PATH);
    assert.equal(empty.registry, null);
    assert.equal(empty.node, null);
    assert.equal(empty.names.size, 0);
    assert.equal(empty.hasToken, false);
    const node = parseConfig(`[node]\naddress = "r:1638"\n`, PATH);
    assert.equal(node.registry, null);
    assert.deepEqual(node.node, { address: ["r:1638"] });
  });

  it("a relative token_file is relative to the config file's directory", () => {
    const file = parseConfig(`[node]\ntoken_file = "token"\n`, PATH);
    assert.equal(file.node?.tokenFile, "/etc/wormhole/token");
    const abs = parseConfig(`[node]\ntoken_file = "/run/secrets/wh"\n`, PATH);
    assert.equal(abs.node?.tokenFile, "/run/secrets/wh");
  });

  it("http = \"off\" is an explicit none, distinct from absent", () => {
    assert.equal(parseConfig(`[registry]\nhttp = "off"\n`, PATH).registry?.http, null);
    assert.equal(parseConfig(`[registry]\n`, PATH).registry?.http, undefined);
  });
});

describe("parseConfig: errors name the file and key and quote the value", () => {
  const cases: Array<{ name: string; text: string; says: RegExp }> = [
    { name: "bad duration", text: `[node]\nrefresh = "5x"\n`, says: /^config \/etc\/wormhole\/node\.toml: node\.refresh `5x' is not a duration/ },
    { name: "zero refresh", text: `[node]\nrefresh = "0s"\n`, says: /node\.refresh `0s' must be more than zero/ },
    { name: "duration as a number", text: `[node]\nrefresh = 15\n`, says: /node\.refresh must be a string, such as "15s" \(got a number: `15'\)/ },
    { name: "keepalive out of range", text: `[node]\nkeepalive = 0\n`, says: /node\.keepalive `0' is not a whole number from 1 to 65535/ },
    { name: "keepalive not a number", text: `[node]\nkeepalive = true\n`, says: /node\.keepalive must be a whole number, such as 25 \(got a boolean: `true'\)/ },
    { name: "misspelt key", text: `[node]\nrefersh = "5s"\n`, says: /unknown key `refersh' in \[node\] \(did you mean refresh\?\)/ },
    { name: "key of the other role", text: `[registry]\nrefresh = "5s"\n`, says: /unknown key `refresh' in \[registry\]/ },
    { name: "a key earlier versions read", text: `[node]\nstate_dir = "/var/lib/wormhole"\n`, says: /`state_dir' in \[node\] is no longer used: the relay keeps no state on disk any more; remove it/ },
    { name: "setting outside a table", text: `iface = "wg0"\n`, says: /unknown key `iface' at the top level: settings go in a table, \[registry\] or \[node\]/ },
    { name: "misspelt table", text: `[nodes]\n`, says: /unknown table `nodes' \(did you mean \[node\]\?\)/ },
    { name: "table that is a string", text: `node = "x"\n`, says: /\[node\] must be a table \(got a string\)/ },
    { name: "bad interface name", text: `[registry]\niface = "wg/0"\n`, says: /registry\.iface `wg\/0' is not a valid interface name/ },
    { name: "bad log level", text: `[node]\nlog_level = "loud"\n`, says: /node\.log_level `loud' is not a log level \(trace, debug/ },
    { name: "bad log format", text: `[node]\nlog_format = "xml"\n`, says: /node\.log_format `xml' is not a log format \(text, json\)/ },
    { name: "bad http address", text: `[registry]\nhttp = "9638"\n`, says: /registry\.http `9638' is not a listen address such as 127\.0\.0\.1:9638/ },
    { name: "http port too big", text: `[registry]\nhttp = "127.0.0.1:70000"\n`, says: /registry\.http `127\.0\.0\.1:70000' is not a listen address/ },
    { name: "relay as a string", text: `[registry]\nrelay = "yes"\n`, says: /registry\.relay must be true or false, such as true \(got a string: `yes'\)/ },
    { name: "address with spaces", text: `[node]\naddress = "a b:1"\n`, says: /node\.address `a b:1' is not an address/ },
    { name: "not TOML", text: `[node]\nrefresh = 5s\n`, says: /^config \/etc\/wormhole\/node\.toml: line 2, column \d+: .* \(not valid TOML\)$/ },
    { name: "names: not a key", text: `[names]\n"abc" = "x"\n`, says: /names: key `abc' is not a WireGuard public key/ },
    { name: "names: not a string", text: `[names]\n"${ALICE}" = 5\n`, says: /names: the name of `AQEB.*' must be a string \(got a number\)/ },
    { name: "names: empty", text: `[names]\n"${ALICE}" = " "\n`, says: /must have 1 to 64 characters/ },
    { name: "names: too long", text: `[names]\n"${ALICE}" = "${"x".repeat(65)}"\n`, says: /must have 1 to 64 characters/ },
    { name: "names: control character", text: `[names]\n"${ALICE}" = "a\\u0007b"\n`, says: /has a control character/ },
    { name: "names: one name twice", text: `[names]\n"${ALICE}" = "x"\n"${BOB}" = "x"\n`, says: /names: `x' is the name of both `AQEB.*' and `AgIC.*'/ },
  ];
  for (const c of cases) {
    it(c.name, () => assert.match(parseError(c.text), c.says));
  }

  it("lists every problem, one line each", () => {
    const lines = parseError(`[node]\nrefresh = "5x"\nkeepalive = 0\n[names]\n"abc" = "x"\n`).split("\n");
    assert.equal(lines.length, 3);
    for (const line of lines) assert.match(line, /^config \/etc\/wormhole\/node\.toml: /);
  });

  it("never shows the token: wrong type, several lines, or a syntax error on its line", () => {
    for (const text of [
      `[node]\ntoken = 8675309123\n`,
      `[node]\ntoken = """8675309123\nsecond"""\n`,
      `[node]\ntoken = 8675309123abc\n`,
      `[registry]\ntoken = ["8675309123"]\n`,
    ]) {
      const message = parseError(text);
      assert.doesNotMatch(message, /8675309123/, message);
      assert.match(message, /token|TOML/);
    }
  });

  it("whatever the input, fails only with a ConfigError that does not contain a secret line", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (junk) => {
        const secret = "Zq9SECRETVALUEq9Z";
        const text = `[node]\ntoken = "${secret}"\n${junk}`;
        try {
          parseConfig(text, PATH);
        } catch (err) {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(!err.message.includes(secret), err.message);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("environment", () => {
  it("reads every variable of the role, ignores empty ones and the other role's", () => {
    const env = {
      WORMHOLE_ADDRESS: "10.200.0.1:1638",
      WORMHOLE_IFACE: "wg0",
      WORMHOLE_TOKEN_FILE: "/t",
      WORMHOLE_REFRESH: "30s",
      WORMHOLE_KEEPALIVE: "15",
      WORMHOLE_PROBE_INTERVAL: "0",
      WORMHOLE_LOG_LEVEL: "warn",
      WORMHOLE_LOG_FORMAT: "json",
      WORMHOLE_POLL_INTERVAL: "not read by a node",
      WORMHOLE_TOKEN: "",
    };
    assert.deepEqual(nodeFromEnv(env), {
      address: ["10.200.0.1:1638"],
      iface: "wg0",
      tokenFile: "/t",
      refreshMs: 30_000,
      keepaliveSec: 15,
      probeIntervalMs: 0,
      logLevel: "warn",
      logFormat: "json",
    });
    assert.deepEqual(registryFromEnv({ WORMHOLE_POLL_INTERVAL: "1s", WORMHOLE_HTTP: ":9638", WORMHOLE_REFRESH: "5x" }), {
      pollIntervalMs: 1000,
      http: { host: null, port: 9638 },
    });
  });

  const bad: Array<[string, string, RegExp]> = [
    ["WORMHOLE_REFRESH", "5x", /^WORMHOLE_REFRESH `5x' is not a duration/],
    ["WORMHOLE_KEEPALIVE", "25s", /^WORMHOLE_KEEPALIVE `25s' is not a whole number from 1 to 65535$/],
    ["WORMHOLE_IFACE", "a b", /^WORMHOLE_IFACE `a b' is not a valid interface name/],
    ["WORMHOLE_LOG_FORMAT", "xml", /^WORMHOLE_LOG_FORMAT `xml' is not a log format/],
  ];
  for (const [name, value, says] of bad) {
    it(`${name}=${value} is refused, naming the variable`, () => {
      assert.throws(() => nodeFromEnv({ [name]: value }), (err: Error) => err instanceof ConfigError && says.test(err.message));
    });
  }
  it("WORMHOLE_RELAY takes the usual spellings of a boolean", () => {
    for (const [text, want] of [["1", true], ["yes", true], ["ON", true], ["true", true], ["0", false], ["no", false], ["off", false], ["False", false]] as const) {
      assert.equal(registryFromEnv({ WORMHOLE_RELAY: text }).relay, want, text);
    }
    assert.throws(() => registryFromEnv({ WORMHOLE_RELAY: "maybe" }), /WORMHOLE_RELAY `maybe' is not true or false/);
  });
  it("WORMHOLE_HTTP is checked for the registry", () => {
    assert.throws(() => registryFromEnv({ WORMHOLE_HTTP: "localhost" }), /WORMHOLE_HTTP `localhost' is not a listen address/);
  });
  it("a token gRPC metadata cannot carry, or with a space at either end, is refused without showing it", () => {
    const cases: Array<[string, RegExp]> = [
      ["abc8675309\tx", /WORMHOLE_TOKEN has a character gRPC metadata cannot carry \(character 11: /],
      ["abc8675309é", /WORMHOLE_TOKEN has a character gRPC metadata cannot carry \(character 11: /],
      ["abc8675309\u0000", /character 11/],
      ["abc8675309 ", /WORMHOLE_TOKEN begins or ends with a space, which HTTP\/2 drops/],
      [" abc8675309", /begins or ends with a space/],
    ];
    for (const [token, says] of cases) {
      assert.throws(
        () => nodeFromEnv({ WORMHOLE_TOKEN: token }),
        (err: Error) => says.test(err.message) && !err.message.includes("8675309"),
        JSON.stringify(token),
      );
    }
    assert.equal(nodeFromEnv({ WORMHOLE_TOKEN: "a b~!{}" }).token, "a b~!{}", "inner spaces and punctuation are fine");
  });
  it("a token with a newline is refused without showing it", () => {
    assert.throws(
      () => nodeFromEnv({ WORMHOLE_TOKEN: "abc8675309\nx" }),
      (err: Error) => /WORMHOLE_TOKEN has more than one line/.test(err.message) && !err.message.includes("8675309"),
    );
  });
});

describe("merging: flag > environment > file > default", () => {
  const flags = (values: NodeValues): Layer<NodeValues> => ({ source: { kind: "flags" }, values });
  const env = (values: NodeValues): Layer<NodeValues> => ({ source: { kind: "env" }, values });
  const file = (values: NodeValues): Layer<NodeValues> => ({ source: { kind: "file", path: PATH }, values });

  it("defaults when nothing is given", () => {
    assert.deepEqual(mergeNode([flags({}), env({}), file({})]), {
      addresses: [],
      iface: null,
      token: { kind: "none" },
      refreshMs: 15_000,
      keepaliveSec: 25,
      probeIntervalMs: 1_000,
      allowRelay: true,
      controlSocket: "/run/wormhole/node.sock",
      tls: null,
      autoPeers: null,
      autoPeersGraceMs: 300_000,
      logLevel: "info",
      logFormat: "text",
    });
    const r = mergeRegistry([]);
    assert.equal(r.tls, null);
    assert.equal(r.address, ":1638");
    assert.equal(r.pollIntervalMs, 250);
    assert.equal(r.http, null);
    assert.equal(r.iface, null);
  });

  it("each key comes from the highest layer that gives it", () => {
    const s = mergeNode([
      flags({ refreshMs: 1_000 }),
      env({ refreshMs: 2_000, keepaliveSec: 7, address: ["env:1"] }),
      file({ refreshMs: 3_000, keepaliveSec: 8, iface: "wgf", address: ["file:1"] }),
    ]);
    assert.equal(s.refreshMs, 1_000);
    assert.equal(s.keepaliveSec, 7);
    assert.deepEqual(s.addresses, ["env:1"]);
    assert.equal(s.iface, "wgf");
    assert.equal(s.probeIntervalMs, 1_000);
  });

  it("the token comes whole from one layer: a token file on the command line beats a token in the environment", () => {
    const s = mergeNode([flags({ tokenFile: "/flag" }), env({ token: "from-env" }), file({ token: "from-file" })]);
    assert.deepEqual(s.token, { kind: "file", path: "/flag", origin: { name: "--token-file", config: null } });
    const e = mergeNode([flags({}), env({ token: "from-env" }), file({ tokenFile: "/f" })]);
    assert.deepEqual(e.token, { kind: "value", token: "from-env", origin: { name: "WORMHOLE_TOKEN", config: null } });
    const f = mergeNode([flags({}), env({}), file({ tokenFile: "/f" })]);
    assert.deepEqual(f.token, { kind: "file", path: "/f", origin: { name: "node.token_file", config: PATH } });
  });

  it("both token and token file in one layer is an error naming both", () => {
    assert.throws(() => mergeNode([flags({ token: "a", tokenFile: "/b" })]), /only one of --token and --token-file/);
    assert.throws(() => mergeNode([flags({}), env({ token: "a", tokenFile: "/b" })]), /only one of WORMHOLE_TOKEN and WORMHOLE_TOKEN_FILE/);
    assert.throws(
      () => mergeNode([file({ token: "a", tokenFile: "/b" })]),
      (err: Error) => err.message === "config /etc/wormhole/node.toml: give the token with only one of node.token and node.token_file",
    );
  });

  it("--no-relay (false) on the command line beats relay = true in the file", () => {
    const layers: Layer<RegistryValues>[] = [
      { source: { kind: "flags" }, values: { relay: false } },
      { source: { kind: "env" }, values: {} },
      { source: { kind: "file", path: PATH }, values: { relay: true } },
    ];
    assert.equal(mergeRegistry(layers).relay, false);
    assert.equal(mergeRegistry(layers.slice(1)).relay, true);
    assert.equal(mergeRegistry([]).relay, true, "relaying is on by default");
  });

  it("http off in the environment overrides the file's address", () => {
    const layers: Layer<RegistryValues>[] = [
      { source: { kind: "flags" }, values: {} },
      { source: { kind: "env" }, values: { http: null } },
      { source: { kind: "file", path: PATH }, values: { http: { host: "127.0.0.1", port: 9638 } } },
    ];
    assert.equal(mergeRegistry(layers).http, null);
    assert.deepEqual(mergeRegistry(layers.filter((l) => l.source.kind !== "env")).http, { host: "127.0.0.1", port: 9638 });
  });
});

describe("TLS settings", () => {
  const PIN = `sha256//${Buffer.alloc(32, 7).toString("base64")}`;
  const PIN2 = `sha256//${Buffer.alloc(32, 9).toString("base64")}`;
  const REG = "/etc/wormhole/registry.toml";

  it("the registry needs the certificate and the key together, and says which one is missing where", () => {
    assert.deepEqual(mergeRegistry([{ source: { kind: "flags" }, values: { tlsCert: "/c", tlsKey: "/k" } }]).tls, { certFile: "/c", keyFile: "/k" });
    assert.deepEqual(
      mergeRegistry([
        { source: { kind: "flags" }, values: { tlsCert: "/c" } },
        { source: { kind: "file", path: REG }, values: { tlsKey: "/k" } },
      ]).tls,
      { certFile: "/c", keyFile: "/k" },
    );
    assert.throws(() => mergeRegistry([{ source: { kind: "flags" }, values: { tlsCert: "/c" } }]), /: --tls-cert is given without --tls-key: TLS needs both/);
    assert.throws(
      () => mergeRegistry([{ source: { kind: "file", path: REG }, values: { tlsKey: "/k" } }]),
      (err: Error) => err instanceof ConfigError && err.message.startsWith(`registry.tls_key in config ${REG} is given without --tls-cert`),
    );
  });

  it("a node's CA file or pins turn TLS on; tls alone uses the system's CAs; tls = false with either is refused", () => {
    const flags = (values: NodeValues): Layer<NodeValues> => ({ source: { kind: "flags" }, values });
    assert.deepEqual(mergeNode([flags({ tlsPin: [PIN] })]).tls, { caFile: null, pins: [PIN] });
    assert.deepEqual(mergeNode([flags({ tlsCa: "/ca" })]).tls, { caFile: "/ca", pins: [] });
    assert.deepEqual(mergeNode([flags({ tls: true })]).tls, { caFile: null, pins: [] });
    assert.equal(mergeNode([flags({ tls: false })]).tls, null);
    assert.throws(
      () => mergeNode([flags({ tls: false }), { source: { kind: "env" }, values: { tlsPin: [PIN] } }]),
      /: --tls turns TLS off, but WORMHOLE_TLS_PIN is given$/,
    );
  });

  it("pins: several, comma-separated, from the environment; a bad one is named and quoted", () => {
    assert.deepEqual(nodeFromEnv({ WORMHOLE_TLS_PIN: `${PIN}, ${PIN2}`, WORMHOLE_TLS: "yes", WORMHOLE_TLS_CA: "/ca" }), { tlsPin: [PIN, PIN2], tls: true, tlsCa: "/ca" });
    assert.throws(() => nodeFromEnv({ WORMHOLE_TLS_PIN: "sha256//abc" }), /: WORMHOLE_TLS_PIN `sha256\/\/abc' is not a public-key pin/);
    assert.throws(() => nodeFromEnv({ WORMHOLE_TLS_PIN: ` ,` }), /: WORMHOLE_TLS_PIN is empty$/);
  });

  it("in the config file, relative certificate, key and CA paths are relative to the file", () => {
    const file = parseConfig(`[registry]\ntls_cert = "r.crt"\ntls_key = "/abs/r.key"\n[node]\ntls_ca = "ca/ca.crt"\ntls_pin = "${PIN}"\n`, REG);
    assert.equal(file.registry?.tlsCert, "/etc/wormhole/r.crt");
    assert.equal(file.registry?.tlsKey, "/abs/r.key");
    assert.equal(file.node?.tlsCa, "/etc/wormhole/ca/ca.crt");
    assert.deepEqual(file.node?.tlsPin, [PIN]);
    assert.match(parseError(`[node]\ntls_pin = "md5//x"\n`), /node\.tls_pin `md5\/\/x' is not a public-key pin/);
  });
});

describe("listen addresses", () => {
  const good: Array<[string, ReturnType<typeof listenValue>]> = [
    ["127.0.0.1:9638", { host: "127.0.0.1", port: 9638 }],
    ["[::1]:9638", { host: "::1", port: 9638 }],
    [":9638", { host: null, port: 9638 }],
    ["localhost:0", { host: "localhost", port: 0 }],
    ["off", null],
  ];
  for (const [text, want] of good) it(`reads ${text}`, () => assert.deepEqual(listenValue("--http", text), want));
  for (const text of ["", "9638", "127.0.0.1", "::1:9638", "host:99999", "a b:1", "[::1]"]) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.throws(() => listenValue("--http", text), /--http `.*' is not a listen address/));
  }
});

describe("peer names", () => {
  it("a named peer shows its name, another its short key", () => {
    const names = new Map([[ALICE, "alice"]]);
    assert.equal(peerLabel(names, ALICE), "alice");
    assert.equal(peerLabel(names, BOB), "AgICAgIC…");
    assert.equal(shortKey(BOB), "AgICAgIC…");
  });
});

describe("the example configs in deploy/", () => {
  for (const role of ["registry", "node"] as const) {
    it(`deploy/${role}.toml parses and fills the [${role}] table`, () => {
      const path = fileURLToPath(new URL(`../../deploy/${role}.toml`, import.meta.url));
      const file = parseConfig(readFileSync(path, "utf8"), path);
      assert.ok(file[role], `[${role}] table`);
      assert.equal(file[role]?.tokenFile, "/etc/wormhole/token");
      assert.equal(file.hasToken, false, "the example keeps the token out of the file");
    });
  }
});

describe("registry STUN setting", () => {
  const withAddress = (address: string): Layer<RegistryValues>[] => [{ source: { kind: "flags" }, values: { address } }];
  const cases: Array<[string, Layer<RegistryValues>[], { host: string | null; port: number } | null]> = [
    ["default: every address when the API listens on :1638", [], { host: null, port: 3478 }],
    ["0.0.0.0 is every address too", withAddress("0.0.0.0:1638"), { host: null, port: 3478 }],
    ["[::] is every address too", withAddress("[::]:1638"), { host: null, port: 3478 }],
    ["follows the API's host", withAddress("203.0.113.1:1638"), { host: "203.0.113.1", port: 3478 }],
    ["follows an IPv6 API host", withAddress("[2001:db8::1]:1638"), { host: "2001:db8::1", port: 3478 }],
    ["given: wins over the API's host", [{ source: { kind: "env" }, values: { address: "203.0.113.1:1638", stun: { host: "203.0.113.9", port: 4000 } } }], { host: "203.0.113.9", port: 4000 }],
    ["off", [{ source: { kind: "file", path: PATH }, values: { stun: null } }], null],
  ];
  for (const [name, layers, want] of cases) {
    it(name, () => assert.deepEqual(mergeRegistry(layers).stun, want));
  }

  it("WORMHOLE_STUN is read and checked, naming the variable and quoting the value", () => {
    assert.deepEqual(registryFromEnv({ WORMHOLE_STUN: "[2001:DB8::1]:3478" }).stun, { host: "2001:db8::1", port: 3478 });
    assert.equal(registryFromEnv({ WORMHOLE_STUN: "off" }).stun, null);
    for (const bad of ["3478", "stun.example.net:3478", "203.0.113.1:65535", "203.0.113.1:x"]) {
      assert.throws(() => registryFromEnv({ WORMHOLE_STUN: bad }), (e: Error) => e instanceof ConfigError && e.message.startsWith(`WORMHOLE_STUN \`${bad}' is not a STUN address`));
    }
  });
});

describe("several registries and --auto-peers", () => {
  it("an address list keeps its order and refuses an empty entry or the same address twice", () => {
    assert.deepEqual(addressListValue("--address", "a.example:1638, 192.0.2.1:1638"), ["a.example:1638", "192.0.2.1:1638"]);
    assert.throws(() => addressListValue("--address", "a:1,,b:2"), /--address `a:1,,b:2' has an empty address/);
    assert.throws(() => addressListValue("--address", "a:1,a:1"), /--address names `a:1' twice/);
  });

  it("the environment gives several registries as a comma-separated list", () => {
    const env = nodeFromEnv({ WORMHOLE_ADDRESS: "192.0.2.1:1638,198.51.100.1:1638" });
    assert.deepEqual(mergeNode([{ source: { kind: "env" }, values: env }]).addresses, ["192.0.2.1:1638", "198.51.100.1:1638"]);
  });

  it("a prefix must be one, without host bits", () => {
    assert.equal(prefixValue("--auto-peers", "10.77.0.0/24"), "10.77.0.0/24");
    assert.equal(prefixValue("--auto-peers", "fd77::/64"), "fd77::/64");
    assert.throws(() => prefixValue("--auto-peers", "10.77.0.0"), /--auto-peers `10\.77\.0\.0' is not an IP prefix/);
    assert.throws(() => prefixValue("--auto-peers", "10.77.0.9/24"), /--auto-peers `10\.77\.0\.9\/24' has host bits set: the prefix is 10\.77\.0\.0\/24/);
    assert.throws(() => prefixValue("--auto-peers", "mesh"), /is not an IP prefix/);
  });

  it("auto-peers is off unless given", () => {
    assert.equal(mergeNode([]).autoPeers, null);
    assert.equal(mergeNode([{ source: { kind: "env" }, values: nodeFromEnv({ WORMHOLE_AUTO_PEERS: "10.77.0.0/24" }) }]).autoPeers, "10.77.0.0/24");
  });
});
