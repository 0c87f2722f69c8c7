/**
 * Fuzz target: the STUN codec and the registry's answer to a datagram
 * (src/stun/codec.ts, answer.ts, client.ts checkReply). Inputs: well-formed
 * messages of every class with known and unknown attributes, the same with
 * one byte changed, and junk. Checks: nothing throws; the responder answers
 * only Binding requests, from one of its own sockets, never with more bytes
 * than the request plus one address attribute, and what it sends parses and
 * tells the sender's address back; the client's check of any datagram is a
 * reply, a problem or nothing, never an exception.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { answerStun, type AnswerContext } from "../src/stun/answer.js";
import { checkReply } from "../src/stun/client.js";
import { ATTR, BINDING_REQUEST, decodeAddress, encodeStun, parseStun } from "../src/stun/codec.js";
import { main, type FuzzTarget } from "./lib.js";

const CONTEXTS: readonly AnswerContext[] = [
  { source: { ip: "198.51.100.7", port: 40001 }, local: { ip: "203.0.113.1", port: 3478 }, other: { ip: "203.0.113.2", port: 3479 }, altPort: 3479, otherFamily: { ip: "2001:db8::1", port: 3478 } },
  { source: { ip: "2001:db8:ffff::1", port: 65535 }, local: { ip: "2001:db8::1", port: 3478 }, other: null, altPort: 3479, otherFamily: null },
];
const TYPES = [0x0001, 0x0101, 0x0111, 0x0003, 0x0004, 0x0011, 0x3fff];
const ATTRS = [0x0001, 0x0003, 0x0006, 0x0008, 0x0020, 0x0026, 0x8022, 0x8028, 0x802b, 0x802c, 0xc0fe, 0x7fff];

const message = fc
  .record({
    type: fc.constantFrom(...TYPES),
    tid: fc.uint8Array({ minLength: 12, maxLength: 12 }),
    attrs: fc.array(fc.record({ type: fc.constantFrom(...ATTRS), value: fc.uint8Array({ maxLength: 48 }) }), { maxLength: 6 }),
    fingerprint: fc.boolean(),
  })
  .map((m) => encodeStun(m.type, m.tid, m.attrs, m.fingerprint));
const mangled = fc.tuple(message, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, i, v]) => {
  const c = Uint8Array.from(b);
  c[i % c.length] = v;
  return c;
});
const input = fc.record({ bytes: fc.oneof(message, mangled, fc.uint8Array({ maxLength: 200 })), ctx: fc.constantFrom(...CONTEXTS) });

export const target: FuzzTarget<{ bytes: Uint8Array; ctx: AnswerContext }> = {
  name: "stun",
  about: "STUN parse, the responder's answer (Binding only, no amplification), the client's reply check",
  arbitrary: input,
  check: ({ bytes, ctx }) => {
    const msg = parseStun(bytes);
    const answer = answerStun(bytes, ctx);
    if ("reply" in answer) {
      assert.ok(typeof msg !== "string" && msg.type === BINDING_REQUEST, "answers only Binding requests");
      const addressAttr = ctx.source.ip.includes(":") ? 24 : 12;
      assert.ok(answer.reply.length <= bytes.length + addressAttr, `reply of ${answer.reply.length} bytes to a request of ${bytes.length}`);
      const own = [ctx.local.ip, ctx.other?.ip].filter(Boolean);
      assert.ok(own.includes(answer.from.ip) && [ctx.local.port, ctx.altPort].includes(answer.from.port), "sent from one of its own sockets");
      const reply = parseStun(answer.reply);
      assert.ok(typeof reply !== "string", String(reply));
      const mapped = reply.attributes.find((a) => a.type === ATTR.XOR_MAPPED_ADDRESS);
      assert.ok(mapped);
      assert.deepEqual(decodeAddress(mapped.value, reply.transactionId, true), ctx.source);
      const checked = checkReply(answer.reply, answer.from, reply.transactionId, answer.from);
      assert.ok(checked && "mapped" in checked);
    }
    checkReply(bytes, ctx.local, bytes.subarray(8, 20), ctx.local);
  },
};

await main(import.meta.url, target);
