/**
 * Fuzz target: parseUapiGet (src/wg/uapi-parse.ts), the reply of a userspace
 * WireGuard daemon to `get=1`, which carries the private and preshared keys.
 * Inputs: replies a daemon would print, damaged (cut, spliced, lines dropped,
 * duplicated, swapped, values moved under other keys), and junk.
 * Checks: only WgError ("protocol" or "failed") is thrown; an undamaged reply
 * parses field for field; whatever parses is canonical; no secret ever shows
 * in an error, nor in a result unless the damage moved it out of its line.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { keyFromHex, publicKeyFromPrivate } from "../src/wg/keys.js";
import { WgError, type WgDevice } from "../src/wg/types.js";
import { parseUapiGet } from "../src/wg/uapi-parse.js";
import { damagedText, goodPort, hexKey, ipv4, ipv6, leakedSecret, checkParsedDevice } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

const peerModel = fc.record({
  key: hexKey,
  psk: fc.oneof(hexKey, fc.constant("0".repeat(64))),
  endpoint: fc.option(fc.oneof(ipv4, ipv6.map((a) => `[${a}]`)), { nil: null }),
  port: goodPort,
  sec: fc.nat(2_000_000_000),
  nsec: fc.nat(999_999_999),
  rx: fc.maxSafeNat(),
  tx: fc.maxSafeNat(),
  keepalive: fc.nat(65535),
  allowed: fc.array(fc.oneof(fc.tuple(ipv4, fc.nat(32)).map(([a, l]) => `${a}/${l}`), fc.tuple(ipv6, fc.nat(128)).map(([a, l]) => `${a}/${l}`)), { maxLength: 4 }),
  extra: fc.constantFrom("", "protocol_version=1", "fwmark=0"),
});
const deviceModel = fc.record({ priv: fc.oneof(hexKey, fc.constant("0".repeat(64))), port: fc.nat(65535), peers: fc.array(peerModel, { maxLength: 5 }) });
type DeviceModel = typeof deviceModel extends fc.Arbitrary<infer T> ? T : never;

function render(m: DeviceModel): string {
  const out = [`private_key=${m.priv}`, `listen_port=${m.port}`];
  for (const p of m.peers) {
    out.push(`public_key=${p.key}`, `preshared_key=${p.psk}`);
    if (p.extra) out.push(p.extra);
    if (p.endpoint) out.push(`endpoint=${p.endpoint}:${p.port}`);
    out.push(`last_handshake_time_sec=${p.sec}`, `last_handshake_time_nsec=${p.nsec}`, `tx_bytes=${p.tx}`, `rx_bytes=${p.rx}`);
    out.push(`persistent_keepalive_interval=${p.keepalive}`, ...p.allowed.map((a) => `allowed_ip=${a}`));
  }
  return `${out.join("\n")}\nerrno=0\n\n`;
}

const KEYS = ["private_key", "listen_port", "fwmark", "public_key", "preshared_key", "endpoint", "last_handshake_time_sec", "last_handshake_time_nsec", "tx_bytes", "rx_bytes", "persistent_keepalive_interval", "allowed_ip", "protocol_version", "errno", "x"];
const junkValue = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("", "-1", "99999999999999999999999", "1e3", "0x10", " 1", "[::1]:0", "1.2.3.4:65536", "10.0.0.1/33", "a=b"), hexKey);
const junkLine = fc.oneof(fc.string({ maxLength: 40 }), fc.tuple(fc.constantFrom(...KEYS), junkValue).map(([k, v]) => `${k}=${v}`));

interface Input {
  readonly text: string;
  /** The undamaged model the text was rendered from, when it was not damaged. */
  readonly model: DeviceModel | null;
  readonly secrets: readonly string[];
}

const fromModel = deviceModel.chain((m) =>
  damagedText(fc.constant(render(m)), fc.oneof(fc.string({ maxLength: 12 }), junkLine.map((l) => `\n${l}\n`))).map((text): Input => ({
    text,
    model: text === render(m) ? m : null,
    secrets: [m.priv, ...m.peers.map((p) => p.psk)].filter((s) => s !== "0".repeat(64)),
  })),
);
const junk = fc
  .tuple(fc.array(junkLine, { maxLength: 30 }), fc.constantFrom("", "\nerrno=0\n\n", "\nerrno=-22\n\n", "\nerrno=abc\n"))
  .map(([lines, end]): Input => ({ text: lines.join("\n") + end, model: null, secrets: [] }));

export const target: FuzzTarget<Input> = {
  name: "uapi-get",
  about: "parseUapiGet on daemon replies (damaged and whole) and junk",
  arbitrary: fc.oneof({ weight: 3, arbitrary: fromModel }, { weight: 1, arbitrary: junk }, { weight: 1, arbitrary: fc.string().map((text): Input => ({ text, model: null, secrets: [] })) }),
  check({ text, model, secrets }) {
    let d: WgDevice;
    try {
      d = parseUapiGet("wg0", text);
    } catch (e) {
      assert.ok(e instanceof WgError, `threw ${String(e)}`);
      assert.ok(e.code === "protocol" || e.code === "failed", e.code);
      assert.equal(leakedSecret(e.message, ...secrets), null, `error shows a secret: ${e.message}`);
      assert.equal(model, null, `an undamaged reply was refused: ${e.message}`);
      return;
    }
    checkParsedDevice(d, "userspace");
    // A secret may end up in the result only if the damage moved it out of its own line.
    const moved = text.split(/\r?\n/).some((l) => !/^(private_key|preshared_key)=/.test(l) && leakedSecret(l, ...secrets) !== null);
    if (!moved) assert.equal(leakedSecret(JSON.stringify(d), ...secrets), null, "a secret is in the result");
    if (model) {
      assert.equal(d.listenPort, model.port);
      assert.equal(d.publicKey, model.priv === "0".repeat(64) ? "" : publicKeyFromPrivate(Buffer.from(model.priv, "hex")));
      assert.deepEqual(
        d.peers.map((p) => [p.publicKey, p.lastHandshakeMs, p.rxBytes, p.txBytes, p.persistentKeepaliveSec, p.allowedIps.length, p.hasPresharedKey, p.endpoint?.port ?? null]),
        model.peers.map((p) => [keyFromHex(p.key), p.sec * 1000 + Math.floor(p.nsec / 1e6), p.rx, p.tx, p.keepalive, p.allowed.length, p.psk !== "0".repeat(64), p.endpoint ? p.port : null]),
      );
    }
  },
};

await main(import.meta.url, target);
