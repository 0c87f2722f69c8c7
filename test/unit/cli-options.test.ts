/**
 * The flags of node, registry and netcheck as built from the settings table:
 * what a command line gives (and only that: no defaults of commander's), the
 * seed's and earlier versions' spellings, and the table's checks naming the
 * flag. The commands' actions are replaced: nothing runs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Command } from "commander";
import { mergeNode, mergeRegistry, NODE_DEFAULTS, REGISTRY_DEFAULTS, type NodeValues, type RegistryValues, type Role } from "../../src/config/index.js";
import { flagValues, UsageError } from "../../src/cli/common.js";
import { netcheckCommand } from "../../src/cli/netcheck.js";
import { nodeCommand } from "../../src/cli/node.js";
import { registryCommand } from "../../src/cli/registry.js";

const MAKERS = { node: nodeCommand, registry: registryCommand, netcheck: netcheckCommand } as const;

/** The command, its action replaced, after parsing `args`. */
function parsed(command: keyof typeof MAKERS, args: readonly string[]): Command {
  const cmd: Command = MAKERS[command]()
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .action(() => {});
  return cmd.parse([...args], { from: "user" });
}

/** Parses `args` with the command's flags and returns the settings they give. */
function given(command: keyof typeof MAKERS, args: readonly string[]): Record<string, unknown> {
  const role: Role = command === "registry" ? "registry" : "node";
  return flagValues(parsed(command, args), role, command === "netcheck" ? ["address", "iface", "token", "tokenFile", "tls", "tlsCa", "tlsPin"] : undefined);
}

function refused(command: keyof typeof MAKERS, args: readonly string[], says: RegExp): void {
  assert.throws(() => given(command, args), (err: Error) => err instanceof UsageError && says.test(err.message), `${command} ${args.join(" ")}`);
}

describe("flags give only what is typed", () => {
  for (const command of ["node", "registry", "netcheck"] as const) {
    it(`wormhole ${command} with no flags gives no setting (the defaults come from the table, below the environment and the file)`, () => {
      assert.deepEqual(given(command, []), {});
      // Nor does commander hold a default of its own (a lone --no-relay would make relay true): only netcheck's --stun-port, not a setting.
      const held = Object.entries(parsed(command, []).opts()).filter(([, v]) => v !== undefined);
      assert.deepEqual(held, command === "netcheck" ? [["stunPort", 3478]] : []);
    });
  }
  it("the merge fills the table's defaults", () => {
    const node = mergeNode([{ source: { kind: "flags" }, values: given("node", []) as NodeValues }]);
    for (const [k, v] of Object.entries(NODE_DEFAULTS)) assert.deepEqual(node[k as keyof typeof node], v, k);
    const registry = mergeRegistry([{ source: { kind: "flags" }, values: given("registry", []) as RegistryValues }]);
    for (const [k, v] of Object.entries(REGISTRY_DEFAULTS)) assert.deepEqual(registry[k as keyof typeof registry], v, k);
    assert.equal(NODE_DEFAULTS.refreshMs, 15_000);
    assert.equal(REGISTRY_DEFAULTS.address, ":1638");
    assert.equal(REGISTRY_DEFAULTS.http, null);
  });
});

describe("the seed's command lines and earlier spellings", () => {
  it("wormhole registry -i wg0 -t TOKEN", () => {
    assert.deepEqual(given("registry", ["-i", "wg0", "-t", "TOKEN"]), { iface: "wg0", token: "TOKEN" });
  });
  it("wormhole node -a HOST:1638 -t TOKEN -r 30s", () => {
    assert.deepEqual(given("node", ["-a", "203.0.113.1:1638", "-t", "TOKEN", "-r", "30s"]), { address: ["203.0.113.1:1638"], token: "TOKEN", refreshMs: 30_000 });
  });
  it("--ifcae, the seed's typo, gives the interface", () => {
    assert.deepEqual(given("registry", ["--ifcae", "wg1"]), { iface: "wg1" });
  });
  it("registry: --no-relay turns relaying off, --relay (the old opt-in) on", () => {
    assert.deepEqual(given("registry", ["--no-relay"]), { relay: false });
    assert.deepEqual(given("registry", ["--relay"]), { relay: true });
  });
  it("node: --no-relay and --no-allow-relay turn relaying off, --allow-relay on", () => {
    assert.deepEqual(given("node", ["--no-relay"]), { allowRelay: false });
    assert.deepEqual(given("node", ["--no-allow-relay"]), { allowRelay: false });
    assert.deepEqual(given("node", ["--allow-relay"]), { allowRelay: true });
  });
  it("--state-dir is refused, saying why", () => {
    refused("node", ["--state-dir", "/var/lib/wormhole"], /^--state-dir is no longer used/);
  });
  it("-A and -w", () => {
    const key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    assert.deepEqual(given("registry", ["-A", ":1639", "-w", key]), { addressHttp: { host: null, port: 1639 }, watchPeerKey: key });
  });
});

describe("several registries", () => {
  it("-a X -a Y and -a X,Y both give two registries, in order", () => {
    assert.deepEqual(given("node", ["-a", "192.0.2.1:1638", "-a", "198.51.100.1:1638"]).address, ["192.0.2.1:1638", "198.51.100.1:1638"]);
    assert.deepEqual(given("node", ["-a", "192.0.2.1:1638,198.51.100.1:1638"]).address, ["192.0.2.1:1638", "198.51.100.1:1638"]);
    assert.deepEqual(given("node", ["-a", "a:1,b:2", "-a", "c:3"]).address, ["a:1", "b:2", "c:3"]);
  });
  it("the same registry twice, across flags or in one list, is refused naming it", () => {
    refused("node", ["-a", "a:1", "-a", "a:1"], /^--address names `a:1' twice$/);
    refused("node", ["-a", "a:1,b:2", "-a", "b:2"], /^--address names `b:2' twice$/);
    refused("node", ["-a", "a:1,,b:2"], /^--address `a:1,,b:2' has an empty address/);
  });
  it("netcheck takes the node's list too", () => {
    assert.deepEqual(given("netcheck", ["-a", "a:1", "-a", "b:2"]).address, ["a:1", "b:2"]);
  });
});

describe("a bad value is refused by the setting's own check, naming the flag and quoting the value", () => {
  const cases: ReadonlyArray<[keyof typeof MAKERS, string[], RegExp]> = [
    ["node", ["-r", "5x"], /^--refresh `5x' is not a duration/],
    ["node", ["--refresh", "0s"], /^--refresh `0s' must be more than zero/],
    ["node", ["--probe-interval", "soon"], /^--probe-interval `soon' is not a duration/],
    ["node", ["--keepalive", "0"], /^--keepalive `0' is not a whole number from 1 to 65535$/],
    ["node", ["-i", "a b"], /^--iface `a b' is not a valid interface name/],
    ["node", ["--auto-peers", "10.77.0.9/24"], /^--auto-peers `10\.77\.0\.9\/24' has host bits set/],
    ["node", ["--tls-pin", "nope"], /^--tls-pin `nope' is not a public-key pin/],
    ["node", ["--control-socket", ""], /^--control-socket `' is not a file path/],
    ["registry", ["--poll-interval", "0"], /^--poll-interval `0' is not a duration/],
    ["registry", ["--http", "9638"], /^--http `9638' is not a listen address/],
    ["registry", ["--relay-limit", "-1"], /^--relay-limit `-1' is not a whole number from 0 to 1000000$/],
    ["registry", ["--stun", "stun.example:3478"], /^--stun `stun\.example:3478' is not a STUN address/],
    ["registry", ["--ifcae", "a/b"], /^--ifcae `a\/b' is not a valid interface name/],
    ["registry", ["-w", "not-a-key"], /^--watch-peer-key `not-a-key' is not a WireGuard public key/],
    ["netcheck", ["--stun-port", "65535"], /^--stun-port `65535' is not a whole number from 1 to 65534$/],
  ];
  for (const [command, args, says] of cases) it(`wormhole ${command} ${args.join(" ")}`, () => refused(command, args, says));

  it("a token's problem is told without the token", () => {
    assert.throws(
      () => given("node", ["-t", " secret-tok"]),
      (err: Error) => err instanceof UsageError && /^--token begins or ends with a space/.test(err.message) && !err.message.includes("secret-tok"),
    );
  });
  it("a log level not in the list is commander's usage error, listing them", () => {
    assert.throws(() => given("node", ["--log-level", "loud"]), /Allowed choices are trace, debug, info, warn, error, fatal, silent/);
    assert.deepEqual(given("node", ["--log-level", "debug", "--log-format", "json"]), { logLevel: "debug", logFormat: "json" });
  });
});
