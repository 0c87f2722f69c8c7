/** netcheck's verdict from STUN test results: RFC 5780's decision table, failures, and what it means for pairs. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { netcheckJson, renderNetcheck } from "../../src/cli/netcheck.js";
import { isGlobalIpv6 } from "../../src/netcheck/probe.js";
import { stunTargetFor } from "../../src/netcheck/target.js";
import { familyVerdict, verdict, type FamilyObservations, type Heard, type Probe } from "../../src/netcheck/verdict.js";

const LOCAL = { ip: "192.168.1.10", port: 40000 };
const SERVER = { ip: "203.0.113.1", port: 3478 };
const ALT = { ip: "203.0.113.2", port: 3479 };
const at = (port: number, ip = "203.0.113.101"): Probe => ({ mapped: { ip, port }, rttMs: 3 });
const timeout: Probe = { problem: "no reply from 203.0.113.1:3478 within 1500 ms (3 tries)", timeout: true };
const heard: Heard = { heard: true };
const silent: Heard = { heard: false };

function obs(o: Partial<FamilyObservations>): FamilyObservations {
  return { local: LOCAL, server: SERVER, alternate: ALT, test1: at(40000), test2: at(40000), test3: null, filterBoth: silent, filterPort: silent, hairpin: silent, ...o };
}

describe("netcheck verdict, one family", () => {
  const cases: Array<[string, FamilyObservations, Partial<ReturnType<typeof familyVerdict>>, RegExp?]> = [
    ["public, no firewall", obs({ test1: at(40000, LOCAL.ip), test2: at(40000, LOCAL.ip), filterBoth: heard, hairpin: heard }), { mapping: "none", filtering: "endpoint-independent", portPreserved: true, hairpin: true }],
    ["public behind a stateful firewall", obs({ test1: at(40000, LOCAL.ip), test2: at(40000, LOCAL.ip), hairpin: heard }), { mapping: "none", filtering: "address-and-port-dependent" }],
    ["home router: EIM, port kept, APDF, no hairpin", obs({}), { mapping: "endpoint-independent", filtering: "address-and-port-dependent", portPreserved: true, hairpin: false }],
    ["full cone: EIM and EIF", obs({ filterBoth: heard }), { mapping: "endpoint-independent", filtering: "endpoint-independent" }],
    ["restricted cone: address-dependent filtering", obs({ filterPort: heard }), { mapping: "endpoint-independent", filtering: "address-dependent" }],
    ["symmetric: a new port per destination", obs({ test1: at(61001), test2: at(61002), test3: at(61003) }), { mapping: "address-and-port-dependent", portPreserved: false }],
    ["address-dependent mapping", obs({ test1: at(61001), test2: at(61002), test3: at(61002) }), { mapping: "address-dependent" }],
    ["no alternate address, another port maps elsewhere: symmetric", obs({ alternate: null, test1: at(61001), test2: at(61002), filterBoth: null }), { mapping: "address-and-port-dependent" }],
    [
      "no alternate address, same mapping: cannot tell EIM from ADM",
      obs({ alternate: null, filterBoth: null, filterPort: heard }),
      { mapping: "unknown", filtering: "unknown" },
      /no second address/,
    ],
    ["no alternate address, change-port not heard: APDF all the same", obs({ alternate: null, filterBoth: null }), { filtering: "address-and-port-dependent" }],
    ["UDP to the probe port dropped", obs({ test1: timeout, test2: null, filterBoth: null, filterPort: null, hairpin: null }), { mapping: "unknown", filtering: "unknown", hairpin: null, portPreserved: null }, /UDP to the probe port is dropped/],
    [
      "a reply from the wrong address",
      obs({ test1: { problem: "the reply came from 203.0.113.9:3478, not from 203.0.113.1:3478", timeout: false } }),
      { mapping: "unknown" },
      /came from 203\.0\.113\.9:3478/,
    ],
    ["the second mapping test got no answer", obs({ test1: at(61001), test2: timeout }), { mapping: "unknown" }, /second mapping test: no reply/],
    ["the registry ignored CHANGE-REQUEST", obs({ filterBoth: { problem: "the reply came from 203.0.113.1:3478, not from 203.0.113.2:3479" } }), { filtering: "unknown" }],
  ];
  for (const [name, o, want, why] of cases) {
    it(name, () => {
      const v = familyVerdict(o);
      for (const [k, value] of Object.entries(want)) assert.deepEqual(v[k as keyof typeof v], value, `${k}`);
      if (why) assert.match(Object.values(v.why).join(" | "), why);
      for (const k of ["mapping", "filtering"] as const) if (v[k] === "unknown") assert.ok(v.why[k], `an unknown ${k} says why`);
    });
  }
  it("a family that could not start is unknown everywhere, saying why", () => {
    const v = familyVerdict({ skipped: "cannot send over IPv4 to 203.0.113.1:3478: ENETUNREACH" });
    assert.equal(v.mapping, "unknown");
    assert.match(v.why.mapping ?? "", /ENETUNREACH/);
  });
});

describe("netcheck verdict, whole", () => {
  const v6native = obs({ local: { ip: "2001:db8:3::10", port: 40000 }, server: { ip: "2001:db8::1", port: 3478 }, alternate: null, test1: at(40000, "2001:db8:3::10"), test2: at(40000, "2001:db8:3::10"), filterBoth: null });
  it("symmetric IPv4 with native IPv6: relay over IPv4 against NATs, direct over IPv6", () => {
    const v = verdict({ ipv4: obs({ test1: at(61001), test2: at(61002), test3: at(61003) }), ipv6: v6native, hasGlobalIpv6: true });
    assert.equal(v.mapping, "address-and-port-dependent");
    assert.equal(v.ipv6, "native");
    assert.match(v.pairs.join("\n"), /needs the relay against every other NATed peer/);
    assert.match(v.pairs.join("\n"), /IPv6: no NAT: direct with every peer that has IPv6 too/);
  });
  it("home router, no IPv6 on this host", () => {
    const v = verdict({ ipv4: obs({}), ipv6: { skipped: "the registry told no IPv6 address for STUN" }, hasGlobalIpv6: false });
    assert.equal(v.ipv6, "none");
    assert.deepEqual(v.pairs, [
      "IPv4: direct with anything but symmetric NATs (address-dependent or address-and-port-dependent mapping); needs the relay against those",
      "peers behind this same NAT: only over the LAN (it does not hairpin)",
    ]);
  });
  it("IPv6 here but the registry has none: unknown, saying why", () => {
    const v = verdict({ ipv4: obs({}), ipv6: { skipped: "the registry told no IPv6 address for STUN" }, hasGlobalIpv6: true });
    assert.equal(v.ipv6, "unknown");
    assert.match(v.ipv6Why ?? "", /registry told no IPv6 address/);
  });
  it("IPv6-only: IPv4 unknown, IPv6 native", () => {
    const v = verdict({ ipv4: { skipped: "cannot send over IPv4 to 203.0.113.1:3478: ENETUNREACH" }, ipv6: v6native, hasGlobalIpv6: true });
    assert.equal(v.mapping, "unknown");
    assert.equal(v.ipv6, "native");
    assert.match(v.pairs[0] ?? "", /^IPv4: unknown \(cannot send over IPv4/);
  });
  it("--json has the documented keys, and text says unknown: why", () => {
    const v = verdict({ ipv4: obs({ test1: timeout, test2: null, filterBoth: null, filterPort: null, hairpin: null }), ipv6: { skipped: "x" }, hasGlobalIpv6: false });
    const j = netcheckJson(v, { ok: false, why: "the registry refuses the token" });
    for (const k of ["mapping", "filtering", "hairpin", "ipv6", "portPreserved"]) assert.ok(k in j, k);
    assert.equal(j.mapping, "unknown");
    const text = renderNetcheck(v, { ok: false, why: "the registry refuses the token" }, "203.0.113.1:3478");
    assert.match(text, /IPv4 mapping: {3}unknown: no STUN reply from the registry at 203\.0\.113\.1:3478/);
    assert.match(text, /registry API: unknown: the registry refuses the token/);
  });
});

describe("global IPv6", () => {
  const cases: Array<[string, boolean]> = [
    ["2001:db8:3::10", true],
    ["2a00:1450::1", true],
    ["fe80::1", false],
    ["fd00::1", false],
    ["fc00::1", false],
    ["::1", false],
    ["203.0.113.1", false],
  ];
  for (const [ip, want] of cases) it(`${ip}: ${want}`, () => assert.equal(isGlobalIpv6(ip), want));
});

describe("where netcheck sends STUN", () => {
  const peer = (publicKey: string, endpoint: { ip: string; port: number } | null, allowedIps: string[]) => ({
    publicKey,
    endpoint,
    allowedIps,
    lastHandshakeMs: 0,
    rxBytes: 0,
    txBytes: 0,
    persistentKeepaliveSec: 0,
    hasPresharedKey: false,
  });
  const wg0 = {
    name: "wg0",
    type: "userspace" as const,
    publicKey: "",
    listenPort: 51820,
    peers: [
      peer("REGISTRYKEYxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=", { ip: "203.0.113.1", port: 51820 }, ["10.200.0.1/32", "fd00:200::1/128"]),
      peer("WIDEKEYxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=", { ip: "198.51.100.9", port: 51820 }, ["10.200.0.0/24"]),
      peer("EXITKEYxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=", { ip: "192.0.2.50", port: 51820 }, ["0.0.0.0/0"]),
      peer("NOENDPOINTxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=", null, ["10.200.0.7/32"]),
    ],
  };
  const cases: Array<[string, string, string, boolean]> = [
    ["the registry's tunnel address: its peer's endpoint (the most specific prefix)", "10.200.0.1", "203.0.113.1", true],
    ["an IPv6 tunnel address", "fd00:200::1", "203.0.113.1", true],
    ["a public address: itself (a default route does not count)", "203.0.113.1", "203.0.113.1", false],
    ["a peer without endpoint: the next prefix that has one", "10.200.0.7", "198.51.100.9", true],
    ["a host name: itself", "registry.example.net", "registry.example.net", false],
  ];
  for (const [name, api, want, via] of cases) {
    it(name, () => {
      const t = stunTargetFor(api, [wg0]);
      assert.equal(t.host, want);
      assert.equal(t.via !== null, via);
    });
  }
});
