/** The lab's pure parts: naming, plan, rulesets, parsing, classification, expectations, grid, CLI flags. No root needed. */
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, it } from "node:test";
import { UsageError } from "../../src/cli/common.js";
import { labCommand, parseNatPair } from "../../src/cli/lab.js";
import type { Expectation, NatBehaviour, PairVerdict, PathKind } from "../../src/lab/index.js";
import { NAT_BEHAVIOURS, classifyPath, expectedPath, judge, matrixSites, natRuleset, pathFamily, planLab, renderGrid, whyLabCannotRun } from "../../src/lab/index.js";
import { IFNAME_MAX, runIdOf, wgInterfaceName } from "../../src/lab/names.js";
import { remapRuleset } from "../../src/lab/nat.js";
import { Secret } from "../../src/lab/wg.js";
import type { WgPeer } from "../../src/wg/types.js";

describe("names", () => {
  it("every WireGuard interface name fits in 15 characters and carries the run id", () => {
    const plan = planLab("3f9a", matrixSites(NAT_BEHAVIOURS));
    for (const h of [plan.registry, ...plan.nodes]) {
      assert.ok(h.iface.length <= IFNAME_MAX, h.iface);
      assert.equal(runIdOf(h.iface), "3f9a");
    }
    for (const ns of plan.namespaces) assert.equal(runIdOf(ns.name), "3f9a");
  });
  it("rejects names that would not fit or not match the sweep's pattern", () => {
    assert.throws(() => wgInterfaceName("3f9a", "toolong1"), /host name must match/);
    assert.throws(() => wgInterfaceName("XYZ", "a"), /run id must be 4 lowercase hex digits, got `XYZ'/);
    assert.equal(runIdOf("whl-3f9a-n-home1"), "3f9a");
    assert.equal(runIdOf("wg0"), null);
    assert.equal(runIdOf("whl-3f9a"), null);
  });
});

describe("planLab", () => {
  const plan = planLab("0001", [
    { name: "pub1", nat: "public", nodes: ["pub1"] },
    { name: "home1", nat: "home", nodes: ["home1"] },
    { name: "cgn1", nat: "cgnat", nodes: ["cgn1"] },
    { name: "lan", nat: "samelan", nodes: ["lan1", "lan2"] },
  ]);
  it("puts public hosts on 203.0.113.0/24, LANs on 192.168.N.0/24, the carrier link on 100.64.N.0/24", () => {
    assert.equal(plan.registry.ip, "203.0.113.1");
    const ip = (n: string) => plan.nodes.find((x) => x.name === n)?.ip;
    assert.equal(ip("pub1"), "203.0.113.10");
    assert.equal(ip("home1"), "192.168.1.10");
    assert.equal(ip("cgn1"), "192.168.2.10");
    assert.deepEqual([ip("lan1"), ip("lan2")], ["192.168.3.10", "192.168.3.11"]);
    const carrier = plan.namespaces.find((n) => n.name === "whl-0001-c-cgn1");
    assert.ok(carrier?.nat, "the cgnat site has a carrier NAT");
    const router = plan.namespaces.find((n) => n.name === "whl-0001-r-cgn1");
    assert.equal(router?.defaultVia, "100.64.2.1");
    assert.equal(plan.sites.find((s) => s.name === "cgn1")?.edgeNs, "whl-0001-c-cgn1");
  });
  it("gives every node a distinct tunnel address and nothing outside the lab's ranges", () => {
    const tunnels = plan.nodes.map((n) => n.tunnelIp);
    assert.equal(new Set(tunnels).size, tunnels.length);
    const cidrs = [...plan.links.flatMap((l) => [l.a.cidr, l.b.cidr]), ...plan.bridges.map((b) => b.cidr)].filter((c): c is string => c !== undefined);
    for (const c of cidrs) assert.match(c, /^(203\.0\.113|192\.168|100\.64)\./, c);
  });
  it("refuses bad site lists, naming the site", () => {
    assert.throws(() => planLab("0001", [{ name: "p", nat: "public", nodes: ["a", "b"] }]), /site `p' is public and must have exactly one node, got 2/);
    assert.throws(() => planLab("0001", [{ name: "x", nat: "home", nodes: ["a"] }, { name: "x", nat: "home", nodes: ["b"] }]), /site name `x' is used twice/);
    assert.throws(() => planLab("0001", [{ name: "x", nat: "home", nodes: ["reg"] }]), /host name `reg' is used twice/);
  });
});

describe("NAT rulesets", () => {
  it("home: stateful firewall (policy drop, established/related) and port-preserving masquerade", () => {
    const r = natRuleset({ mapping: "endpoint-independent", firewall: true });
    assert.match(r, /hook input priority filter; policy drop;/);
    assert.match(r, /hook forward priority filter; policy drop;/);
    assert.match(r, /ct state established,related accept/);
    assert.match(r, /oifname "wan" masquerade\n/);
    assert.doesNotMatch(r, /random/);
  });
  it("bare: masquerade and nothing else", () => {
    const r = natRuleset({ mapping: "endpoint-independent", firewall: false });
    assert.doesNotMatch(r, /policy drop/);
    assert.match(r, /masquerade/);
  });
  it("symmetric: fully-random masquerade", () => {
    assert.match(natRuleset({ mapping: "address-and-port-dependent", firewall: true }), /masquerade fully-random/);
  });
  it("a port range applies to UDP and TCP only (nft requires a protocol match) and is checked", () => {
    const r = remapRuleset({ mapping: "endpoint-independent", firewall: true, portRange: [20000, 29999] });
    assert.match(r, /^flush chain ip natlab postrouting$/m);
    assert.match(r, /meta l4proto \{ tcp, udp \} masquerade to :20000-29999$/m);
    assert.throws(() => natRuleset({ mapping: "endpoint-independent", firewall: true, portRange: [30000, 20000] }), /port range .* `30000-20000'/);
  });
});

describe("lab secrets", () => {
  const PRIV = "aPrivateKeyThatMustNeverBeReturnedXXXXXXXX=";
  it("a Secret never prints its value", () => {
    const s = new Secret(PRIV);
    assert.equal(`${s}`, "[secret]");
    assert.equal(JSON.stringify({ s }), '{"s":"[secret]"}');
    assert.doesNotMatch(inspect({ s }), /aPrivateKey/);
    assert.equal(s.reveal(), PRIV);
  });
});

describe("classifyPath", () => {
  const now = 1_000_000_000;
  const peer = (ip: string | null, handshakeAgoMs: number | null): WgPeer => ({
    publicKey: "k",
    endpoint: ip ? { ip, port: 51820 } : null,
    lastHandshakeMs: handshakeAgoMs === null ? 0 : now - handshakeAgoMs,
    rxBytes: 0,
    txBytes: 0,
    allowedIps: [],
    persistentKeepaliveSec: 0,
    hasPresharedKey: false,
  });
  const cases: Array<{ name: string; peer: WgPeer | undefined; ping: boolean; want: PathKind }> = [
    { name: "public endpoint, fresh handshake, ping", peer: peer("203.0.113.101", 2_000), ping: true, want: "direct" },
    { name: "LAN endpoint, fresh handshake, ping", peer: peer("192.168.3.11", 2_000), ping: true, want: "lan" },
    { name: "carrier-NAT endpoint counts as private", peer: peer("100.64.1.2", 2_000), ping: true, want: "lan" },
    { name: "handshake but no ping: not proof", peer: peer("203.0.113.101", 2_000), ping: false, want: "down" },
    { name: "no handshake, no ping", peer: peer("203.0.113.101", null), ping: false, want: "down" },
    { name: "ping without a session with B: via something else", peer: peer(null, null), ping: true, want: "relayed" },
    { name: "handshake older than 180 s is not recent", peer: peer("203.0.113.101", 181_000), ping: true, want: "relayed" },
    { name: "endpoint at the relay", peer: peer("203.0.113.1", 1_000), ping: true, want: "relayed" },
    { name: "endpoint at a local relay socket", peer: peer("127.0.0.1", 1_000), ping: true, want: "relayed" },
    { name: "no such peer", peer: undefined, ping: false, want: "down" },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(classifyPath({ peer: c.peer, nowMs: now, pingOk: c.ping, relayIps: ["203.0.113.1"] }), c.want));
  }
  it("a global IPv6 endpoint is direct, over IPv6; relayed and down paths have no family", () => {
    const v6 = peer("2001:db8:1:1::10", 1_000);
    assert.equal(classifyPath({ peer: v6, nowMs: now, pingOk: true }), "direct");
    assert.equal(pathFamily("direct", v6?.endpoint ?? null), "ipv6");
    assert.equal(pathFamily("direct", { ip: "203.0.113.101", port: 1 }), "ipv4");
    assert.equal(pathFamily("lan", { ip: "192.168.1.10", port: 1 }), "ipv4");
    assert.equal(pathFamily("relayed", { ip: "127.0.0.1", port: 1 }), null);
    assert.equal(pathFamily("down", { ip: "2001:db8::1", port: 1 }), null);
  });
});

describe("expectations", () => {
  const e = (a: NatBehaviour, b: NatBehaviour, sameSite = false): Expectation =>
    expectedPath({ nat: a, site: "s1" }, { nat: b, site: sameSite ? "s1" : "s2" });
  const cases: Array<{ a: NatBehaviour; b: NatBehaviour; same?: boolean; path: PathKind; also?: PathKind[] }> = [
    { a: "home", b: "home", path: "direct" },
    { a: "home", b: "cgnat", path: "direct" },
    { a: "cgnat", b: "cgnat", path: "direct" },
    { a: "public", b: "symmetric", path: "direct" },
    { a: "public", b: "bare", path: "direct" },
    { a: "home", b: "symmetric", path: "relayed" },
    { a: "symmetric", b: "symmetric", path: "relayed" },
    { a: "bare", b: "bare", path: "relayed", also: ["direct"] },
    { a: "bare", b: "home", path: "relayed", also: ["direct"] },
    { a: "samelan", b: "samelan", same: true, path: "lan" },
    { a: "samelan", b: "home", path: "direct" },
  ];
  for (const c of cases) {
    it(`${c.a} <-> ${c.b}${c.same ? " (same router)" : ""}: ${c.path}${c.also ? ` or ${c.also.join(", ")}` : ""}`, () => {
      const got = e(c.a, c.b, c.same);
      assert.equal(got.path, c.path);
      assert.deepEqual(got.alsoAccepted ?? [], c.also ?? []);
      if (got.path === "down" || got.path === "relayed" || got.alsoAccepted) assert.ok(got.gap, "a pair that is not always direct names its gap");
    });
  }
  it("is symmetric in its two ends", () => {
    for (const a of NAT_BEHAVIOURS) for (const b of NAT_BEHAVIOURS) assert.deepEqual(e(a, b), e(b, a), `${a}/${b}`);
  });
  it("judge: worse, better, accepted race outcomes", () => {
    assert.equal(judge("down", { path: "direct" }), "worse");
    assert.equal(judge("direct", { path: "down", gap: "x" }), "better");
    assert.equal(judge("direct", { path: "down", alsoAccepted: ["direct"], gap: "x" }), "as-expected");
    assert.equal(judge("relayed", { path: "down", gap: "x" }), "better");
    assert.equal(judge("lan", { path: "direct" }), "different");
  });
});

describe("renderGrid", () => {
  const v = (from: string, to: string, fromNat: NatBehaviour, toNat: NatBehaviour, path: PathKind, expected: Expectation, pingMs: number | null, ip = "203.0.113.101"): PairVerdict => {
    const endpoint = path === "down" ? null : { ip, port: 51820 };
    return { from, to, fromNat, toNat, path, family: pathFamily(path, endpoint), expected, verdict: judge(path, expected), endpoint, handshakeMs: pingMs, pingMs, rttMs: null };
  };
  it("shows path and seconds per cell, marks gaps and pairs worse than expected", () => {
    const pairs = [
      v("home1", "home2", "home", "home", "direct", { path: "direct" }, 5_400),
      v("home1", "sym1", "home", "symmetric", "down", { path: "down", gap: "symmetric gap" }, null),
      v("sym1", "home1", "symmetric", "home", "down", { path: "down", gap: "symmetric gap" }, null),
      v("sym1", "sym2", "symmetric", "symmetric", "down", { path: "down", gap: "symmetric gap" }, null),
      v("home2", "home1", "home", "home", "down", { path: "direct" }, null),
    ];
    const grid = renderGrid(["home", "symmetric"], pairs);
    const rows = grid.split("\n");
    assert.match(rows[0] ?? "", /^from \\ to\s+home\s+symmetric$/);
    assert.match(rows[1] ?? "", /^home\s+direct 5\.4s\s+down \*$/);
    assert.match(grid, /known gaps:\n {2}home-symmetric, symmetric-symmetric: symmetric gap/);
    assert.match(grid, /1 pair\(s\) off expectation:\n {2}home2 -> home1: down \(worse; expected direct\)/);
  });
  it("marks a direct path over IPv6 as direct6", () => {
    const grid = renderGrid(["home"], [v("home1", "home2", "home", "home", "direct", { path: "direct" }, 1_200, "2001:db8:1:1::11")]);
    assert.match(grid.split("\n")[1] ?? "", /^home\s+direct6 1\.2s$/);
    assert.match(renderGrid(["home"], [v("home1", "home2", "home", "home", "direct", { path: "direct" }, 1_200)]).split("\n")[1] ?? "", /^home\s+direct 1\.2s$/);
  });
});

describe("wormhole lab flags", () => {
  it("--nat takes exactly two known behaviours", () => {
    assert.deepEqual(parseNatPair("home,cgnat"), ["home", "cgnat"]);
    assert.throws(() => parseNatPair("home,foo"), (err: Error) => err instanceof UsageError && /--nat `home,foo': unknown NAT behaviour `foo' \(valid: public, home, bare, symmetric, cgnat, samelan\)/.test(err.message));
    assert.throws(() => parseNatPair("home"), /--nat `home' must be two behaviours separated by a comma/);
  });
  const parse = (...args: string[]) => labCommand().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} }).parseAsync(args, { from: "user" });
  it("rejects bad values through the command itself", async () => {
    await assert.rejects(parse("--nat", "home,nope"), /--nat `home,nope': unknown NAT behaviour `nope'/);
    await assert.rejects(parse("--duration", "-3"), /--duration `-3' must be a number of seconds/);
    await assert.rejects(parse("--matrix", "--nat", "home,home"), /--nat picks the demo's two sites; --matrix always covers every behaviour/);
  });
  it("says plainly when it cannot run", () => {
    assert.match(whyLabCannotRun({ root: false, missing: [], tun: true }) ?? "", /needs root/);
    assert.match(whyLabCannotRun({ root: true, missing: ["ping (iputils-ping)"], tun: true }) ?? "", /apt-get install -y --no-install-recommends iputils-ping/);
    assert.equal(whyLabCannotRun({ root: true, missing: [], tun: true }), null);
  });
});
