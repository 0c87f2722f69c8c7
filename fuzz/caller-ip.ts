/**
 * Fuzz target: callerIp (src/registry/identity.ts), the caller's address in a
 * grpc-js peer string, on which tunnel identity rests, and sourceKey
 * (src/registry/ratelimit.ts), the source failed token attempts count against.
 * Inputs: peer strings as grpc-js writes them (ipv4:, ipv6:[...], dual-stack
 * ::ffff: without brackets, unix:), odd spellings, and junk.
 * Checks: never throws; the result is null or an address in ipaddr.js's
 * canonical form, never IPv4-mapped; for a well-formed peer string it is that
 * address; sourceKey is the IPv4 address, an IPv6 /64, or the string itself.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import { callerIp } from "../src/registry/identity.js";
import { sourceKey } from "../src/registry/ratelimit.js";
import { anyIp, goodPort, ipv4, ipv6, oddIpv4, oddIpv6 } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

interface Input {
  readonly peer: string;
  /** The address a well-formed peer string names, canonical; null when the string is not one. */
  readonly want: string | null;
}

const canonical = (ip: string): string => {
  const a = ipaddr.parse(ip);
  return (a.kind() === "ipv6" && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a).toString();
};

export const target: FuzzTarget<Input> = {
  name: "caller-ip",
  about: "callerIp and sourceKey on grpc-js peer strings and junk",
  arbitrary: fc.oneof(
    fc.tuple(ipv4, goodPort).map(([ip, p]): Input => ({ peer: `ipv4:${ip}:${p}`, want: ip })),
    fc.tuple(ipv6, goodPort).map(([ip, p]): Input => ({ peer: `ipv6:[${ip}]:${p}`, want: canonical(ip) })),
    fc.tuple(ipv4, goodPort).map(([ip, p]): Input => ({ peer: `::ffff:${ip}:${p}`, want: ip })),
    fc.tuple(ipv4, goodPort).map(([ip, p]): Input => ({ peer: `${ip}:${p}`, want: ip })),
    fc.tuple(fc.constantFrom("ipv4:", "ipv6:", "", "unix:", "ipv6:["), fc.oneof(anyIp, oddIpv4, oddIpv6), fc.constantFrom("", ":", "]:", ":1", "]:1", ":99999", ":-1", ":x")).map(([a, b, c]): Input => ({ peer: a + b + c, want: null })),
    fc.string({ maxLength: 60 }).map((peer): Input => ({ peer, want: null })),
  ),
  check({ peer, want }) {
    const ip = callerIp(peer);
    if (want !== null) assert.equal(ip, want, `callerIp(${JSON.stringify(peer)})`);
    const key = sourceKey(peer);
    if (ip === null) {
      assert.equal(key, peer);
      return;
    }
    assert.ok(ipaddr.isValid(ip), `not an address: ${ip}`);
    assert.equal(canonical(ip), ip, "not canonical");
    const a = ipaddr.parse(ip);
    if (a.kind() === "ipv4") assert.equal(key, ip);
    else {
      assert.match(key, /^[0-9a-f]{1,4}(:[0-9a-f]{1,4}){3}::\/64$/);
      assert.ok(a.match(ipaddr.parseCIDR(key)), `${ip} is not in ${key}`);
    }
  },
};

await main(import.meta.url, target);
