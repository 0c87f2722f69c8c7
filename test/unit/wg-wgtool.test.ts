import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CommandError } from "../../src/util/runner.js";
import type { RunOptions, RunResult, Runner } from "../../src/util/runner.js";
import { WgError } from "../../src/wg/types.js";
import { parseDump, SET_BATCH, wgtoolGetDevice, wgtoolUpdatePeers } from "../../src/wg/wgtool.js";

const key = (): string => randomBytes(32).toString("base64");
const PRIV = key();
const PSK = key();
const PUB = key();
const K1 = key();
const K2 = key();
const K3 = key();

function assertNoSecret(text: string, ...secrets: string[]): void {
  for (const s of secrets) {
    for (let i = 0; i + 16 <= s.length; i += 4) assert.ok(!text.includes(s.slice(i, i + 16)), `secret text leaked: ${s}`);
  }
}

const row = (...f: (string | number)[]): string => f.join("\t");
const HEAD = row(PRIV, PUB, 51820, "off");

describe("wgtool: parseDump", () => {
  it("parses interface and peers (v4, v6, none; keepalive on/off; several allowed IPs)", () => {
    const text = [
      HEAD,
      row(K1, PSK, "192.168.1.2:51820", "10.0.0.2/32,fd00::2/128", 1700000000, 100, 200, 25),
      row(K2, "(none)", "[2001:db8::1]:4500", "(none)", 0, 0, 0, "off"),
      row(K3, "(none)", "(none)", "10.0.0.3/32", 0, 0, 0, "off"),
      "",
    ].join("\n");
    const d = parseDump("wg0", text);
    assert.deepEqual(d, {
      name: "wg0",
      type: "kernel",
      publicKey: PUB,
      listenPort: 51820,
      peers: [
        { publicKey: K1, endpoint: { ip: "192.168.1.2", port: 51820 }, lastHandshakeMs: 1_700_000_000_000, rxBytes: 100, txBytes: 200, allowedIps: ["10.0.0.2/32", "fd00::2/128"], persistentKeepaliveSec: 25, hasPresharedKey: true },
        { publicKey: K2, endpoint: { ip: "2001:db8::1", port: 4500 }, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps: [], persistentKeepaliveSec: 0, hasPresharedKey: false },
        { publicKey: K3, endpoint: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps: ["10.0.0.3/32"], persistentKeepaliveSec: 0, hasPresharedKey: false },
      ],
    });
    assertNoSecret(JSON.stringify(d), PRIV, PSK);
  });

  it("an interface without keys or peers", () => {
    assert.deepEqual(parseDump("wg1", `${row("(none)", "(none)", 0, "0x1234")}\n`), { name: "wg1", type: "kernel", publicKey: "", listenPort: 0, peers: [] });
  });

  const bad: { name: string; text: string; message: RegExp }[] = [
    { name: "empty", text: "", message: /is empty/ },
    { name: "short header", text: row(PRIV, PUB, 1), message: /line 1: 3 fields, expected 4/ },
    { name: "bad public key", text: row(PRIV, "abc", 1, "off"), message: /line 1: bad public key: `abc'/ },
    { name: "bad port", text: row(PRIV, PUB, 99999, "off"), message: /bad listen port: `99999'/ },
    { name: "bad fwmark", text: row(PRIV, PUB, 1, "on"), message: /bad fwmark: `on'/ },
    { name: "short peer line", text: [HEAD, row(K1, PSK, "(none)")].join("\n"), message: /line 2: 3 fields, expected 8/ },
    { name: "bad endpoint", text: [HEAD, row(K1, PSK, "1.2.3.4", "(none)", 0, 0, 0, "off")].join("\n"), message: /line 2: bad endpoint: `1\.2\.3\.4'/ },
    { name: "bad allowed IP", text: [HEAD, row(K1, PSK, "(none)", "10.0.0.1/32,10.0.0.x/32", 0, 0, 0, "off")].join("\n"), message: /bad allowed IP: `10\.0\.0\.x\/32'/ },
    { name: "bad handshake", text: [HEAD, row(K1, PSK, "(none)", "(none)", -1, 0, 0, "off")].join("\n"), message: /bad latest handshake: `-1'/ },
    { name: "bad keepalive", text: [HEAD, row(K1, PSK, "(none)", "(none)", 0, 0, 0, 70000)].join("\n"), message: /bad persistent keepalive: `70000'/ },
    { name: "private key in the public key field is not shown", text: row(PUB, PRIV.slice(0, 43), 1, "off"), message: /bad public key: <43 characters, not shown>/ },
  ];
  for (const c of bad) {
    it(`refuses: ${c.name}`, () => {
      assert.throws(
        () => parseDump("wg0", c.text),
        (e: unknown) => {
          if (!(e instanceof WgError && e.code === "protocol" && c.message.test(e.message))) return false;
          assertNoSecret(e.message, PRIV, PSK);
          return true;
        },
      );
    });
  }

  it("throws only WgError on arbitrary output, and errors never show a secret (property)", () => {
    // Secrets scattered anywhere: a parsed result may then legitimately hold one (the tool said it
    // was a public key), but an error message must not show it.
    const fields = fc.array(fc.oneof(fc.string(), fc.constantFrom("(none)", "off", "0", "51820", PRIV, PSK, "1.2.3.4:5")), { maxLength: 9 });
    const text = fc.oneof(fc.string(), fc.array(fields.map((f) => f.join("\t"))).map((l) => l.join("\n")));
    fc.assert(
      fc.property(text, (t) => {
        try {
          parseDump("wg0", t);
        } catch (e) {
          assert.ok(e instanceof WgError, `threw ${String(e)}`);
          assertNoSecret(e.message, PRIV, PSK);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("on damaged real output, neither the result nor an error shows a secret (property)", () => {
    const good = [HEAD, row(K1, PSK, "192.168.1.2:51820", "10.0.0.2/32,fd00::2/128", 1700000000, 100, 200, 25), row(K2, PSK, "(none)", "(none)", 0, 0, 0, "off")].join("\n");
    const damaged = fc.tuple(fc.nat(), fc.nat(), fc.string({ maxLength: 5 })).map(([a, b, junk]) => {
      const i = a % good.length;
      return b % 2 === 0 ? good.slice(0, i) : good.slice(0, i) + junk + good.slice(i + (b % 20));
    });
    let errors = 0;
    fc.assert(
      fc.property(damaged, (t) => {
        try {
          assertNoSecret(JSON.stringify(parseDump("wg0", t)), PRIV, PSK);
        } catch (e) {
          assert.ok(e instanceof WgError, `threw ${String(e)}`);
          assertNoSecret(e.message, PRIV, PSK);
          errors++;
        }
      }),
      { numRuns: 2000 },
    );
    assert.ok(errors > 100, `the damage should break the output often (${errors} errors)`);
  });
});

/** A Runner that answers from a script and records every call. */
function fakeRunner(answer: (argv: readonly string[]) => Partial<RunResult> | Error): Runner & { calls: { argv: readonly string[]; options?: RunOptions }[] } {
  const calls: { argv: readonly string[]; options?: RunOptions }[] = [];
  const run = async (argv: readonly string[], options?: RunOptions): Promise<RunResult> => {
    calls.push({ argv: [...argv], options });
    const a = answer(argv);
    if (a instanceof Error) throw a;
    return { stdout: "", stderr: "", code: 0, ...a };
  };
  return Object.assign(run, { calls });
}

const DUMP = `${[HEAD, row(K1, PSK, "192.168.1.2:51820", "10.0.0.2/32", 0, 0, 0, "off"), row(K2, "(none)", "(none)", "(none)", 0, 0, 0, "off")].join("\n")}\n`;

describe("wgtool: backend with a fake runner", () => {
  it("getDevice runs `wg show NAME dump` and parses it", async () => {
    const runner = fakeRunner(() => ({ stdout: DUMP }));
    const d = await wgtoolGetDevice("wg0", { runner, timeoutMs: 1234 });
    assert.deepEqual(runner.calls.map((c) => c.argv), [["wg", "show", "wg0", "dump"]]);
    assert.equal(runner.calls[0]?.options?.timeoutMs, 1234);
    assert.equal(d.peers.length, 2);
    assert.equal(d.publicKey, PUB);
    assertNoSecret(JSON.stringify(d), PRIV, PSK);
  });

  it("updatePeers checks the peer list, then one `wg set` for the peers that still exist", async () => {
    const runner = fakeRunner((argv) => (argv[2] === "wg0" && argv[3] === "peers" ? { stdout: `${K1}\n${K2}\n` } : {}));
    await wgtoolUpdatePeers(
      "wg0",
      [
        { publicKey: K1, endpoint: { ip: "203.0.113.7", port: 41000 }, persistentKeepaliveSec: 25 },
        { publicKey: K3, endpoint: { ip: "203.0.113.8", port: 1 } }, // gone: must not be created
        { publicKey: K2, endpoint: { ip: "2001:DB8::2", port: 51820 } },
        { publicKey: K2, persistentKeepaliveSec: 0 },
        { publicKey: K1 }, // changes nothing
      ],
      { runner, timeoutMs: 5000 },
    );
    assert.deepEqual(
      runner.calls.map((c) => c.argv),
      [
        ["wg", "show", "wg0", "peers"],
        ["wg", "set", "wg0", "peer", K1, "endpoint", "203.0.113.7:41000", "persistent-keepalive", "25", "peer", K2, "endpoint", "[2001:db8::2]:51820", "peer", K2, "persistent-keepalive", "0"],
      ],
    );
    for (const c of runner.calls) {
      assertNoSecret(c.argv.join(" "), PRIV, PSK);
      assert.ok(!c.argv.includes("private-key") && !c.argv.includes("preshared-key"));
      assert.equal(c.options?.input, undefined);
    }
  });

  it("updatePeers recreates a peer: remove first, then set it with its allowed IPs", async () => {
    const runner = fakeRunner((argv) => (argv[3] === "peers" ? { stdout: `${K1}\n${K2}\n` } : {}));
    await wgtoolUpdatePeers(
      "wg0",
      [
        { publicKey: K1, endpoint: { ip: "203.0.113.7", port: 41000 }, persistentKeepaliveSec: 25, recreate: { allowedIps: ["10.0.0.2/32", "fd00::2/128"] } },
        { publicKey: K3, endpoint: { ip: "203.0.113.8", port: 1 }, recreate: { allowedIps: ["10.0.0.3/32"] } }, // gone: not created
      ],
      { runner, timeoutMs: 5000 },
    );
    assert.deepEqual(
      runner.calls.map((c) => c.argv),
      [
        ["wg", "show", "wg0", "peers"],
        ["wg", "set", "wg0", "peer", K1, "remove"],
        ["wg", "set", "wg0", "peer", K1, "endpoint", "203.0.113.7:41000", "persistent-keepalive", "25", "allowed-ips", "10.0.0.2/32,fd00::2/128"],
      ],
    );
  });

  it("updatePeers adds only a peer that is not there and removes only one that is", async () => {
    const runner = fakeRunner((argv) => (argv[3] === "peers" ? { stdout: `${K1}\n${K2}\n` } : {}));
    await wgtoolUpdatePeers(
      "wg0",
      [
        { publicKey: K3, persistentKeepaliveSec: 25, add: { allowedIps: ["10.0.0.3/32"] } },
        { publicKey: K1, persistentKeepaliveSec: 25, add: { allowedIps: ["10.0.0.9/32"] } }, // there already: untouched
        { publicKey: K2, remove: true },
        { publicKey: PUB, remove: true }, // gone: nothing to do
      ],
      { runner, timeoutMs: 5000 },
    );
    assert.deepEqual(
      runner.calls.map((c) => c.argv),
      [
        ["wg", "show", "wg0", "peers"],
        ["wg", "set", "wg0", "peer", K2, "remove"],
        ["wg", "set", "wg0", "peer", K3, "persistent-keepalive", "25", "allowed-ips", "10.0.0.3/32"],
      ],
    );
  });

  it("updatePeers replaces allowed IPs with `allowed-ips'", async () => {
    const runner = fakeRunner((argv) => (argv[3] === "peers" ? { stdout: `${K1}\n` } : {}));
    await wgtoolUpdatePeers("wg0", [{ publicKey: K1, allowedIps: ["10.0.0.2/32", "10.0.0.3/32"] }], { runner, timeoutMs: 5000 });
    assert.deepEqual(runner.calls.at(-1)?.argv, ["wg", "set", "wg0", "peer", K1, "allowed-ips", "10.0.0.2/32,10.0.0.3/32"]);
  });

  it("updatePeers runs nothing when no listed peer is left or nothing changes", async () => {
    const runner = fakeRunner(() => ({ stdout: `${K1}\n` }));
    await wgtoolUpdatePeers("wg0", [{ publicKey: K3, endpoint: { ip: "10.1.1.1", port: 1 } }], { runner, timeoutMs: 5000 });
    await wgtoolUpdatePeers("wg0", [{ publicKey: K1 }], { runner, timeoutMs: 5000 });
    await wgtoolUpdatePeers("wg0", [], { runner, timeoutMs: 5000 });
    assert.deepEqual(runner.calls.map((c) => c.argv), [["wg", "show", "wg0", "peers"]]);
  });

  it("updatePeers splits many peers over several `wg set` runs", async () => {
    const keys = Array.from({ length: SET_BATCH * 2 + 1 }, () => key());
    const runner = fakeRunner((argv) => (argv[3] === "peers" ? { stdout: keys.join("\n") } : {}));
    await wgtoolUpdatePeers("wg0", keys.map((k) => ({ publicKey: k, persistentKeepaliveSec: 25 })), { runner, timeoutMs: 5000 });
    const sets = runner.calls.filter((c) => c.argv[1] === "set");
    assert.deepEqual(sets.map((c) => (c.argv.length - 3) / 4), [SET_BATCH, SET_BATCH, 1]);
    assert.deepEqual(sets.flatMap((c) => c.argv.filter((_, i) => i > 3 && (i - 4) % 4 === 0)), keys);
  });

  it("updatePeers validates everything before running anything", async () => {
    const runner = fakeRunner(() => ({ stdout: `${K1}\n` }));
    await assert.rejects(
      wgtoolUpdatePeers("wg0", [{ publicKey: K1, endpoint: { ip: "10.1.1.1", port: 1 } }, { publicKey: K1, endpoint: { ip: "10.1.1.1", port: 0 } }], { runner, timeoutMs: 5000 }),
      { name: "TypeError", message: "update 2: endpoint port is not in 1-65535: `0'" },
    );
    await assert.rejects(wgtoolUpdatePeers("wg0", [{ publicKey: "x y" }], { runner, timeoutMs: 5000 }), TypeError);
    assert.equal(runner.calls.length, 0);
  });

  const failures: { name: string; answer: Partial<RunResult> | Error; code: string; message: RegExp }[] = [
    {
      name: "`wg` missing",
      answer: new CommandError(["wg"], null, "wg: command not found", { cause: Object.assign(new Error("spawn wg ENOENT"), { code: "ENOENT" }) }),
      code: "tool-missing",
      message: /^`wg' \(wireguard-tools\) is needed for kernel interface `wg0' but was not found; install wireguard-tools$/,
    },
    { name: "no such interface", answer: { code: 1, stderr: "Unable to access interface: No such device\n" }, code: "not-found", message: /WireGuard interface `wg0' not found .*No such device/ },
    { name: "not root", answer: { code: 1, stderr: "Unable to access interface: Operation not permitted\n" }, code: "permission", message: /run as root/ },
    { name: "other failure", answer: { code: 1, stderr: "Something else\n", stdout: `${PRIV}\t${PUB}\n` }, code: "failed", message: /`wg show wg0 dump' failed \(exit status 1\): Something else$/ },
    { name: "runner error", answer: new Error("boom"), code: "failed", message: /could not run: boom/ },
  ];
  for (const f of failures) {
    it(`maps failure: ${f.name}`, async () => {
      const runner = fakeRunner(() => f.answer);
      await assert.rejects(wgtoolGetDevice("wg0", { runner, timeoutMs: 5000 }), (e: unknown) => {
        assert.ok(e instanceof WgError);
        assert.equal(e.code, f.code);
        assert.match(e.message, f.message);
        assertNoSecret(e.message, PRIV);
        return true;
      });
    });
  }
});
