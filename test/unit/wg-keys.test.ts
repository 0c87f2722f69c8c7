import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { checkKey, isKey, keyFromHex, keyToHex, publicKeyFromPrivate } from "../../src/wg/keys.js";

// RFC 7748 section 6.1 (Alice): a private scalar and its X25519 public key.
const RFC_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const RFC_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

describe("keys: validation", () => {
  const good = Buffer.from(RFC_PUBLIC, "hex").toString("base64");
  const cases: { name: string; text: string; ok: boolean }[] = [
    { name: "a real key", text: good, ok: true },
    { name: "all zero", text: `${"A".repeat(43)}=`, ok: true },
    { name: "too short", text: "abc", ok: false },
    { name: "no padding", text: good.slice(0, 43), ok: false },
    { name: "two padding chars", text: `${good.slice(0, 42)}==`, ok: false },
    { name: "45 chars", text: `${good}A`, ok: false },
    { name: "non-canonical trailing bits", text: `${"A".repeat(42)}B=`, ok: false },
    { name: "base64url alphabet", text: `${"_".repeat(42)}A=`, ok: false },
    { name: "space inside", text: `${good.slice(0, 20)} ${good.slice(21)}`, ok: false },
    { name: "empty", text: "", ok: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(isKey(c.text), c.ok);
      if (c.ok) assert.equal(checkKey(c.text), c.text);
      else assert.throws(() => checkKey(c.text, "public key"), TypeError);
    });
  }

  it("names the thing and quotes the value", () => {
    assert.throws(() => checkKey("abc", "public key"), { name: "TypeError", message: "public key is not 32 bytes of base64: `abc'" });
  });

  it("never shows a secret", () => {
    const secret = randomBytes(32).toString("base64").slice(0, 40);
    assert.throws(
      () => checkKey(secret, "private key", { secret: true }),
      (e: Error) => !e.message.includes(secret) && /private key is not 32 bytes of base64: \(40 characters, not shown\)/.test(e.message),
    );
    const hex = randomBytes(31).toString("hex");
    assert.throws(() => keyFromHex(hex, "preshared key", { secret: true }), (e: Error) => !e.message.includes(hex));
  });

  it("rejects bad hex with the value quoted", () => {
    assert.throws(() => keyFromHex("zz", "public key"), { message: "public key is not 32 bytes of hex: `zz'" });
    assert.throws(() => keyFromHex("a".repeat(63)), TypeError);
  });
});

describe("keys: conversions", () => {
  it("hex <-> base64 on a known key", () => {
    const b64 = keyFromHex(RFC_PUBLIC);
    assert.equal(b64, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
    assert.equal(keyToHex(b64), RFC_PUBLIC);
  });

  it("accepts upper-case hex and emits lower case", () => {
    assert.equal(keyToHex(keyFromHex(RFC_PUBLIC.toUpperCase())), RFC_PUBLIC);
  });

  it("round-trips any 32 bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const hex = Buffer.from(bytes).toString("hex");
        const b64 = keyFromHex(hex);
        assert.ok(isKey(b64));
        assert.equal(b64.length, 44);
        assert.equal(keyToHex(b64), hex);
        assert.equal(keyFromHex(keyToHex(b64)), b64);
      }),
    );
  });

  it("refuses any string that is not 44 canonical base64 characters (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        const valid = Buffer.from(s, "base64").length === 32 && Buffer.from(s, "base64").toString("base64") === s;
        assert.equal(isKey(s), valid);
      }),
    );
  });
});

describe("keys: publicKeyFromPrivate", () => {
  it("matches the RFC 7748 test vector", () => {
    assert.equal(publicKeyFromPrivate(Buffer.from(RFC_PRIVATE, "hex")), Buffer.from(RFC_PUBLIC, "hex").toString("base64"));
  });

  it("clamps like WireGuard: the clamped and unclamped scalar give one key", () => {
    const raw = Buffer.from(RFC_PRIVATE, "hex");
    const clamped = Buffer.from(raw);
    clamped[0]! &= 248;
    clamped[31]! = (clamped[31]! & 127) | 64;
    assert.notDeepEqual(raw, clamped);
    assert.equal(publicKeyFromPrivate(raw), publicKeyFromPrivate(clamped));
  });

  it("leaves the caller's buffer alone and refuses wrong lengths without showing them", () => {
    const raw = randomBytes(32);
    const copy = Buffer.from(raw);
    publicKeyFromPrivate(raw);
    assert.deepEqual(raw, copy);
    const short = randomBytes(31);
    assert.throws(() => publicKeyFromPrivate(short), (e: Error) => e instanceof TypeError && !e.message.includes(short.toString("hex")));
  });
});
