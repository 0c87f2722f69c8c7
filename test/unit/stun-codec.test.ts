import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ATTR,
  BINDING_REQUEST,
  BINDING_SUCCESS,
  bindingRequest,
  decodeAddress,
  encodeAddress,
  encodeBindingRequest,
  encodeStun,
  ipBytes,
  parseStun,
} from "../../src/stun/codec.js";
import { answerStun, StunLimiter, type AnswerContext } from "../../src/stun/answer.js";
import { checkReply } from "../../src/stun/client.js";
import { planStunAddresses } from "../../src/stun/server.js";
import { defaultStunHost } from "../../src/registry/run.js";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const TID = hex("b7e7a701 bc34d686 fa87dfae");

// RFC 5769 §2.2 and §2.3: sample Binding success responses (SOFTWARE, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT).
const RFC5769_V4 = hex(`0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200008 0001a147 e112a643
  00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
  80280004 c07d4c96`);
const RFC5769_V6 = hex(`01010048 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
  00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
  80280004 c8fb0b4c`);

describe("STUN codec", () => {
  it("reads the RFC 5769 sample responses, FINGERPRINT checked", () => {
    for (const [bytes, want] of [
      [RFC5769_V4, { ip: "192.0.2.1", port: 32853 }],
      [RFC5769_V6, { ip: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853 }],
    ] as const) {
      const msg = parseStun(bytes);
      assert.ok(typeof msg !== "string", String(msg));
      assert.equal(msg.type, BINDING_SUCCESS);
      assert.deepEqual(msg.transactionId, TID);
      const xma = msg.attributes.find((a) => a.type === ATTR.XOR_MAPPED_ADDRESS);
      assert.ok(xma);
      assert.deepEqual(decodeAddress(xma.value, msg.transactionId, true), want);
      // The same address encodes back to the same bytes.
      assert.deepEqual(encodeAddress(want, TID, true), xma.value);
    }
  });

  const bad: Array<[string, Uint8Array, RegExp]> = [
    ["too short", new Uint8Array(19), /shorter than a STUN header/],
    ["top bits set", hex("c0010000 2112a442 000000000000000000000000"), /first two bits/],
    ["no magic cookie (RFC 3489)", hex("00010000 00000000 000000000000000000000000"), /magic cookie/],
    ["length not a multiple of 4", hex("00010002 2112a442 000000000000000000000000 0000"), /multiple of 4/],
    ["length beyond the datagram", hex("00010008 2112a442 000000000000000000000000 00000000"), /does not match/],
    ["attribute past the end", hex("00010004 2112a442 000000000000000000000000 00030008"), /runs past the end/],
    ["bad fingerprint", Uint8Array.from([...RFC5769_V4.subarray(0, RFC5769_V4.length - 1), 0]), /FINGERPRINT does not match/],
  ];
  for (const [name, bytes, re] of bad) {
    it(`rejects: ${name}`, () => {
      const r = parseStun(bytes);
      assert.equal(typeof r, "string");
      assert.match(r as string, re);
    });
  }

  it("a Binding request with CHANGE-REQUEST round-trips", () => {
    const req = encodeBindingRequest(TID, { change: { changeIp: true, changePort: false }, paddingBytes: 10 });
    const msg = parseStun(req);
    assert.ok(typeof msg !== "string");
    assert.equal(msg.type, BINDING_REQUEST);
    assert.deepEqual(bindingRequest(msg), { change: { changeIp: true, changePort: false } });
  });

  it("refuses requests it does not understand", () => {
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["a success is no request", encodeStun(BINDING_SUCCESS, TID, []), /not a Binding request/],
      ["Allocate (TURN)", encodeStun(0x0003, TID, []), /not a Binding request/],
      ["USERNAME (ICE)", encodeStun(BINDING_REQUEST, TID, [{ type: 0x0006, value: new Uint8Array(4) }]), /comprehension-required attribute 0x0006/],
      ["CHANGE-REQUEST of 2 bytes", encodeStun(BINDING_REQUEST, TID, [{ type: ATTR.CHANGE_REQUEST, value: new Uint8Array(2) }]), /CHANGE-REQUEST is 2 bytes/],
    ];
    for (const [name, bytes, re] of cases) {
      const msg = parseStun(bytes);
      assert.ok(typeof msg !== "string", name);
      const r = bindingRequest(msg);
      assert.equal(typeof r, "string", name);
      assert.match(r as string, re, name);
    }
  });

  it("ipBytes: IPv4, IPv6, mapped IPv4, and not an address", () => {
    assert.deepEqual(ipBytes("203.0.113.1"), Uint8Array.of(203, 0, 113, 1));
    assert.deepEqual(ipBytes("2001:db8::1"), hex("20010db8000000000000000000000001"));
    assert.deepEqual(ipBytes("::ffff:192.0.2.1"), Uint8Array.of(192, 0, 2, 1));
    assert.equal(ipBytes("fe80::1%eth0"), null);
    assert.equal(ipBytes("example.net"), null);
  });

  it("property: any address and transaction id round-trip through XOR-MAPPED-ADDRESS inside a whole message", () => {
    const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(":"));
    const v4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }).map((b) => b.join("."));
    fc.assert(
      fc.property(fc.oneof(v4, v6), fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.boolean(), (ip, port, tid, fp) => {
        const bytes = ipBytes(ip);
        if (bytes === null || (bytes.length === 4 && ip.includes(":"))) return; // an IPv4-mapped IPv6 address comes back as IPv4
        const msg = encodeStun(BINDING_SUCCESS, tid, [{ type: ATTR.XOR_MAPPED_ADDRESS, value: encodeAddress({ ip, port }, tid, true) }], fp);
        const parsed = parseStun(msg);
        assert.ok(typeof parsed !== "string", String(parsed));
        const got = decodeAddress(parsed.attributes[0]?.value ?? new Uint8Array(), tid, true);
        assert.ok(typeof got !== "string");
        assert.deepEqual(ipBytes(got.ip), bytes);
        assert.equal(got.port, port);
      }),
    );
  });

  it("property (fuzz): parseStun and answerStun never throw, and any answer is no bigger than the request plus one address attribute", () => {
    const ctx: AnswerContext = {
      source: { ip: "2001:db8:ffff::1", port: 65535 },
      local: { ip: "203.0.113.1", port: 3478 },
      other: { ip: "203.0.113.2", port: 3479 },
      altPort: 3479,
      otherFamily: { ip: "2001:db8::1", port: 3478 },
    };
    const header = fc.record({ type: fc.constantFrom(0x0001, 0x0101, 0x0111, 0x0003, 0x4001), attrs: fc.array(fc.record({ type: fc.constantFrom(0x0003, 0x0026, 0x8022, 0x8028, 0x0006, 0x0020, 0xc0fe), value: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 5 }) });
    const structured = fc.tuple(header, fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.boolean()).map(([h, tid, fp]) => encodeStun(h.type, tid, h.attrs, fp));
    const mangled = fc.tuple(structured, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, i, v]) => {
      const c = Uint8Array.from(b);
      if (c.length) c[i % c.length] = v;
      return c;
    });
    fc.assert(
      fc.property(fc.oneof(structured, mangled, fc.uint8Array({ maxLength: 120 })), (bytes) => {
        parseStun(bytes);
        const a = answerStun(bytes, ctx);
        if ("reply" in a) {
          assert.ok(a.reply.length <= bytes.length + 24 /* an IPv6 XOR-MAPPED-ADDRESS */, `reply ${a.reply.length} bytes to a request of ${bytes.length}`);
          assert.ok(typeof parseStun(a.reply) !== "string");
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("STUN answers", () => {
  const ctx: AnswerContext = {
    source: { ip: "198.51.100.7", port: 40001 },
    local: { ip: "203.0.113.1", port: 3478 },
    other: { ip: "203.0.113.2", port: 3479 },
    altPort: 3479,
    otherFamily: { ip: "2001:db8::1", port: 3478 },
  };
  const reply = (req: Uint8Array, c: AnswerContext = ctx) => {
    const a = answerStun(req, c);
    assert.ok("reply" in a, "drop" in a ? a.drop : "");
    const r = checkReply(a.reply, a.from, TID, a.from);
    assert.ok(r && !("problem" in r), JSON.stringify(r));
    return { ...a, parsed: r };
  };

  it("a bare 20-byte request gets only the mapped address: 32 bytes", () => {
    const a = reply(encodeBindingRequest(TID));
    assert.equal(a.reply.length, 32);
    assert.deepEqual(a.parsed.mapped, ctx.source);
    assert.equal(a.parsed.other, null);
    assert.deepEqual(a.from, ctx.local);
  });

  it("a padded request also gets OTHER-ADDRESS and OTHER-FAMILY", () => {
    const a = reply(encodeBindingRequest(TID, { paddingBytes: 64 }));
    assert.deepEqual(a.parsed.other, ctx.other);
    assert.deepEqual(a.parsed.otherFamily, ctx.otherFamily);
  });

  const changes: Array<[string, { changeIp: boolean; changePort: boolean }, { ip: string; port: number }]> = [
    ["change port", { changeIp: false, changePort: true }, { ip: "203.0.113.1", port: 3479 }],
    ["change address", { changeIp: true, changePort: false }, { ip: "203.0.113.2", port: 3478 }],
    ["change both", { changeIp: true, changePort: true }, { ip: "203.0.113.2", port: 3479 }],
  ];
  for (const [name, change, from] of changes) {
    it(`CHANGE-REQUEST ${name}: answered from ${from.ip}:${from.port}`, () => {
      assert.deepEqual(reply(encodeBindingRequest(TID, { change })).from, from);
    });
  }

  it("change address without an alternate address: no answer; change port still works", () => {
    const noAlt = { ...ctx, other: null };
    const a = answerStun(encodeBindingRequest(TID, { change: { changeIp: true, changePort: false } }), noAlt);
    assert.ok("drop" in a);
    assert.match(a.drop, /has none/);
    assert.deepEqual(reply(encodeBindingRequest(TID, { change: { changeIp: false, changePort: true } }), noAlt).from, { ip: "203.0.113.1", port: 3479 });
  });

  it("an IPv6 source's mapped address", () => {
    const c = { ...ctx, source: { ip: "2001:db8:5::10", port: 51820 }, local: { ip: "2001:db8::1", port: 3478 }, other: null, otherFamily: null };
    const a = reply(encodeBindingRequest(TID), c);
    assert.deepEqual(a.parsed.mapped, c.source);
    assert.equal(a.reply.length, 20 + 24);
  });

  it("a request with FINGERPRINT gets one back", () => {
    const req = encodeStun(BINDING_REQUEST, TID, [], true);
    const a = reply(req);
    const msg = parseStun(a.reply);
    assert.ok(typeof msg !== "string");
    assert.equal(msg.attributes.at(-1)?.type, ATTR.FINGERPRINT);
    assert.ok(a.reply.length <= req.length + 12);
  });
});

describe("STUN replies as the client checks them", () => {
  const server = { ip: "203.0.113.1", port: 3478 };
  const good = encodeStun(BINDING_SUCCESS, TID, [{ type: ATTR.XOR_MAPPED_ADDRESS, value: encodeAddress({ ip: "198.51.100.7", port: 1 }, TID, true) }]);
  it("takes the reply from the expected address", () => {
    const r = checkReply(good, server, TID, server);
    assert.ok(r && "mapped" in r);
    assert.deepEqual(r.mapped, { ip: "198.51.100.7", port: 1 });
  });
  it("ignores another transaction id (keeps waiting)", () => {
    assert.equal(checkReply(good, server, new Uint8Array(12), server), null);
  });
  it("ignores what is not STUN", () => {
    assert.equal(checkReply(Uint8Array.of(1, 2, 3), server, TID, server), null);
  });
  it("a reply from the wrong address is a problem naming both", () => {
    const r = checkReply(good, { ip: "203.0.113.9", port: 3478 }, TID, server);
    assert.ok(r && "problem" in r);
    assert.match(r.problem, /came from 203\.0\.113\.9:3478, not from 203\.0\.113\.1:3478/);
  });
  it("an error response, or a success without a mapped address, is a problem", () => {
    const err = checkReply(encodeStun(0x0111, TID, []), server, TID, server);
    assert.ok(err && "problem" in err);
    assert.match(err.problem, /0x0111/);
    const bare = checkReply(encodeStun(BINDING_SUCCESS, TID, []), server, TID, server);
    assert.ok(bare && "problem" in bare);
    assert.match(bare.problem, /no XOR-MAPPED-ADDRESS/);
  });
});

describe("STUN rate limit", () => {
  it("a source gets its burst, then one more per 1/rate seconds; others are not affected", () => {
    const l = new StunLimiter({ perSourcePerSec: 10, burst: 3, globalPerSec: 1_000, maxSources: 100 });
    const t = 1_000_000;
    assert.deepEqual([1, 2, 3, 4].map(() => l.allow("198.51.100.1", t)), [true, true, true, false]);
    assert.equal(l.allow("198.51.100.2", t), true);
    assert.equal(l.allow("198.51.100.1", t + 50), false);
    assert.equal(l.allow("198.51.100.1", t + 100), true);
  });
  it("the global bucket caps many sources together, and the table stays bounded", () => {
    const l = new StunLimiter({ perSourcePerSec: 10, burst: 5, globalPerSec: 4, maxSources: 3 });
    const allowed = Array.from({ length: 10 }, (_, i) => l.allow(`198.51.100.${i}`, 0)).filter(Boolean).length;
    assert.equal(allowed, 4);
    assert.equal(l.sources, 3);
  });
});

describe("which addresses answer STUN", () => {
  const nic = (address: string, family: "IPv4" | "IPv6", internal = false) =>
    ({ address, family, internal, netmask: "", mac: "00:00:00:00:00:00", cidr: null, ...(family === "IPv6" ? { scopeid: 0 } : {}) }) as never;
  const host = {
    lo: [nic("127.0.0.1", "IPv4", true), nic("::1", "IPv6", true)],
    eth0: [nic("203.0.113.1", "IPv4"), nic("203.0.113.2", "IPv4"), nic("2001:db8::1", "IPv6"), nic("fe80::1", "IPv6")],
    wg0: [nic("10.200.0.1", "IPv4")],
  };
  it("every address: each pairs with another of its family on its own interface; link-local never served", () => {
    assert.deepEqual(planStunAddresses(null, host), [
      { ip: "127.0.0.1", alt: null, otherFamily: "::1" },
      { ip: "::1", alt: null, otherFamily: "127.0.0.1" },
      { ip: "203.0.113.1", alt: "203.0.113.2", otherFamily: "2001:db8::1" },
      { ip: "203.0.113.2", alt: "203.0.113.1", otherFamily: "2001:db8::1" },
      { ip: "2001:db8::1", alt: null, otherFamily: "203.0.113.1" },
      { ip: "10.200.0.1", alt: null, otherFamily: null },
    ]);
  });
  it("one address brings its interface's others along as alternates, not the tunnel's", () => {
    const plan = planStunAddresses("203.0.113.2", host);
    assert.ok(Array.isArray(plan));
    assert.deepEqual(plan.map((p) => p.ip), ["203.0.113.2", "203.0.113.1", "2001:db8::1"]);
    assert.equal(plan[0]?.alt, "203.0.113.1");
  });
  it("an address this host does not have, or a name, is refused with the value quoted", () => {
    assert.equal(planStunAddresses("192.0.2.1", host), "STUN address `192.0.2.1' is not an address of this host");
    assert.equal(planStunAddresses("stun.example.net", host), "STUN address `stun.example.net' is not an IP address");
  });
});

describe("the registry's default STUN host", () => {
  const tunnel = ["10.200.0.1", "fd00:200::1"];
  const cases: Array<[string, { host: string | null; optional?: boolean }, string | null]> = [
    ["follows a public -a host", { host: "203.0.113.1", optional: true }, "203.0.113.1"],
    ["an API on the tunnel only: STUN on every address (it is for what the outside sees)", { host: "10.200.0.1", optional: true }, null],
    ["the same for an IPv6 tunnel address", { host: "fd00:200::1", optional: true }, null],
    ["a --stun given on the tunnel address is kept: the operator asked", { host: "10.200.0.1" }, "10.200.0.1"],
    ["every address stays every address", { host: null, optional: true }, null],
  ];
  for (const [name, stun, want] of cases) it(name, () => assert.equal(defaultStunHost(stun, tunnel), want));
});
