/** The lab's IPv6 plan and firewall, without building anything (pure; runs without root). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NAT_BEHAVIOURS, firewall6Ruleset, matrixSites, planLab } from "../../src/lab/index.js";

const SITES = [
  { name: "h6", nat: "home", nodes: ["a"], ipv6: "native" },
  { name: "c6", nat: "cgnat", nodes: ["b"], ipv6: "native" },
  { name: "o6", nat: "home", nodes: ["c"], ipv6: "only" },
  { name: "h4", nat: "home", nodes: ["d"] },
] as const;

describe("lab IPv6 plan", () => {
  const plan = planLab("3f9a", SITES, { registryAlternates: true });
  const ns = (role: string) => plan.namespaces.find((n) => n.name === `whl-3f9a-${role}`);

  it("the registry has an IPv6 address, an alternate per family, and a route to every IPv6 site via its edge", () => {
    assert.equal(plan.registry.ip6, "2001:db8::1");
    assert.equal(plan.registry.altIp, "203.0.113.2");
    assert.equal(plan.registry.altIp6, "2001:db8::2");
    assert.deepEqual(ns("reg")?.ipv6?.routes, [
      { prefix: "2001:db8:1::/48", via: "2001:db8::1:1" },
      { prefix: "2001:db8:2::/48", via: "2001:db8::1:2" },
      { prefix: "2001:db8:3::/48", via: "2001:db8::1:3" },
    ]);
  });

  it("a cgnat site's carrier routes its IPv6 to the home router, which has the stateful firewall", () => {
    assert.deepEqual(ns("c-c6")?.ipv6?.routes[0], { prefix: "2001:db8:2::/48", via: "2001:db8:2:2::2" });
    assert.equal(ns("c-c6")?.ipv6?.firewall, false);
    assert.equal(ns("r-c6")?.ipv6?.firewall, true);
    assert.equal(ns("r-c6")?.ipv6?.defaultVia, "2001:db8:2:2::1");
  });

  it("an IPv6-only node has no IPv4 address or route; a native one has both", () => {
    const c = plan.nodes.find((n) => n.name === "c");
    assert.equal(c?.ip, "2001:db8:3:1::10");
    assert.equal(c?.ipv6, "only");
    assert.equal(ns("n-c")?.defaultVia, undefined);
    const cLink = plan.links.find((l) => l.b.ns === "whl-3f9a-n-c");
    assert.equal(cLink?.b.cidr, undefined);
    assert.deepEqual(cLink?.b.moreCidrs, ["2001:db8:3:1::10/64"]);
    const a = plan.nodes.find((n) => n.name === "a");
    assert.equal(a?.ip, "192.168.1.10");
    assert.equal(a?.ip6, "2001:db8:1:1::10");
  });

  it("every IPv6 address is in the documentation range 2001:db8::/32", () => {
    const all = [...plan.links.flatMap((l) => [...(l.a.moreCidrs ?? []), ...(l.b.moreCidrs ?? [])]), ...plan.bridges.flatMap((b) => b.moreCidrs ?? [])].filter((c) => c.includes(":"));
    assert.ok(all.length >= 10);
    for (const c of all) assert.match(c, /^2001:db8:/, c);
  });

  it("an IPv4-only lab is planned without any IPv6", () => {
    const v4 = planLab("3f9a", matrixSites(NAT_BEHAVIOURS));
    assert.equal(v4.registry.ip6, undefined);
    assert.ok(v4.namespaces.every((n) => n.ipv6 === undefined));
    assert.ok(v4.links.every((l) => l.a.moreCidrs === undefined && l.b.moreCidrs === undefined));
  });

  it("a public site cannot ask for IPv6", () => {
    assert.throws(() => planLab("3f9a", [{ name: "p", nat: "public", nodes: ["p"], ipv6: "native" }]), /lab site `p' is public: IPv6 is for NATed sites/);
  });

  it("the IPv6 firewall: stateful, ICMPv6 allowed, nothing NATed", () => {
    const rules = firewall6Ruleset();
    assert.match(rules, /table ip6 natlab6/);
    assert.match(rules, /chain forward \{\n\s+type filter hook forward priority filter; policy drop;\n\s+ct state established,related accept/);
    assert.match(rules, /meta l4proto ipv6-icmp accept/);
    assert.doesNotMatch(rules, /masquerade|snat|dnat/);
  });
});
