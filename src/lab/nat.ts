/**
 * NAT behaviours of the lab's sites, named the way RFC 4787 does, and the
 * nftables rulesets that produce them. Pure: no I/O here.
 *
 * RFC 4787 terms used below:
 * - mapping: endpoint-independent (EIM: one public ip:port per inside ip:port,
 *   whoever the remote is) or address-and-port-dependent (APDM, "symmetric":
 *   a new public port per remote ip:port).
 * - filtering: endpoint-independent (EIF: anyone may send to a mapping) or
 *   address-and-port-dependent (APDF: only the remote ip:port the inside host
 *   sent to may answer). A stateful firewall that accepts only
 *   established/related traffic is APDF.
 * - hairpinning: whether an inside host can reach another inside host through
 *   the NAT's public address. Linux masquerade does not hairpin.
 */

export const NAT_BEHAVIOURS = ["public", "home", "bare", "symmetric", "cgnat", "samelan"] as const;
export type NatBehaviour = (typeof NAT_BEHAVIOURS)[number];

export function isNatBehaviour(value: string): value is NatBehaviour {
  return (NAT_BEHAVIOURS as readonly string[]).includes(value);
}

/** One line per behaviour, for help texts and the matrix legend. */
export const NAT_DESCRIPTIONS: Readonly<Record<NatBehaviour, string>> = {
  public: "no NAT: the node has a public address and no firewall (EIF: accepts anyone)",
  home: "home router: EIM, port-preserving masquerade behind a stateful firewall (APDF)",
  bare: "Linux masquerade with no firewall: EIM, but unsolicited packets reach the router and clash with later mappings",
  symmetric: "APDM (masquerade fully-random) behind a stateful firewall (APDF)",
  cgnat: "home router (EIM/APDF) behind a carrier NAT (EIM/APDF) on 100.64.0.0/10: two NATs in series",
  samelan: "two nodes behind one home router; masquerade does not hairpin",
};

/** How one NAT box behaves; a site's router (and a carrier NAT) each get one. */
export interface NatProfile {
  /** Endpoint-independent (port-preserving masquerade) or address-and-port-dependent (fully random). */
  readonly mapping: "endpoint-independent" | "address-and-port-dependent";
  /** Stateful firewall on input and forward (APDF), or none at all. */
  readonly firewall: boolean;
  /** Restrict the public ports masquerade may use, e.g. [20000, 29999]. Default: any (port-preserving when free). */
  readonly portRange?: readonly [number, number];
}

export const HOME_ROUTER: NatProfile = { mapping: "endpoint-independent", firewall: true };
export const BARE_ROUTER: NatProfile = { mapping: "endpoint-independent", firewall: false };
export const SYMMETRIC_ROUTER: NatProfile = { mapping: "address-and-port-dependent", firewall: true };
export const CARRIER_NAT: NatProfile = { mapping: "endpoint-independent", firewall: true };

/** The profile of a site's own router, or null for `public` (no router). */
export function routerProfile(nat: NatBehaviour): NatProfile | null {
  switch (nat) {
    case "public":
      return null;
    case "home":
    case "cgnat":
    case "samelan":
      return HOME_ROUTER;
    case "bare":
      return BARE_ROUTER;
    case "symmetric":
      return SYMMETRIC_ROUTER;
  }
}

/** The nftables table every NAT box of the lab uses. */
export const NAT_TABLE = "natlab";

/** The postrouting rules of a profile (a port range applies to UDP and TCP; other protocols keep plain masquerade). */
function masqueradeRules(profile: NatProfile): string[] {
  const random = profile.mapping === "address-and-port-dependent" ? " fully-random" : "";
  if (!profile.portRange) return [`oifname "wan" masquerade${random}`];
  const [lo, hi] = profile.portRange;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1024 || hi > 65535 || lo > hi) {
    throw new Error(`NAT port range must be within 1024-65535 and ordered, got \`${lo}-${hi}'`);
  }
  return [`oifname "wan" meta l4proto { tcp, udp } masquerade to :${lo}-${hi}${random}`, `oifname "wan" masquerade${random}`];
}

/**
 * The complete ruleset of one NAT box, for `nft -f -`. The box has two
 * interfaces: `wan` (outside) and `lan` (inside). Applying it replaces any
 * earlier version of the table (the `add`+`delete` pair makes a fresh start
 * valid whether or not the table exists).
 */
export function natRuleset(profile: NatProfile): string {
  const lines = [`add table ip ${NAT_TABLE}`, `delete table ip ${NAT_TABLE}`, `table ip ${NAT_TABLE} {`];
  if (profile.firewall) {
    lines.push(
      "  chain input {",
      "    type filter hook input priority filter; policy drop;",
      "    ct state established,related accept",
      '    iifname "lo" accept',
      '    iifname "lan" accept',
      "  }",
      "  chain forward {",
      "    type filter hook forward priority filter; policy drop;",
      "    ct state established,related accept",
      '    iifname "lan" oifname "wan" accept',
      "  }",
    );
  }
  lines.push(
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    ...masqueradeRules(profile).map((r) => `    ${r}`),
    "  }",
    "}",
  );
  return `${lines.join("\n")}\n`;
}

/** A batch that swaps only the masquerade rule (used to make a router come back on other ports). */
export function remapRuleset(profile: NatProfile): string {
  return `${[`flush chain ip ${NAT_TABLE} postrouting`, ...masqueradeRules(profile).map((r) => `add rule ip ${NAT_TABLE} postrouting ${r}`)].join("\n")}\n`;
}

/**
 * IPv6 at a site, besides its IPv4 NAT: "native" (a global /64 on the LAN,
 * routed, no NAT) or "only" (the nodes have no IPv4 at all). IPv6 is never
 * NATed: the site's router has a stateful firewall (firewall6Ruleset), and a
 * carrier in front of it only routes.
 */
export type SiteIpv6 = "native" | "only";

/** The lab's IPv6 profiles: an IPv4 behaviour plus IPv6. Their names are for tests and reports. */
export const IPV6_PROFILES = {
  home6: { nat: "home", ipv6: "native", about: "home router with native IPv6: IPv4 as home; IPv6 routed, no NAT, stateful firewall (only replies come in)" },
  cgnat6: { nat: "cgnat", ipv6: "native", about: "carrier-grade NAT for IPv4 plus native IPv6 (the carrier routes it; the home router's stateful firewall)" },
  symmetric6: { nat: "symmetric", ipv6: "native", about: "symmetric IPv4 NAT plus native IPv6 behind a stateful firewall" },
  v6only: { nat: "home", ipv6: "only", about: "IPv6 only: the nodes have no IPv4 address (but their tunnel's), native IPv6 behind a stateful firewall" },
} as const satisfies Record<string, { nat: NatBehaviour; ipv6: SiteIpv6; about: string }>;
export type Ipv6Profile = keyof typeof IPV6_PROFILES;

/** The IPv6 table every IPv6 site router of the lab uses (beside NAT_TABLE; `ip6` tables never see IPv4). */
export const FIREWALL6_TABLE = "natlab6";

/**
 * A site router's IPv6 firewall, for `nft -f -`: stateful (only replies and
 * what the LAN sends go through), no NAT. ICMPv6 is accepted: conntrack marks
 * neighbour discovery untracked, so an input chain that accepts only
 * established traffic would cut the router off its neighbours.
 */
export function firewall6Ruleset(): string {
  return (
    `${[
      `add table ip6 ${FIREWALL6_TABLE}`,
      `delete table ip6 ${FIREWALL6_TABLE}`,
      `table ip6 ${FIREWALL6_TABLE} {`,
      "  chain input {",
      "    type filter hook input priority filter; policy drop;",
      "    ct state established,related accept",
      "    meta l4proto ipv6-icmp accept",
      '    iifname "lo" accept',
      '    iifname "lan" accept',
      "  }",
      "  chain forward {",
      "    type filter hook forward priority filter; policy drop;",
      "    ct state established,related accept",
      "    meta l4proto ipv6-icmp accept",
      '    iifname "lan" oifname "wan" accept',
      "  }",
      "}",
    ].join("\n")}\n`
  );
}
