import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decode, encode, HEADER_BYTES, KEY_BYTES, keyBytes, toFrom, type RelayMessage } from "../../src/relay/wire.js";
import { key } from "../support/keys.js";

describe("relay datagrams", () => {
  const cases: Array<[string, RelayMessage, number]> = [
    ["hello, accepting relay", { type: "hello", acceptsRelay: true }, 5],
    ["hello, refusing relay", { type: "hello", acceptsRelay: false }, 5],
    ["welcome, relaying", { type: "welcome", relays: true }, 5],
    ["to a peer", { type: "to", key: key(3), payload: Buffer.from("ciphertext") }, HEADER_BYTES + KEY_BYTES + 10],
    ["from a peer, empty payload", { type: "from", key: key(4), payload: Buffer.alloc(0) }, HEADER_BYTES + KEY_BYTES],
  ];
  for (const [name, message, size] of cases) {
    it(`${name}: encodes to ${size} bytes and back`, () => {
      const bytes = encode(message);
      assert.equal(bytes.length, size);
      const back = decode(bytes);
      assert.deepEqual(back && "payload" in back ? { ...back, payload: Buffer.from(back.payload) } : back, message);
    });
  }

  const junk: Array<[string, Buffer]> = [
    ["empty", Buffer.alloc(0)],
    ["wrong magic", Buffer.from([0x00, 0x68, 1, 1, 1])],
    ["another version", Buffer.from([0x77, 0x68, 2, 1, 1])],
    ["unknown type", Buffer.from([0x77, 0x68, 1, 9, 1])],
    ["hello too long", Buffer.from([0x77, 0x68, 1, 1, 1, 0])],
    ["to without a whole key", Buffer.concat([Buffer.from([0x77, 0x68, 1, 3]), Buffer.alloc(31)])],
  ];
  for (const [name, bytes] of junk) it(`refuses ${name}`, () => assert.equal(decode(bytes), null));

  it("refuses to encode a key that is not a WireGuard key, quoting it", () => {
    assert.throws(() => encode({ type: "to", key: "nope", payload: Buffer.alloc(1) }), /`nope' is not a WireGuard public key/);
    assert.equal(keyBytes("nope"), null);
  });

  it("turns a 'to' into the 'from' its destination gets, naming the sender, same size", () => {
    const to = encode({ type: "to", key: key(3), payload: Buffer.from("x") });
    const from = decode(toFrom(to, keyBytes(key(7)) as Buffer));
    assert.equal(from?.type, "from");
    assert.equal(from && "key" in from ? from.key : null, key(7));
  });

  it("decode never throws, whatever the bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const m = decode(Buffer.from(bytes));
        return m === null || ["hello", "welcome", "to", "from"].includes(m.type);
      }),
    );
  });
});
