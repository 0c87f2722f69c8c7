/**
 * Fuzz target: parseDump (src/wg/wgtool.ts), the output of `wg show NAME dump`,
 * whose first field is the interface's private key.
 * Inputs: dumps `wg` would print, damaged (cut, spliced, lines and fields moved),
 * rows of random fields (secrets among them), and junk.
 * Checks: only WgError "protocol" is thrown; an undamaged dump parses field for
 * field; whatever parses is canonical; no secret ever shows in an error, nor in
 * a result unless the damage moved it into a field that is read.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { WgError, type WgDevice } from "../src/wg/types.js";
import { parseDump } from "../src/wg/wgtool.js";
import { base64Key, cidr, damagedText, goodPort, hexKey, ipv4, ipv6, leakedSecret, checkParsedDevice } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

const toHex = (b64: string) => Buffer.from(b64, "base64").toString("hex");

const peerModel = fc.record({
  key: base64Key,
  psk: fc.option(base64Key, { nil: null }),
  endpoint: fc.option(fc.oneof(ipv4, ipv6.map((a) => `[${a}]`)), { nil: null }),
  port: goodPort,
  allowed: fc.array(fc.oneof(fc.tuple(ipv4, fc.nat(32)).map(([a, l]) => `${a}/${l}`), fc.tuple(ipv6, fc.nat(128)).map(([a, l]) => `${a}/${l}`)), { maxLength: 4 }),
  hs: fc.nat(2_000_000_000),
  rx: fc.maxSafeNat(),
  tx: fc.maxSafeNat(),
  keepalive: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: null }),
});
const deviceModel = fc.record({
  priv: base64Key,
  pub: fc.option(base64Key, { nil: null }),
  port: fc.nat(65535),
  fwmark: fc.oneof(fc.constant("off"), fc.nat(0xffffffff).map((n) => `0x${n.toString(16)}`)),
  peers: fc.array(peerModel, { maxLength: 5 }),
});
type DeviceModel = typeof deviceModel extends fc.Arbitrary<infer T> ? T : never;

function render(m: DeviceModel): string {
  const rows = [[m.priv, m.pub ?? "(none)", m.port, m.fwmark].join("\t")];
  for (const p of m.peers) {
    rows.push(
      [p.key, p.psk ?? "(none)", p.endpoint ? `${p.endpoint}:${p.port}` : "(none)", p.allowed.length ? p.allowed.join(",") : "(none)", p.hs, p.rx, p.tx, p.keepalive ?? "off"].join("\t"),
    );
  }
  return `${rows.join("\n")}\n`;
}

const secretsOf = (m: DeviceModel) => [toHex(m.priv), ...m.peers.flatMap((p) => (p.psk ? [toHex(p.psk)] : []))];

interface Input {
  readonly text: string;
  readonly model: DeviceModel | null;
  readonly secrets: readonly string[];
}

const field = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("(none)", "off", "0", "51820", "1.2.3.4:5", "[::1]:0", "-1", "99999999999999999999"), base64Key, cidr);
const fromModel = deviceModel.chain((m) =>
  damagedText(fc.constant(render(m)), fc.oneof(fc.string({ maxLength: 12 }), field.map((f) => `\t${f}`))).map((text): Input => ({
    text,
    model: text === render(m) ? m : null,
    secrets: secretsOf(m),
  })),
);
const rows = fc
  .tuple(hexKey, fc.array(fc.array(field, { maxLength: 9 }), { maxLength: 8 }))
  .map(([priv, table]): Input => {
    const b64 = Buffer.from(priv, "hex").toString("base64");
    const text = [[b64, "(none)", "0", "off"].join("\t"), ...table.map((r) => r.join("\t"))].join("\n");
    return { text, model: null, secrets: [priv] };
  });

export const target: FuzzTarget<Input> = {
  name: "wg-dump",
  about: "parseDump on `wg show dump` output (damaged and whole), random rows and junk",
  arbitrary: fc.oneof({ weight: 3, arbitrary: fromModel }, { weight: 1, arbitrary: rows }, { weight: 1, arbitrary: fc.string().map((text): Input => ({ text, model: null, secrets: [] })) }),
  check({ text, model, secrets }) {
    let d: WgDevice;
    try {
      d = parseDump("wg0", text);
    } catch (e) {
      assert.ok(e instanceof WgError && e.code === "protocol", `threw ${String(e)}`);
      assert.equal(leakedSecret(e.message, ...secrets), null, `error shows a secret: ${e.message}`);
      assert.equal(model, null, `an undamaged dump was refused: ${e.message}`);
      return;
    }
    checkParsedDevice(d, "kernel");
    // Secrets sit in field 1 of the first line and field 2 of the others; elsewhere only if the damage moved them.
    const lines = text.split("\n");
    const moved = lines.some((l, i) =>
      l
        .split("\t")
        .some((f, j) => j !== (i === 0 ? 0 : 1) && leakedSecret(f, ...secrets) !== null),
    );
    if (!moved) assert.equal(leakedSecret(JSON.stringify(d), ...secrets), null, "a secret is in the result");
    if (model) {
      assert.equal(d.publicKey, model.pub ?? "");
      assert.equal(d.listenPort, model.port);
      assert.deepEqual(
        d.peers.map((p) => [p.publicKey, p.hasPresharedKey, p.endpoint?.port ?? null, p.allowedIps.length, p.lastHandshakeMs, p.rxBytes, p.txBytes, p.persistentKeepaliveSec]),
        model.peers.map((p) => [p.key, p.psk !== null, p.endpoint ? p.port : null, p.allowed.length, p.hs * 1000, p.rx, p.tx, p.keepalive ?? 0]),
      );
    }
  },
};

await main(import.meta.url, target);
