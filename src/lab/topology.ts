/**
 * The lab's plan: which namespaces, links, addresses, NAT boxes and WireGuard
 * hosts a set of sites needs. Pure: `planLab` computes, `lab.ts` builds.
 *
 * Addressing (all inside lab namespaces):
 *   203.0.113.0/24   the "internet" (one bridge): registry .1, public nodes .10+,
 *                    site routers .100+, carrier NATs .150+
 *   100.64.N.0/24    between carrier NAT N (.1) and the home router behind it (.2)
 *   192.168.N.0/24   LAN of site N: router .1, nodes .10, .11
 *   10.200.0.0/24    WireGuard tunnel: registry .1, nodes .10+
 */
import type { NatBehaviour, NatProfile } from "./nat.js";
import { CARRIER_NAT, routerProfile } from "./nat.js";
import { checkHostName, namespaceName, runPrefix, wgInterfaceName } from "./names.js";

export interface SiteSpec {
  /** Site name (≤ 6 chars, [a-z0-9]); names the router's namespace. */
  readonly name: string;
  readonly nat: NatBehaviour;
  /** Host names of the nodes at this site (≤ 6 chars each). `public` sites have exactly one. */
  readonly nodes: readonly string[];
}

export interface NsPlan {
  readonly name: string;
  /** What the namespace is, for logs: "internet", "registry", "router home1", ... */
  readonly what: string;
  readonly forwarding: boolean;
  /** Gateway for the default route, if any. Routers facing the internet have none: 203.0.113.0/24 is connected. */
  readonly defaultVia?: string;
  readonly nat?: NatProfile;
}

export interface BridgePlan {
  readonly ns: string;
  readonly name: string;
  readonly cidr?: string;
}

export interface LinkEnd {
  readonly ns: string;
  readonly ifname: string;
  /** Address with prefix length, e.g. "203.0.113.1/24". */
  readonly cidr?: string;
  /** Enslave this end to a bridge of its namespace. */
  readonly bridge?: string;
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
}

export interface LabPlan {
  readonly runId: string;
  /** `whl-<id>-`: every namespace and WireGuard interface of the run starts with it. */
  readonly prefix: string;
  readonly namespaces: readonly NsPlan[];
  readonly bridges: readonly BridgePlan[];
  readonly links: readonly LinkPlan[];
  readonly registry: WgHostPlan & { readonly grpcPort: number };
  readonly nodes: readonly NodePlan[];
  readonly sites: readonly SitePlan[];
}

export const REGISTRY_IP = "203.0.113.1";
export const REGISTRY_GRPC_PORT = 1638;
export const WG_PORT = 51820;
export const TUNNEL_PREFIX_LEN = 24;

const INTERNET_BRIDGE = "inet";

export function planLab(runId: string, sites: readonly SiteSpec[]): LabPlan {
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

  const regNs = ns("reg");
  namespaces.push({ name: regNs, what: "registry", forwarding: false });
  toInternet("reg", `${REGISTRY_IP}/24`, "eth0");
  const registry = {
    name: "reg",
    ns: regNs,
    iface: wgInterfaceName(runId, "reg"),
    ip: REGISTRY_IP,
    tunnelIp: "10.200.0.1",
    listenPort: WG_PORT,
    grpcPort: REGISTRY_GRPC_PORT,
  };

  let publicHost = 10;
  let siteIndex = 0;
  for (const site of sites) {
    unique("site", site.name);
    if (site.nodes.length === 0) throw new Error(`lab site \`${site.name}' has no nodes`);
    if (site.nat === "public" && site.nodes.length !== 1) {
      throw new Error(`lab site \`${site.name}' is public and must have exactly one node, got ${site.nodes.length}`);
    }
    const addNode = (name: string, ip: string): void => {
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
    if (site.nat === "cgnat") {
      // Carrier NAT on the internet; the home router's WAN is on 100.64.i.0/24.
      const carrierNs = ns(`c-${site.name}`);
      publicIp = `203.0.113.${150 + i}`;
      edgeNs = carrierNs;
      namespaces.push({ name: carrierNs, what: `carrier NAT of ${site.name}`, forwarding: true, nat: CARRIER_NAT });
      toInternet(`c-${site.name}`, `${publicIp}/24`, "wan");
      bridges.push({ ns: carrierNs, name: "lan", cidr: `100.64.${i}.1/24` });
      namespaces.push({ name: routerNs, what: `router of ${site.name}`, forwarding: true, defaultVia: `100.64.${i}.1`, nat: profile });
      links.push({ a: { ns: carrierNs, ifname: "l-router", bridge: "lan" }, b: { ns: routerNs, ifname: "wan", cidr: `100.64.${i}.2/24` } });
    } else {
      publicIp = `203.0.113.${100 + i}`;
      edgeNs = routerNs;
      namespaces.push({ name: routerNs, what: `router of ${site.name}`, forwarding: true, nat: profile });
      toInternet(`r-${site.name}`, `${publicIp}/24`, "wan");
    }
    bridges.push({ ns: routerNs, name: "lan", cidr: `192.168.${i}.1/24` });
    site.nodes.forEach((name, j) => {
      const ip = `192.168.${i}.${10 + j}`;
      namespaces.push({ name: ns(`n-${name}`), what: `node ${name} (${site.nat} site ${site.name})`, forwarding: false, defaultVia: `192.168.${i}.1` });
      links.push({ a: { ns: routerNs, ifname: `l-${name}`, bridge: "lan" }, b: { ns: ns(`n-${name}`), ifname: "eth0", cidr: `${ip}/24` } });
      addNode(name, ip);
    });
    sitePlans.push({ name: site.name, nat: site.nat, nodes: site.nodes, routerNs, edgeNs, publicIp });
  }

  return { runId, prefix, namespaces, bridges, links, registry, nodes, sites: sitePlans };
}
