/**
 * The lab's plan: which namespaces, links, addresses, NAT boxes and WireGuard
 * hosts a set of sites needs. Pure: `planLab` computes, `lab.ts` builds.
 *
 * Addressing (all inside lab namespaces):
 *   203.0.113.0/24   the "internet" (one bridge): registry .1 (a second one .3),
 *                    public nodes .10+,
 *                    site routers .100+, carrier NATs .150+
 *   100.64.N.0/24    between carrier NAT N (.1) and the home router behind it (.2)
 *   192.168.N.0/24   LAN of site N: router .1, nodes .10, .11
 *   10.200.0.0/24    WireGuard tunnel: registry .1 (a second one .2), nodes .10+
 *
 * IPv6, only for sites that ask for it (and then for the registry):
 *   2001:db8::/64          the "internet" (same bridge): registry ::1 (and ::2,
 *                          its alternate), site edges 2001:db8::1:N
 *   2001:db8:N::/48        site N's: LAN 2001:db8:N:1::/64 (router ::1, nodes
 *                          ::10, ::11); for cgnat, 2001:db8:N:2::/64 between
 *                          the carrier (::1) and the home router (::2)
 * No IPv6 NAT anywhere: the site's own router has a stateful IPv6 firewall
 * (nat.ts firewall6Ruleset); the carrier of a cgnat site only routes IPv6.
 * The internet is a bridge, not a router, so every namespace on it gets a
 * route to each IPv6 site's /48 via that site's edge.
 */
import type { NatBehaviour, NatProfile } from "./nat.js";
import { CARRIER_NAT, routerProfile, type SiteIpv6 } from "./nat.js";
import { checkHostName, namespaceName, runPrefix, wgInterfaceName } from "./names.js";

export interface SiteSpec {
  /** Site name (≤ 6 chars, [a-z0-9]); names the router's namespace. */
  readonly name: string;
  readonly nat: NatBehaviour;
  /** Host names of the nodes at this site (≤ 6 chars each). `public` sites have exactly one. */
  readonly nodes: readonly string[];
  /** IPv6 besides the IPv4 NAT ("native"), or instead of IPv4 ("only"); absent: IPv4 only. Not for `public` sites. */
  readonly ipv6?: SiteIpv6;
}

export interface NsPlan {
  readonly name: string;
  /** What the namespace is, for logs: "internet", "registry", "router home1", ... */
  readonly what: string;
  readonly forwarding: boolean;
  /** Gateway for the default route, if any. Routers facing the internet have none: 203.0.113.0/24 is connected. */
  readonly defaultVia?: string;
  readonly nat?: NatProfile;
  /** IPv6 in this namespace: forwarding, default route, routes to IPv6 sites; absent: no IPv6 set up. */
  readonly ipv6?: {
    readonly forwarding: boolean;
    readonly defaultVia?: string;
    readonly routes: readonly { readonly prefix: string; readonly via: string }[];
    /** The site router's stateful IPv6 firewall (nat.ts firewall6Ruleset). */
    readonly firewall: boolean;
  };
}

export interface BridgePlan {
  readonly ns: string;
  readonly name: string;
  readonly cidr?: string;
  /** More addresses (IPv6 ones are added without duplicate address detection). */
  readonly moreCidrs?: readonly string[];
}

export interface LinkEnd {
  readonly ns: string;
  readonly ifname: string;
  /** Address with prefix length, e.g. "203.0.113.1/24". */
  readonly cidr?: string;
  /** Enslave this end to a bridge of its namespace. */
  readonly bridge?: string;
  /** More addresses (IPv6 ones are added without duplicate address detection). */
  readonly moreCidrs?: readonly string[];
}

export interface LinkPlan {
  readonly a: LinkEnd;
  readonly b: LinkEnd;
}

/** A host running wireguard-go: the registry or a node. */
export interface WgHostPlan {
  readonly name: string;
  readonly ns: string;
  readonly iface: string;
  /** The host's own (LAN or public) address, without prefix length. */
  readonly ip: string;
  readonly tunnelIp: string;
  readonly listenPort: number;
}

export interface NodePlan extends WgHostPlan {
  readonly site: string;
  readonly nat: NatBehaviour;
  /** The node's global IPv6 address, when its site has IPv6. */
  readonly ip6?: string;
  /** The site's IPv6 ("only": `ip` is the IPv6 address and the node has no IPv4 but its tunnel). */
  readonly ipv6?: SiteIpv6;
}

export interface SitePlan {
  readonly name: string;
  readonly nat: NatBehaviour;
  readonly nodes: readonly string[];
  /** The namespace of the site's own router (null for `public`). */
  readonly routerNs: string | null;
  /** The namespace of the NAT box that faces the internet: the carrier for `cgnat`, else the router. */
  readonly edgeNs: string | null;
  /** The public address the site's traffic leaves from (the node's own address for `public`). */
  readonly publicIp: string;
  readonly ipv6?: SiteIpv6;
}

export interface LabPlan {
  readonly runId: string;
  /** `whl-<id>-`: every namespace and WireGuard interface of the run starts with it. */
  readonly prefix: string;
  readonly namespaces: readonly NsPlan[];
  readonly bridges: readonly BridgePlan[];
  readonly links: readonly LinkPlan[];
  readonly registry: WgHostPlan & {
    readonly grpcPort: number;
    /** Its IPv6 address, when any site has IPv6. */
    readonly ip6?: string;
    /** Second addresses on its internet link (RFC 5780 alternates for STUN), when asked for. */
    readonly altIp?: string;
    readonly altIp6?: string;
  };
  /** A second registry (its own namespace, WireGuard and process), when asked for: IPv4 only. */
  readonly registry2?: WgHostPlan & { readonly grpcPort: number };
  readonly nodes: readonly NodePlan[];
  readonly sites: readonly SitePlan[];
}

export const REGISTRY_IP = "203.0.113.1";
export const REGISTRY_ALT_IP = "203.0.113.2";
export const REGISTRY_IP6 = "2001:db8::1";
/** The second registry, when the lab has one: 203.0.113.3, tunnel 10.200.0.2. */
export const REGISTRY2_IP = "203.0.113.3";
export const REGISTRY_ALT_IP6 = "2001:db8::2";

export interface PlanOptions {
  /** Give the registry a second IPv4 (and IPv6) address, so its STUN responder has an alternate. Default false. */
  readonly registryAlternates?: boolean;
  /** A second registry, which every node peers with too. Default false. */
  readonly secondRegistry?: boolean;
}
export const REGISTRY_GRPC_PORT = 1638;
export const WG_PORT = 51820;
export const TUNNEL_PREFIX_LEN = 24;

const INTERNET_BRIDGE = "inet";

export function planLab(runId: string, sites: readonly SiteSpec[], options: PlanOptions = {}): LabPlan {
  const prefix = runPrefix(runId);
  const ns = (role: string): string => namespaceName(runId, role);
  const namespaces: NsPlan[] = [];
  const bridges: BridgePlan[] = [];
  const links: LinkPlan[] = [];
  const nodes: NodePlan[] = [];
  const sitePlans: SitePlan[] = [];

  const seen = new Set<string>();
  const unique = (kind: string, name: string): void => {
    checkHostName(name);
    if (seen.has(`${kind}:${name}`)) throw new Error(`lab ${kind} name \`${name}' is used twice`);
    seen.add(`${kind}:${name}`);
  };
  unique("host", "reg");

  const inet = ns("inet");
  namespaces.push({ name: inet, what: "internet", forwarding: false });
  bridges.push({ ns: inet, name: INTERNET_BRIDGE });
  const toInternet = (host: string, cidr: string, ifname: string): void => {
    links.push({ a: { ns: inet, ifname: `i-${host}`, bridge: INTERNET_BRIDGE }, b: { ns: ns(host), ifname, cidr } });
  };

  const anyIpv6 = sites.some((s) => s.ipv6 !== undefined);
  const alternates = options.registryAlternates === true;
  const regNs = ns("reg");
  const regMore = [...(alternates ? [`${REGISTRY_ALT_IP}/24`] : []), ...(anyIpv6 ? [`${REGISTRY_IP6}/64`, ...(alternates ? [`${REGISTRY_ALT_IP6}/64`] : [])] : [])];
  links.push({ a: { ns: inet, ifname: "i-reg", bridge: INTERNET_BRIDGE }, b: { ns: regNs, ifname: "eth0", cidr: `${REGISTRY_IP}/24`, ...(regMore.length ? { moreCidrs: regMore } : {}) } });
  const registry = {
    name: "reg",
    ns: regNs,
    iface: wgInterfaceName(runId, "reg"),
    ip: REGISTRY_IP,
    tunnelIp: "10.200.0.1",
    listenPort: WG_PORT,
    grpcPort: REGISTRY_GRPC_PORT,
    ...(anyIpv6 ? { ip6: REGISTRY_IP6 } : {}),
    ...(alternates ? { altIp: REGISTRY_ALT_IP, ...(anyIpv6 ? { altIp6: REGISTRY_ALT_IP6 } : {}) } : {}),
  };
  /** IPv6 sites' prefixes and the edge address they are reached at; the internet-facing namespaces get a route to each. */
  const sitePrefixes6: Array<{ prefix: string; via: string; edgeNs: string }> = [];
  /** Internet-facing namespaces with IPv6 (the registry and each IPv6 site's edge), and their IPv6 settings so far. */
  const facing6: Array<{ name: string; what: string; forwarding: boolean; nat?: NatProfile; defaultVia?: string; own: Array<{ prefix: string; via: string }>; firewall: boolean }> = [];
  let registry2: LabPlan["registry2"];
  if (options.secondRegistry) {
    unique("host", "reg2");
    const reg2Ns = ns("reg2");
    links.push({ a: { ns: inet, ifname: "i-reg2", bridge: INTERNET_BRIDGE }, b: { ns: reg2Ns, ifname: "eth0", cidr: `${REGISTRY2_IP}/24` } });
    namespaces.push({ name: reg2Ns, what: "registry 2", forwarding: false });
    registry2 = { name: "reg2", ns: reg2Ns, iface: wgInterfaceName(runId, "reg2"), ip: REGISTRY2_IP, tunnelIp: "10.200.0.2", listenPort: WG_PORT, grpcPort: REGISTRY_GRPC_PORT };
  }
  // The registry forwards nothing: its relay passes datagrams on in user space.
  if (anyIpv6) facing6.push({ name: regNs, what: "registry", forwarding: false, own: [], firewall: false });
  else namespaces.push({ name: regNs, what: "registry", forwarding: false });

  let publicHost = 10;
  let siteIndex = 0;
  for (const site of sites) {
    unique("site", site.name);
    if (site.nodes.length === 0) throw new Error(`lab site \`${site.name}' has no nodes`);
    if (site.nat === "public" && site.nodes.length !== 1) {
      throw new Error(`lab site \`${site.name}' is public and must have exactly one node, got ${site.nodes.length}`);
    }
    if (site.nat === "public" && site.ipv6 !== undefined) throw new Error(`lab site \`${site.name}' is public: IPv6 is for NATed sites`);
    const addNode = (name: string, ip: string, ip6?: string): void => {
      unique("host", name);
      const k = nodes.length;
      if (k > 200) throw new Error("the lab supports at most 200 nodes");
      nodes.push({
        name,
        site: site.name,
        nat: site.nat,
        ns: ns(`n-${name}`),
        iface: wgInterfaceName(runId, name),
        ip,
        tunnelIp: `10.200.0.${10 + k}`,
        listenPort: WG_PORT,
        ...(ip6 !== undefined ? { ip6 } : {}),
        ...(site.ipv6 !== undefined ? { ipv6: site.ipv6 } : {}),
      });
    };

    if (site.nat === "public") {
      const name = site.nodes[0] as string;
      const ip = `203.0.113.${publicHost++}`;
      if (publicHost > 99) throw new Error("too many public sites");
      namespaces.push({ name: ns(`n-${name}`), what: `public node ${name}`, forwarding: false });
      toInternet(`n-${name}`, `${ip}/24`, "eth0");
      addNode(name, ip);
      sitePlans.push({ name: site.name, nat: site.nat, nodes: site.nodes, routerNs: null, edgeNs: null, publicIp: ip });
      continue;
    }

    siteIndex += 1;
    if (siteIndex > 45) throw new Error("too many NATed sites");
    const i = siteIndex;
    const profile = routerProfile(site.nat);
    if (profile === null) throw new Error(`no router profile for \`${site.nat}'`);
    const routerNs = ns(`r-${site.name}`);
    let publicIp: string;
    let edgeNs: string;
    const v6 = site.ipv6 !== undefined;
    const p6 = `2001:db8:${i}`;
    const edge6 = `2001:db8::1:${i}`;
    const six = (cidr: string): { moreCidrs: string[] } | Record<string, never> => (v6 ? { moreCidrs: [cidr] } : {});
    if (site.nat === "cgnat") {
      // Carrier NAT on the internet; the home router's WAN is on 100.64.i.0/24.
      const carrierNs = ns(`c-${site.name}`);
      publicIp = `203.0.113.${150 + i}`;
      edgeNs = carrierNs;
      const carrier = { name: carrierNs, what: `carrier NAT of ${site.name}`, forwarding: true, nat: CARRIER_NAT };
      if (v6) facing6.push({ ...carrier, own: [{ prefix: `${p6}::/48`, via: `${p6}:2::2` }], firewall: false });
      else namespaces.push(carrier);
      links.push({ a: { ns: inet, ifname: `i-c-${site.name}`, bridge: INTERNET_BRIDGE }, b: { ns: carrierNs, ifname: "wan", cidr: `${publicIp}/24`, ...six(`${edge6}/64`) } });
      bridges.push({ ns: carrierNs, name: "lan", cidr: `100.64.${i}.1/24`, ...six(`${p6}:2::1/64`) });
      namespaces.push({
        name: routerNs,
        what: `router of ${site.name}`,
        forwarding: true,
        defaultVia: `100.64.${i}.1`,
        nat: profile,
        ...(v6 ? { ipv6: { forwarding: true, defaultVia: `${p6}:2::1`, routes: [], firewall: true } } : {}),
      });
      links.push({ a: { ns: carrierNs, ifname: "l-router", bridge: "lan" }, b: { ns: routerNs, ifname: "wan", cidr: `100.64.${i}.2/24`, ...six(`${p6}:2::2/64`) } });
    } else {
      publicIp = `203.0.113.${100 + i}`;
      edgeNs = routerNs;
      const router = { name: routerNs, what: `router of ${site.name}`, forwarding: true, nat: profile };
      if (v6) facing6.push({ ...router, own: [], firewall: true });
      else namespaces.push(router);
      links.push({ a: { ns: inet, ifname: `i-r-${site.name}`, bridge: INTERNET_BRIDGE }, b: { ns: routerNs, ifname: "wan", cidr: `${publicIp}/24`, ...six(`${edge6}/64`) } });
    }
    if (v6) sitePrefixes6.push({ prefix: `${p6}::/48`, via: edge6, edgeNs });
    bridges.push({ ns: routerNs, name: "lan", cidr: `192.168.${i}.1/24`, ...six(`${p6}:1::1/64`) });
    site.nodes.forEach((name, j) => {
      const ip = `192.168.${i}.${10 + j}`;
      const ip6 = v6 ? `${p6}:1::${10 + j}` : undefined;
      const only = site.ipv6 === "only";
      namespaces.push({
        name: ns(`n-${name}`),
        what: `node ${name} (${site.nat} site ${site.name}${v6 ? `, IPv6 ${site.ipv6}` : ""})`,
        forwarding: false,
        ...(only ? {} : { defaultVia: `192.168.${i}.1` }),
        ...(v6 ? { ipv6: { forwarding: false, defaultVia: `${p6}:1::1`, routes: [], firewall: false } } : {}),
      });
      const end = only ? { moreCidrs: [`${ip6}/64`] } : { cidr: `${ip}/24`, ...(ip6 ? { moreCidrs: [`${ip6}/64`] } : {}) };
      links.push({ a: { ns: routerNs, ifname: `l-${name}`, bridge: "lan" }, b: { ns: ns(`n-${name}`), ifname: "eth0", ...end } });
      addNode(name, only ? (ip6 as string) : ip, ip6);
    });
    sitePlans.push({ name: site.name, nat: site.nat, nodes: site.nodes, routerNs, edgeNs, publicIp, ...(v6 ? { ipv6: site.ipv6 } : {}) });
  }

  // The internet is a bridge: each namespace on it that has IPv6 routes every other IPv6 site's /48 via that site's edge.
  for (const f of facing6) {
    const routes = [...f.own, ...sitePrefixes6.filter((p) => p.edgeNs !== f.name).map(({ prefix, via }) => ({ prefix, via }))];
    const { own: _own, firewall, ...rest } = f;
    namespaces.push({ ...rest, ipv6: { forwarding: f.forwarding, routes, firewall } });
  }

  return { runId, prefix, namespaces, bridges, links, registry, ...(registry2 ? { registry2 } : {}), nodes, sites: sitePlans };
}
