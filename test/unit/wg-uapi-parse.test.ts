import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { keyFromHex, publicKeyFromPrivate } from "../../src/wg/keys.js";
import { WgError } from "../../src/wg/types.js";
import type { WgDevice } from "../../src/wg/types.js";
import { checkUpdates, formatUapiSet, parseUapiGet, parseUapiSetReply } from "../../src/wg/uapi-parse.js";

const PRIV = randomBytes(32).toString("hex");
const PSK = randomBytes(32).toString("hex");
const PUB_OF_PRIV = publicKeyFromPrivate(Buffer.from(PRIV, "hex"));
const P1 = randomBytes(32).toString("hex");
const P2 = randomBytes(32).toString("hex");
const P3 = randomBytes(32).toString("hex");

/** Every spelling of a secret that must never leak: hex (both cases), base64, and 16-character pieces of them. */
function secretForms(hex: string): string[] {
  const b64 = Buffer.from(hex, "hex").toString("base64");
  const forms = [hex, hex.toUpperCase(), b64];
  for (const f of [hex, b64]) for (let i = 0; i + 16 <= f.length; i += 8) forms.push(f.slice(i, i + 16));
  return forms;
}
function assertNoSecret(text: string, ...hexSecrets: string[]): void {
  for (const h of hexSecrets) for (const f of secretForms(h)) assert.ok(!text.includes(f), `secret text leaked: ${f}`);
}

const lines = (...l: string[]): string => `${l.join("\n")}\n\n`;
const peerBlock = (key: string, ...rest: string[]): string[] => [
  `public_key=${key}`,
  `preshared_key=${PSK}`,
  "protocol_version=1",
  ...rest,
];

interface Case {
  name: string;
  reply: string;
  check?: (d: WgDevice) => void;
  error?: { code: string; message: RegExp };
}

const cases: Case[] = [
  {
    name: "device without peers",
    reply: lines(`private_key=${PRIV}`, "listen_port=51820", "errno=0"),
    check: (d) => assert.deepEqual(d, { name: "wg0", type: "userspace", publicKey: PUB_OF_PRIV, listenPort: 51820, peers: [] }),
  },
  {
    name: "IPv4 endpoint, handshake, counters, keepalive, two allowed IPs",
    reply: lines(
      `private_key=${PRIV}`,
      "listen_port=51820",
      "fwmark=51",
      ...peerBlock(P1, "endpoint=192.168.1.2:51820", "last_handshake_time_sec=1700000000", "last_handshake_time_nsec=987654321"),
      "tx_bytes=1234",
      "rx_bytes=5678",
      "persistent_keepalive_interval=25",
      "allowed_ip=10.0.0.2/32",
      "allowed_ip=fd00::2/128",
      "errno=0",
    ),
    check: (d) =>
      assert.deepEqual(d.peers, [
        {
          publicKey: keyFromHex(P1),
          endpoint: { ip: "192.168.1.2", port: 51820 },
          lastHandshakeMs: 1_700_000_000_987,
          rxBytes: 5678,
          txBytes: 1234,
          allowedIps: ["10.0.0.2/32", "fd00::2/128"],
          persistentKeepaliveSec: 25,
          hasPresharedKey: true,
        },
      ]),
  },
  {
    name: "IPv6 endpoint; no endpoint; never handshook; keepalive off",
    reply: lines(
      `private_key=${PRIV}`,
      "listen_port=1",
      ...peerBlock(P1, "endpoint=[2001:db8::1]:4500", "last_handshake_time_sec=0", "last_handshake_time_nsec=0", "persistent_keepalive_interval=0"),
      ...peerBlock(P2, "last_handshake_time_sec=0", "last_handshake_time_nsec=0", "tx_bytes=0", "rx_bytes=0", "persistent_keepalive_interval=0"),
      "errno=0",
    ),
    check: (d) => {
      assert.equal(d.peers.length, 2);
      assert.deepEqual(d.peers[0]?.endpoint, { ip: "2001:db8::1", port: 4500 });
      assert.equal(d.peers[0]?.persistentKeepaliveSec, 0);
      assert.equal(d.peers[1]?.endpoint, null);
      assert.equal(d.peers[1]?.lastHandshakeMs, 0);
      assert.deepEqual(d.peers[1]?.allowedIps, []);
    },
  },
  {
    name: "non-canonical addresses are canonicalised; IPv4-mapped endpoint becomes IPv4",
    reply: lines(...peerBlock(P1, "endpoint=[::ffff:198.51.100.1]:9", "allowed_ip=FD00:0:0::1/128"), "errno=0"),
    check: (d) => {
      assert.deepEqual(d.peers[0]?.endpoint, { ip: "198.51.100.1", port: 9 });
      assert.deepEqual(d.peers[0]?.allowedIps, ["fd00::1/128"]);
    },
  },
  {
    name: "no private key: empty public key, port 0 when not given",
    reply: lines(...peerBlock(P3), "errno=0"),
    check: (d) => {
      assert.equal(d.publicKey, "");
      assert.equal(d.listenPort, 0);
      assert.equal(d.peers[0]?.publicKey, keyFromHex(P3));
    },
  },
  {
    name: "all-zero private key means no key",
    reply: lines(`private_key=${"0".repeat(64)}`, "errno=0"),
    check: (d) => assert.equal(d.publicKey, ""),
  },
  {
    name: "unknown keys are ignored (forward compatible)",
    reply: lines(`private_key=${PRIV}`, "future_device_knob=7", ...peerBlock(P1, "future_peer_knob=x=y"), "errno=0"),
    check: (d) => assert.equal(d.peers.length, 1),
  },
  {
    name: "reply without the final empty line",
    reply: `listen_port=3\nerrno=0`,
    check: (d) => assert.equal(d.listenPort, 3),
  },
  { name: "errno not 0", reply: lines("errno=-13"), error: { code: "failed", message: /refused to report its state: errno 13 \(EACCES\)/ } },
  { name: "errno not 0 after a body", reply: lines("listen_port=1", "errno=5"), error: { code: "failed", message: /errno 5 \(EIO\)/ } },
  { name: "empty reply", reply: "", error: { code: "protocol", message: /ended early \(no errno line; the reply was empty\)/ } },
  {
    name: "truncated reply (no errno line)",
    reply: `private_key=${PRIV}\nlisten_port=51820\n${peerBlock(P1).join("\n")}\n`,
    error: { code: "protocol", message: /ended early \(no errno line\)$/ },
  },
  {
    name: "truncated in the middle of the private key",
    reply: `private_key=${PRIV.slice(0, 40)}`,
    error: { code: "protocol", message: /ended early/ },
  },
  { name: "bad errno", reply: lines("errno=x"), error: { code: "protocol", message: /bad errno line: `errno=x'/ } },
  { name: "not key=value", reply: lines("hello", "errno=0"), error: { code: "protocol", message: /line 1: not key=value: `hello'/ } },
  { name: "empty line inside", reply: "listen_port=1\n\nerrno=0\n\n", error: { code: "protocol", message: /line 2: empty line/ } },
  { name: "bad port", reply: lines("listen_port=70000", "errno=0"), error: { code: "protocol", message: /line 1: larger than 65535: `listen_port=70000'/ } },
  { name: "bad number", reply: lines(...peerBlock(P1, "tx_bytes=12a"), "errno=0"), error: { code: "protocol", message: /line 4: not a number: `tx_bytes=12a'/ } },
  { name: "bad endpoint", reply: lines(...peerBlock(P1, "endpoint=nowhere:1"), "errno=0"), error: { code: "protocol", message: /not an endpoint: `endpoint=nowhere:1'/ } },
  { name: "bad allowed IP", reply: lines(...peerBlock(P1, "allowed_ip=10.0.0.1/40"), "errno=0"), error: { code: "protocol", message: /not an IP prefix: `allowed_ip=10\.0\.0\.1\/40'/ } },
  { name: "short public key", reply: lines("public_key=abcd", "errno=0"), error: { code: "protocol", message: /not 32 bytes of hex: `public_key=abcd'/ } },
  { name: "peer key before any public_key", reply: lines("endpoint=1.2.3.4:5", "errno=0"), error: { code: "protocol", message: /endpoint before any public_key/ } },
  {
    name: "bad private key is not shown",
    reply: lines(`private_key=${PRIV.slice(0, 63)}g`, "errno=0"),
    error: { code: "protocol", message: /line 1: not 32 bytes of hex: private_key=<not shown>$/ },
  },
  {
    name: "preshared key before any public_key is not shown",
    reply: lines(`preshared_key=${PSK}`, "errno=0"),
    error: { code: "protocol", message: /preshared_key before any public_key: preshared_key=<not shown>$/ },
  },
  {
    name: "key-like text in a wrong place is not shown",
    reply: lines(`listen_port=${PRIV}`, "errno=0"),
    error: { code: "protocol", message: /not a number: listen_port=<64 characters, not shown>$/ },
  },
];

describe("uapi: parseUapiGet", () => {
  for (const c of cases) {
    it(c.name, () => {
      if (c.error) {
        assert.throws(
          () => parseUapiGet("wg0", c.reply),
          (e: unknown) => {
            assert.ok(e instanceof WgError, String(e));
            assert.equal(e.code, c.error?.code);
            assert.match(e.message, c.error!.message);
            assertNoSecret(e.message, PRIV, PSK);
            return true;
          },
        );
      } else {
        const d = parseUapiGet("wg0", c.reply);
        c.check?.(d);
        assertNoSecret(JSON.stringify(d), PRIV, PSK);
      }
    });
  }

  it("drops the private and preshared keys: nothing in the result holds them", () => {
    const d = parseUapiGet("wg0", lines(`private_key=${PRIV}`, ...peerBlock(P1), "errno=0"));
    assert.equal(d.publicKey, PUB_OF_PRIV);
    assertNoSecret(JSON.stringify(d), PRIV, PSK);
    assert.deepEqual(Object.keys(d).sort(), ["listenPort", "name", "peers", "publicKey", "type"]);
    assert.deepEqual(Object.keys(d.peers[0]!).sort(), ["allowedIps", "endpoint", "hasPresharedKey", "lastHandshakeMs", "persistentKeepaliveSec", "publicKey", "rxBytes", "txBytes"]);
  });
});

// ---- properties ----

const hexKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"));
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
const v6 = fc.array(fc.oneof(fc.constant(0), fc.nat(0xffff)), { minLength: 8, maxLength: 8 }).filter((g) => !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff));
const peerModel = fc.record({
  key: hexKey,
  psk: hexKey,
  endpoint: fc.option(fc.oneof(v4.map((ip) => ({ ip, v6: false })), v6.map((g) => ({ ip: g.map((x) => x.toString(16)).join(":"), v6: true }))), { nil: null }),
  port: fc.integer({ min: 1, max: 65535 }),
  sec: fc.nat(2_000_000_000),
  nsec: fc.nat(999_999_999),
  rx: fc.maxSafeNat(),
  tx: fc.maxSafeNat(),
  keepalive: fc.nat(65535),
  allowed: fc.array(fc.tuple(v4, fc.nat(32)).map(([a, l]) => `${a}/${l}`), { maxLength: 4 }),
});
const deviceModel = fc.record({ priv: hexKey, port: fc.nat(65535), peers: fc.array(peerModel, { maxLength: 6 }) });
type DeviceModel = typeof deviceModel extends fc.Arbitrary<infer T> ? T : never;

function render(m: DeviceModel): string {
  const out = [`private_key=${m.priv}`, `listen_port=${m.port}`];
  for (const p of m.peers) {
    out.push(`public_key=${p.key}`, `preshared_key=${p.psk}`, "protocol_version=1");
    if (p.endpoint) out.push(`endpoint=${p.endpoint.v6 ? `[${p.endpoint.ip}]` : p.endpoint.ip}:${p.port}`);
    out.push(`last_handshake_time_sec=${p.sec}`, `last_handshake_time_nsec=${p.nsec}`, `tx_bytes=${p.tx}`, `rx_bytes=${p.rx}`);
    out.push(`persistent_keepalive_interval=${p.keepalive}`, ...p.allowed.map((a) => `allowed_ip=${a}`));
  }
  return `${out.join("\n")}\nerrno=0\n\n`;
}

describe("uapi: preshared key presence", () => {
  it("an all-zero preshared_key means none; any other means one; neither is kept", () => {
    const d = parseUapiGet(
      "wg0",
      lines(`private_key=${PRIV}`, `public_key=${P1}`, `preshared_key=${"0".repeat(64)}`, `public_key=${P2}`, `preshared_key=${PSK}`, `public_key=${P3}`, "errno=0"),
    );
    assert.deepEqual(
      d.peers.map((p) => p.hasPresharedKey),
      [false, true, false],
    );
    assertNoSecret(JSON.stringify(d), PRIV, PSK);
  });
});

describe("uapi: parseUapiGet properties", () => {
  it("parses what a daemon would print, field for field", () => {
    fc.assert(
      fc.property(deviceModel, (m) => {
        const d = parseUapiGet("wgp", render(m));
        assert.equal(d.listenPort, m.port);
        assert.equal(d.publicKey, publicKeyFromPrivate(Buffer.from(m.priv, "hex")));
        assert.equal(d.peers.length, m.peers.length);
        for (const [i, p] of m.peers.entries()) {
          const got = d.peers[i]!;
          assert.equal(got.publicKey, keyFromHex(p.key));
          assert.equal(got.endpoint === null, p.endpoint === null);
          if (got.endpoint && p.endpoint && !p.endpoint.v6) assert.deepEqual(got.endpoint, { ip: p.endpoint.ip, port: p.port });
          assert.equal(got.lastHandshakeMs, p.sec * 1000 + Math.floor(p.nsec / 1e6));
          assert.equal(got.rxBytes, p.rx);
          assert.equal(got.txBytes, p.tx);
          assert.equal(got.persistentKeepaliveSec, p.keepalive);
          assert.deepEqual(got.allowedIps, p.allowed);
        }
        const json = JSON.stringify(d);
        assertNoSecret(json, m.priv, ...m.peers.map((p) => p.psk));
      }),
      { numRuns: 300 },
    );
  });

  it("throws only WgError on arbitrary text", () => {
    const junkLine = fc.oneof(
      fc.string(),
      fc.tuple(fc.constantFrom("private_key", "listen_port", "public_key", "endpoint", "allowed_ip", "tx_bytes", "errno", "last_handshake_time_nsec", "x"), fc.string()).map(([k, v]) => `${k}=${v}`),
    );
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(junkLine).map((l) => l.join("\n")), fc.array(junkLine).map((l) => `${l.join("\n")}\nerrno=0\n\n`)), (text) => {
        try {
          parseUapiGet("wg0", text);
        } catch (e) {
          assert.ok(e instanceof WgError, `threw ${String(e)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("on a damaged reply, throws only WgError and never shows a secret", () => {
    const damaged = fc
      .tuple(deviceModel.filter((m) => m.peers.length > 0), fc.nat(), fc.nat(), fc.constantFrom("truncate", "drop-line", "swap-key", "garble"), fc.string({ maxLength: 8 }))
      .map(([m, a, b, how, junk]) => {
        const text = render(m);
        const ls = text.split("\n");
        const i = a % ls.length;
        if (how === "truncate") return { m, text: text.slice(0, a % text.length) };
        if (how === "drop-line") return { m, text: ls.filter((_, j) => j !== i).join("\n") };
        const line = ls[i] ?? "";
        const eq = line.indexOf("=");
        if (how === "swap-key") {
          // Put a value under another key: secrets land where they do not belong.
          const other = ls[b % ls.length] ?? "";
          const key = other.slice(0, Math.max(0, other.indexOf("=")));
          ls[i] = `${key}=${line.slice(eq + 1)}`;
        } else {
          ls[i] = line.slice(0, b % (line.length + 1)) + junk + line.slice(b % (line.length + 1));
        }
        return { m, text: ls.join("\n") };
      });
    fc.assert(
      fc.property(damaged, ({ m, text }) => {
        try {
          parseUapiGet("wg0", text);
        } catch (e) {
          assert.ok(e instanceof WgError, `threw ${String(e)}`);
          assertNoSecret(e.message, m.priv, ...m.peers.map((p) => p.psk));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("uapi: set request and reply", () => {
  const k1 = keyFromHex(P1);
  const k2 = keyFromHex(P2);

  it("writes update_only=true for every peer, endpoint and keepalive as given", () => {
    assert.equal(
      formatUapiSet([
        { publicKey: k1, endpoint: { ip: "203.0.113.5", port: 51820 }, persistentKeepaliveSec: 25 },
        { publicKey: k2, endpoint: { ip: "2001:DB8::9", port: 4500 } },
        { publicKey: k1, persistentKeepaliveSec: 0 },
      ]),
      `set=1\npublic_key=${P1}\nupdate_only=true\nendpoint=203.0.113.5:51820\npersistent_keepalive_interval=25\n` +
        `public_key=${P2}\nupdate_only=true\nendpoint=[2001:db8::9]:4500\n` +
        `public_key=${P1}\nupdate_only=true\npersistent_keepalive_interval=0\n\n`,
    );
  });

  it("recreate: remove=true, then the same key again with endpoint, keepalive and allowed IPs", () => {
    assert.equal(
      formatUapiSet([{ publicKey: k1, endpoint: { ip: "203.0.113.5", port: 51820 }, persistentKeepaliveSec: 25, recreate: { allowedIps: ["10.0.0.2/32", "FD00::2/128"] } }]),
      `set=1\npublic_key=${P1}\nupdate_only=true\nremove=true\npublic_key=${P1}\nendpoint=203.0.113.5:51820\npersistent_keepalive_interval=25\n` +
        `allowed_ip=10.0.0.2/32\nallowed_ip=fd00::2/128\n\n`,
    );
    assert.throws(() => formatUapiSet([{ publicKey: k1, recreate: { allowedIps: ["10.0.0.2"] } }]), /update 1: allowed IP is not an IP prefix/);
    assert.throws(() => formatUapiSet([{ publicKey: k1, recreate: { allowedIps: ["10.0.0.2/32\nremove=true"] } }]), TypeError);
  });

  it("add: no update_only, the peer with endpoint, keepalive and exactly its allowed IPs; alone or refused", () => {
    assert.equal(
      formatUapiSet([{ publicKey: k1, endpoint: { ip: "203.0.113.5", port: 51820 }, persistentKeepaliveSec: 25, add: { allowedIps: ["10.0.0.2/32"] } }]),
      `set=1\npublic_key=${P1}\nendpoint=203.0.113.5:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n\n`,
    );
    assert.throws(() => formatUapiSet([{ publicKey: k1, add: { allowedIps: ["10.0.0.2/32"] }, recreate: { allowedIps: [] } }]), /update 1: an add cannot also recreate/);
    assert.throws(() => formatUapiSet([{ publicKey: k1, add: { allowedIps: ["10.0.0.2/32\nremove=true"] } }]), TypeError);
  });

  it("remove: update_only=true then remove=true; nothing else may come with it", () => {
    assert.equal(formatUapiSet([{ publicKey: k1, remove: true }]), `set=1\npublic_key=${P1}\nupdate_only=true\nremove=true\n\n`);
    assert.throws(() => formatUapiSet([{ publicKey: k1, remove: true, persistentKeepaliveSec: 25 }]), /update 1: a remove cannot also set/);
    assert.throws(() => checkUpdates([{ publicKey: k1, remove: true, add: { allowedIps: [] } }]), /update 1: a remove cannot also set/);
  });

  it("allowedIps: replace_allowed_ips=true and exactly the given prefixes (empty: none)", () => {
    assert.equal(
      formatUapiSet([{ publicKey: k1, allowedIps: ["10.0.0.1/32", "10.0.0.3/32"] }, { publicKey: k2, allowedIps: [] }]),
      `set=1\npublic_key=${P1}\nupdate_only=true\nreplace_allowed_ips=true\nallowed_ip=10.0.0.1/32\nallowed_ip=10.0.0.3/32\n` +
        `public_key=${P2}\nupdate_only=true\nreplace_allowed_ips=true\n\n`,
    );
    assert.throws(() => formatUapiSet([{ publicKey: k1, allowedIps: ["nope"] }]), /update 1: allowed IP is not an IP prefix/);
  });

  it("leaves out updates that change nothing; null when none is left", () => {
    assert.equal(formatUapiSet([]), null);
    assert.equal(formatUapiSet([{ publicKey: k1 }]), null);
  });

  it("refuses invalid updates with a TypeError naming the update", () => {
    assert.throws(() => formatUapiSet([{ publicKey: k1, persistentKeepaliveSec: 5 }, { publicKey: "nope" }]), {
      name: "TypeError",
      message: "update 2: peer public key is not 32 bytes of base64: `nope'",
    });
    assert.throws(() => formatUapiSet([{ publicKey: k1, persistentKeepaliveSec: 65536 }]), /update 1: persistent keepalive is not 0-65535 seconds: `65536'/);
    assert.throws(() => formatUapiSet([{ publicKey: k1, endpoint: { ip: "1.2.3.4\nremove=true", port: 1 } }]), TypeError);
  });

  it("parses the set reply", () => {
    parseUapiSetReply("wg0", "errno=0\n\n");
    assert.throws(() => parseUapiSetReply("wg0", "errno=-22\n\n"), { code: "failed", message: "WireGuard interface `wg0' refused the peer update: errno 22 (EINVAL)" });
    assert.throws(() => parseUapiSetReply("wg0", ""), { code: "protocol" });
    assert.throws(() => parseUapiSetReply("wg0", "listen_port=1\nerrno=0\n\n"), { code: "protocol" });
  });
});
