import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import {
  canonicalCidr,
  canonicalIp,
  endpointsEqual,
  formatEndpoint,
  parseEndpoint,
  tryCanonicalIp,
  tryParseEndpoint,
} from "../../src/wg/endpoint.js";

describe("endpoint: parse", () => {
  const good: { text: string; ip: string; port: number }[] = [
    { text: "1.2.3.4:51820", ip: "1.2.3.4", port: 51820 },
    { text: "192.168.0.1:1", ip: "192.168.0.1", port: 1 },
    { text: "203.0.113.9:65535", ip: "203.0.113.9", port: 65535 },
    { text: "[2001:db8::1]:51820", ip: "2001:db8::1", port: 51820 },
    { text: "[2001:DB8:0:0:0:0:0:1]:51820", ip: "2001:db8::1", port: 51820 },
    { text: "[2001:db8:0:0:1:0:0:1]:7", ip: "2001:db8::1:0:0:1", port: 7 },
    { text: "[::ffff:198.51.100.7]:4500", ip: "198.51.100.7", port: 4500 },
    { text: "[::ffff:c633:6407]:4500", ip: "198.51.100.7", port: 4500 },
    { text: "[::]:1", ip: "::", port: 1 },
    { text: "[fe80::1%eth0]:51820", ip: "fe80::1%eth0", port: 51820 },
  ];
  for (const c of good) {
    it(`accepts ${c.text}`, () => {
      assert.deepEqual(parseEndpoint(c.text), { ip: c.ip, port: c.port });
    });
  }

  const bad: { text: string; message: RegExp }[] = [
    { text: "1.2.3.4", message: /^endpoint is not IPv4:PORT or \[IPv6\]:PORT: `1\.2\.3\.4'$/ },
    { text: "1.2.3.4:0", message: /no valid port.*`1\.2\.3\.4:0'/ },
    { text: "1.2.3.4:65536", message: /no valid port.*`1\.2\.3\.4:65536'/ },
    { text: "1.2.3.4:051820", message: /no valid port/ },
    { text: "1.2.3.4:-1", message: /no valid port/ },
    { text: "1.2.3.4: 80", message: /no valid port/ },
    { text: "2001:db8::1:51820", message: /IPv6 address without brackets.*`2001:db8::1:51820'/ },
    { text: "[1.2.3.4]:80", message: /not IPv4:PORT/ },
    { text: "[2001:db8::1:80", message: /not IPv4:PORT/ },
    { text: "01.2.3.4:80", message: /not IPv4:PORT/ },
    { text: "1.2.3:80", message: /not IPv4:PORT/ },
    { text: "256.1.1.1:80", message: /not IPv4:PORT/ },
    { text: "example.com:80", message: /`example\.com:80'/ },
    { text: "[2001:db8::g]:80", message: /not IPv4:PORT/ },
    { text: "", message: /: `'$/ },
    { text: "1.2.3.4:80\nx", message: /\\x0a/ },
  ];
  for (const c of bad) {
    it(`refuses ${JSON.stringify(c.text)}`, () => {
      assert.equal(tryParseEndpoint(c.text), null);
      assert.throws(() => parseEndpoint(c.text), (e: Error) => e instanceof TypeError && c.message.test(e.message));
    });
  }

  it("names the thing in the message", () => {
    assert.throws(() => parseEndpoint("nope", "peer `x' endpoint"), { message: "peer `x' endpoint is not IPv4:PORT or [IPv6]:PORT: `nope'" });
  });
});

describe("endpoint: format", () => {
  it("brackets IPv6 only", () => {
    assert.equal(formatEndpoint({ ip: "10.1.2.3", port: 51820 }), "10.1.2.3:51820");
    assert.equal(formatEndpoint({ ip: "2001:db8::5", port: 1 }), "[2001:db8::5]:1");
  });
  it("canonicalises what it formats", () => {
    assert.equal(formatEndpoint({ ip: "2001:0DB8::0005", port: 9 }), "[2001:db8::5]:9");
    assert.equal(formatEndpoint({ ip: "::ffff:10.0.0.1", port: 9 }), "10.0.0.1:9");
  });
  it("refuses what would be unsafe on a control-socket line or in argv", () => {
    assert.throws(() => formatEndpoint({ ip: "1.2.3.4\nprivate_key=00", port: 1 }), TypeError);
    assert.throws(() => formatEndpoint({ ip: "1.2.3.4", port: 0 }), /port is not in 1-65535: `0'/);
    assert.throws(() => formatEndpoint({ ip: "1.2.3.4", port: 1.5 }), TypeError);
    assert.throws(() => formatEndpoint({ ip: "-x", port: 1 }), /endpoint address is not an IPv4 or IPv6 address: `-x'/);
  });
});

describe("endpoint: equality and canonical forms", () => {
  it("endpointsEqual compares canonically and handles null", () => {
    assert.ok(endpointsEqual(null, null));
    assert.ok(endpointsEqual(undefined, null));
    assert.ok(!endpointsEqual(null, { ip: "1.2.3.4", port: 1 }));
    assert.ok(endpointsEqual({ ip: "2001:db8::1", port: 5 }, { ip: "2001:DB8:0::1", port: 5 }));
    assert.ok(endpointsEqual({ ip: "::ffff:1.2.3.4", port: 5 }, { ip: "1.2.3.4", port: 5 }));
    assert.ok(!endpointsEqual({ ip: "1.2.3.4", port: 5 }, { ip: "1.2.3.4", port: 6 }));
    assert.ok(!endpointsEqual({ ip: "1.2.3.4", port: 5 }, { ip: "1.2.3.5", port: 5 }));
    assert.ok(!endpointsEqual({ ip: "junk", port: 5 }, { ip: "other junk", port: 5 }));
  });

  it("canonicalIp", () => {
    assert.equal(canonicalIp("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    assert.equal(canonicalIp("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1"); // a single 0 group is not compressed
    assert.equal(canonicalIp("0:0:1:0:0:0:1:0"), "0:0:1::1:0"); // the longest run wins
    assert.equal(canonicalIp("1:0:0:1:0:0:1:1"), "1::1:0:0:1:1"); // on a tie, the first
    assert.throws(() => canonicalIp("1.2.3", "peer address"), { message: "peer address is not an IPv4 or IPv6 address: `1.2.3'" });
  });

  it("canonicalCidr", () => {
    assert.equal(canonicalCidr("10.0.0.2/32"), "10.0.0.2/32");
    assert.equal(canonicalCidr("0.0.0.0/0"), "0.0.0.0/0");
    assert.equal(canonicalCidr("FD00:0::2/128"), "fd00::2/128");
    assert.equal(canonicalCidr("::/0"), "::/0");
    assert.equal(canonicalCidr("::ffff:10.0.0.1/128"), "::ffff:10.0.0.1/128");
    for (const bad of ["10.0.0.2", "10.0.0.2/33", "fd00::/129", "10.0.0.2/032", "x/1", "fe80::1%eth0/64", "10.0.0.2/-1"]) {
      assert.throws(() => canonicalCidr(bad), (e: Error) => e instanceof TypeError && e.message.includes(`\`${bad}'`), bad);
    }
  });
});

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
const groups = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 });
// Many zero groups, so "::" placement rules get exercised.
const sparseGroups = fc.array(fc.oneof(fc.constant(0), fc.nat(0xffff)), { minLength: 8, maxLength: 8 });
const v6Full = fc.oneof(groups, sparseGroups).map((g) => g.map((x) => x.toString(16)).join(":"));
const port = fc.integer({ min: 1, max: 65535 });

describe("endpoint: properties", () => {
  it("IPv4 format -> parse round trip", () => {
    fc.assert(
      fc.property(v4, port, (ip, p) => {
        const text = formatEndpoint({ ip, port: p });
        assert.equal(text, `${ip}:${p}`);
        assert.deepEqual(parseEndpoint(text), { ip, port: p });
      }),
    );
  });

  it("IPv6 format -> parse round trip, canonical as ipaddr.js says", () => {
    fc.assert(
      fc.property(v6Full, port, (ip, p) => {
        const addr = ipaddr.IPv6.parse(ip);
        const expected = addr.isIPv4MappedAddress() ? addr.toIPv4Address().toString() : addr.toRFC5952String();
        const ep = parseEndpoint(formatEndpoint({ ip, port: p }));
        assert.deepEqual(ep, { ip: expected, port: p });
        assert.deepEqual(parseEndpoint(formatEndpoint(ep)), ep); // canonical is a fixed point
      }),
    );
  });

  it("the fast canonical-IPv6 check agrees with ipaddr.js on any spelling", () => {
    // Spell the same address in many ways: upper case, leading zeros, compressed or not.
    const spelled = fc.tuple(sparseGroups, fc.boolean(), fc.boolean(), fc.boolean()).map(([g, upper, pad, compress]) => {
      let text = g.map((x) => (pad ? x.toString(16).padStart(4, "0") : x.toString(16))).join(":");
      if (compress) text = ipaddr.IPv6.parse(text).toRFC5952String();
      return upper ? text.toUpperCase() : text;
    });
    fc.assert(
      fc.property(spelled, (text) => {
        const addr = ipaddr.IPv6.parse(text);
        const expected = addr.isIPv4MappedAddress() ? addr.toIPv4Address().toString() : addr.toRFC5952String();
        assert.equal(tryCanonicalIp(text), expected);
        assert.equal(canonicalCidr(`${text}/64`), `${addr.isIPv4MappedAddress() ? `::ffff:${addr.toIPv4Address().toString()}` : addr.toRFC5952String()}/64`);
      }),
      { numRuns: 2000 },
    );
  });

  it("parse never throws anything but TypeError, and what it accepts re-formats to itself", () => {
    const junk = fc.oneof(
      fc.string(),
      fc.tuple(fc.constantFrom("[", ""), fc.stringMatching(/^[0-9a-fA-F:.%]{0,40}$/), fc.constantFrom("]", ""), fc.constantFrom(":", ""), fc.stringMatching(/^-?\d{0,6}$/)).map((p) => p.join("")),
    );
    fc.assert(
      fc.property(junk, (text) => {
        let ep: ReturnType<typeof parseEndpoint>;
        try {
          ep = parseEndpoint(text);
        } catch (e) {
          assert.ok(e instanceof TypeError, String(e));
          return;
        }
        assert.deepEqual(parseEndpoint(formatEndpoint(ep)), ep);
      }),
      { numRuns: 3000 },
    );
  });
});
