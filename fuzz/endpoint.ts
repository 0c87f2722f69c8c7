/**
 * Fuzz target: endpoints and prefixes (src/wg/endpoint.ts): parseEndpoint,
 * tryParseEndpoint, canonicalIp, tryCanonicalCidr, checkEndpoint, formatEndpoint.
 * Inputs: addresses and ports spelt every way (odd IPv4, upper-case and
 * zero-padded IPv6, zones, IPv4-mapped, brackets or none), and junk.
 * Checks: the try- forms never throw and agree with the throwing forms, which
 * throw only TypeError; what is accepted is canonical (formatting and parsing it
 * again gives it back; canonicalizing it again changes nothing); ipaddr.js agrees
 * that an accepted address is one, and on its value.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import { canonicalCidr, canonicalIp, checkEndpoint, endpointsEqual, formatEndpoint, parseEndpoint, tryCanonicalCidr, tryCanonicalIp, tryParseEndpoint } from "../src/wg/endpoint.js";
import { anyIp, cidr, ipv4, ipv6, oddIpv4, oddIpv6 } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

const portText = fc.oneof(fc.integer({ min: 0, max: 70_000 }).map(String), fc.constantFrom("", "00051820", "+1", " 1", "1 ", "65535", "65536", "0x10", "1e3", "-1"));
const hostPort = fc.oneof(
  fc.tuple(fc.oneof(ipv4, oddIpv4), portText).map(([h, p]) => `${h}:${p}`),
  fc.tuple(fc.oneof(ipv6, oddIpv6), portText).map(([h, p]) => `[${h}]:${p}`),
  fc.tuple(fc.oneof(ipv6, oddIpv6), portText).map(([h, p]) => `${h}:${p}`),
  fc.tuple(ipv4, portText).map(([h, p]) => `[${h}]:${p}`),
  fc.string({ maxLength: 60 }),
);

type Input = { kind: "endpoint"; text: string } | { kind: "ip"; text: string } | { kind: "cidr"; text: string } | { kind: "object"; ip: unknown; port: unknown };

/** The address ipaddr.js reads in `text` (IPv4-mapped as IPv4), or null. */
function ipaddrValue(text: string): string | null {
  const bare = text.replace(/%.*$/, "");
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare).toString();
  if (!bare.includes(":") || !ipaddr.IPv6.isValid(bare)) return null;
  const a = ipaddr.IPv6.parse(bare);
  return a.isIPv4MappedAddress() ? a.toIPv4Address().toString() : a.toNormalizedString();
}

function checkIp(text: string): void {
  const ip = tryCanonicalIp(text);
  let thrown: unknown = null;
  try {
    assert.equal(canonicalIp(text), ip);
  } catch (e) {
    thrown = e;
  }
  if (ip === null) {
    assert.ok(thrown instanceof TypeError, `canonicalIp threw ${String(thrown)}`);
    return;
  }
  assert.equal(thrown, null);
  assert.equal(tryCanonicalIp(ip), ip, "canonical form is not canonical");
  const mine = ipaddrValue(ip);
  assert.ok(mine !== null, `accepted ${JSON.stringify(text)} as ${ip}, which ipaddr.js refuses`);
  assert.equal(mine, ipaddrValue(text), `${JSON.stringify(text)} and its canonical form ${ip} are different addresses`);
}

export const target: FuzzTarget<Input> = {
  name: "endpoint",
  about: "endpoint, IP and prefix parsing and canonical forms",
  arbitrary: fc.oneof(
    hostPort.map((text): Input => ({ kind: "endpoint", text })),
    anyIp.map((text): Input => ({ kind: "ip", text })),
    fc.oneof(cidr, fc.string({ maxLength: 50 })).map((text): Input => ({ kind: "cidr", text })),
    fc.tuple(fc.oneof(anyIp, fc.constantFrom<unknown>(null, undefined, 5, {})), fc.oneof(fc.integer({ min: -5, max: 70_000 }), fc.double(), fc.constantFrom<unknown>("1", null))).map(([ip, port]): Input => ({ kind: "object", ip, port })),
  ),
  check(input) {
    switch (input.kind) {
      case "endpoint": {
        const ep = tryParseEndpoint(input.text);
        let thrown: unknown = null;
        try {
          assert.deepEqual(parseEndpoint(input.text), ep);
        } catch (e) {
          thrown = e;
        }
        if (ep === null) {
          assert.ok(thrown instanceof TypeError, `parseEndpoint threw ${String(thrown)}`);
          return;
        }
        assert.equal(thrown, null);
        assert.ok(Number.isInteger(ep.port) && ep.port >= 1 && ep.port <= 65535);
        assert.deepEqual(parseEndpoint(formatEndpoint(ep)), ep, "format → parse is not the identity");
        assert.equal(checkEndpoint(ep), ep, "a parsed endpoint is not canonical");
        assert.ok(endpointsEqual(ep, { ...ep }));
        checkIp(ep.ip);
        return;
      }
      case "ip":
        checkIp(input.text);
        return;
      case "cidr": {
        const c = tryCanonicalCidr(input.text);
        if (c === null) {
          assert.throws(() => canonicalCidr(input.text), TypeError);
          return;
        }
        assert.equal(canonicalCidr(input.text), c);
        assert.equal(tryCanonicalCidr(c), c, "canonical prefix is not canonical");
        const [addr, len] = ipaddr.parseCIDR(c);
        assert.ok(len <= (addr.kind() === "ipv4" ? 32 : 128));
        return;
      }
      case "object": {
        let ep: ReturnType<typeof checkEndpoint>;
        try {
          ep = checkEndpoint({ ip: input.ip, port: input.port } as never);
        } catch (e) {
          assert.ok(e instanceof TypeError, `checkEndpoint threw ${String(e)}`);
          return;
        }
        assert.deepEqual(checkEndpoint(ep), ep);
        assert.deepEqual(parseEndpoint(formatEndpoint(ep)), ep);
      }
    }
  },
};

await main(import.meta.url, target);
