/**
 * What `wormhole netcheck` concludes from its STUN probes, in RFC 4787 and
 * RFC 5780 terms, and what that means for pairs of nodes. Pure: probe.ts
 * runs the tests, this file only reads their results.
 *
 * The tests, per address family, against the registry's STUN address A:p,
 * its alternate port p' and, when the registry has one, its alternate
 * address A':
 *   mapping   test 1 to A:p gives M1 (M1 = our own address: no NAT);
 *             test 2 to A':p gives M2 (M2 = M1: endpoint-independent);
 *             test 3 to A':p' gives M3 (M3 = M2: address-dependent, else
 *             address-and-port-dependent). Without A', test 2 goes to A:p':
 *             another mapping proves address-and-port-dependent; the same
 *             one leaves endpoint-independent and address-dependent apart.
 *   filtering from a fresh socket that has sent only to A:p: a reply from
 *             A':p' heard (CHANGE-REQUEST both) is endpoint-independent; else
 *             one from A:p' heard is address-dependent; neither,
 *             address-and-port-dependent.
 *   hairpin   a datagram from a second socket to M1 arrives at the first.
 */
import { showEndpoint } from "../stun/client.js";
import { endpointsEqual } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";

export const MAPPINGS = ["none", "endpoint-independent", "address-dependent", "address-and-port-dependent", "unknown"] as const;
export type Mapping = (typeof MAPPINGS)[number];
export type Filtering = "endpoint-independent" | "address-dependent" | "address-and-port-dependent" | "unknown";
/** IPv6: no NAT (native), some NAT66/NPTv6 (nat), no global IPv6 address here (none), or unknown. */
export type Ipv6 = "native" | "nat" | "none" | "unknown";

/** One Binding request's outcome: the mapped address, or what went wrong (`timeout`: nothing came back in time). */
export type Probe = { readonly mapped: Endpoint; readonly rttMs: number } | { readonly problem: string; readonly timeout: boolean };
/** Whether a datagram the test asked for arrived. */
export type Heard = { readonly heard: boolean } | { readonly problem: string };

export interface FamilyObservations {
  /** This host's address towards the registry, and the port test 1 was sent from. */
  readonly local: Endpoint;
  /** The registry's STUN address tested (A:p). */
  readonly server: Endpoint;
  /** The registry's alternate address and port (OTHER-ADDRESS), or null. */
  readonly alternate: Endpoint | null;
  readonly test1: Probe;
  /** To A':p, or to A:p' without an alternate address; null when not run. */
  readonly test2: Probe | null;
  /** To A':p'; null when not run (only needed when test 2 saw another mapping). */
  readonly test3: Probe | null;
  /** CHANGE-REQUEST change address and port; null when not run (no alternate address). */
  readonly filterBoth: Heard | null;
  /** CHANGE-REQUEST change port; null when not run. */
  readonly filterPort: Heard | null;
  readonly hairpin: Heard | null;
}

/** A family's tests could not start: no address of the registry in it, no route, ... */
export interface Skipped {
  readonly skipped: string;
}

export interface Observations {
  readonly ipv4: FamilyObservations | Skipped;
  readonly ipv6: FamilyObservations | Skipped;
  /** Whether this host has a global IPv6 address (not loopback, link-local or ULA). */
  readonly hasGlobalIpv6: boolean;
}

export interface FamilyVerdict {
  readonly mapping: Mapping;
  readonly filtering: Filtering;
  /** null: unknown. */
  readonly hairpin: boolean | null;
  /** Whether the NAT kept our source port; null: unknown. */
  readonly portPreserved: boolean | null;
  /** Our address as the registry sees it (test 1), or null. */
  readonly mapped: Endpoint | null;
  readonly rttMs: number | null;
  /** Why each unknown is unknown, keyed by the field. */
  readonly why: Readonly<Partial<Record<"mapping" | "filtering" | "hairpin" | "portPreserved", string>>>;
}

export interface Verdict {
  readonly mapping: Mapping;
  readonly filtering: Filtering;
  readonly hairpin: boolean | null;
  readonly portPreserved: boolean | null;
  readonly ipv6: Ipv6;
  readonly ipv4Detail: FamilyVerdict;
  readonly ipv6Detail: FamilyVerdict;
  /** Why ipv6 is what it is, when it is not native. */
  readonly ipv6Why: string | null;
  /** What this means for pairs, one sentence each. */
  readonly pairs: readonly string[];
}

const isSkipped = (o: FamilyObservations | Skipped): o is Skipped => "skipped" in o;

function unknownFamily(why: string): FamilyVerdict {
  return { mapping: "unknown", filtering: "unknown", hairpin: null, portPreserved: null, mapped: null, rttMs: null, why: { mapping: why, filtering: why, hairpin: why, portPreserved: why } };
}

const AMBIGUOUS = "endpoint-independent or address-dependent: the registry has no second address of this family to tell them apart";

/** The verdict for one address family. */
export function familyVerdict(o: FamilyObservations | Skipped): FamilyVerdict {
  if (isSkipped(o)) return unknownFamily(o.skipped);
  const t1 = o.test1;
  if ("problem" in t1) {
    return unknownFamily(
      t1.timeout ? `no STUN reply from the registry at ${showEndpoint(o.server)} (${t1.problem}): UDP to the probe port is dropped on the way, or the registry answers no STUN` : t1.problem,
    );
  }
  const why: Partial<Record<"mapping" | "filtering" | "hairpin" | "portPreserved", string>> = {};
  const natted = !endpointsEqual(t1.mapped, o.local);

  let mapping: Mapping;
  if (!natted) mapping = "none";
  else {
    const t2 = o.test2;
    if (t2 === null) {
      mapping = "unknown";
      why.mapping = "the second mapping test did not run";
    } else if ("problem" in t2) {
      mapping = "unknown";
      why.mapping = `second mapping test: ${t2.problem}`;
    } else if (o.alternate === null) {
      if (endpointsEqual(t2.mapped, t1.mapped)) {
        mapping = "unknown";
        why.mapping = AMBIGUOUS;
      } else mapping = "address-and-port-dependent";
    } else if (endpointsEqual(t2.mapped, t1.mapped)) mapping = "endpoint-independent";
    else {
      const t3 = o.test3;
      if (t3 === null || "problem" in t3) {
        mapping = "unknown";
        why.mapping = `third mapping test: ${t3 === null ? "did not run" : t3.problem}`;
      } else mapping = endpointsEqual(t3.mapped, t2.mapped) ? "address-dependent" : "address-and-port-dependent";
    }
  }

  let filtering: Filtering;
  const both = o.filterBoth;
  const port = o.filterPort;
  if (both !== null && "problem" in both) {
    filtering = "unknown";
    why.filtering = both.problem;
  } else if (both?.heard) filtering = "endpoint-independent";
  else if (port === null) {
    filtering = "unknown";
    why.filtering = "the filtering tests did not run";
  } else if ("problem" in port) {
    filtering = "unknown";
    why.filtering = port.problem;
  } else if (port.heard) {
    if (both === null) {
      filtering = "unknown";
      why.filtering = AMBIGUOUS;
    } else filtering = "address-dependent";
  } else filtering = "address-and-port-dependent";

  let hairpin: boolean | null = null;
  if (o.hairpin === null) why.hairpin = "the hairpin test did not run";
  else if ("problem" in o.hairpin) why.hairpin = o.hairpin.problem;
  else hairpin = o.hairpin.heard;

  return { mapping, filtering, hairpin, portPreserved: t1.mapped.port === o.local.port, mapped: t1.mapped, rttMs: t1.rttMs, why };
}

/** The whole verdict: IPv4 in the top-level keys, IPv6 reachability, and what it means for pairs. */
export function verdict(obs: Observations): Verdict {
  const v4 = familyVerdict(obs.ipv4);
  const v6 = familyVerdict(obs.ipv6);
  let ipv6: Ipv6;
  let ipv6Why: string | null = null;
  if (!obs.hasGlobalIpv6) {
    ipv6 = "none";
    ipv6Why = "this host has no global IPv6 address";
  } else if (v6.mapping === "none") ipv6 = "native";
  else if (v6.mapping === "unknown" && v6.mapped === null) {
    ipv6 = "unknown";
    ipv6Why = v6.why.mapping ?? "no IPv6 test ran";
  } else ipv6 = "nat";
  return { mapping: v4.mapping, filtering: v4.filtering, hairpin: v4.hairpin, portPreserved: v4.portPreserved, ipv6, ipv4Detail: v4, ipv6Detail: v6, ipv6Why, pairs: pairMeaning(v4, ipv6, v6) };
}

/** What the verdict means for pairs of nodes, in words. Pure. */
export function pairMeaning(v4: FamilyVerdict, ipv6: Ipv6, v6: FamilyVerdict): string[] {
  const out: string[] = [];
  const symmetric = v4.mapping === "address-dependent" || v4.mapping === "address-and-port-dependent";
  if (v4.mapping === "unknown") out.push(`IPv4: unknown (${v4.why.mapping ?? "the tests did not finish"})`);
  else if (symmetric) {
    out.push("IPv4: this NAT is symmetric: direct only with peers that accept unsolicited packets (public hosts, endpoint-independent filtering); needs the relay against every other NATed peer");
  } else if (v4.filtering === "endpoint-independent") {
    out.push("IPv4: direct with anything, even peers behind symmetric NATs (packets from anyone reach this host)");
  } else {
    out.push("IPv4: direct with anything but symmetric NATs (address-dependent or address-and-port-dependent mapping); needs the relay against those");
  }
  if (v4.hairpin === false && v4.mapping !== "none") out.push("peers behind this same NAT: only over the LAN (it does not hairpin)");
  if (ipv6 === "native") {
    const fw = v6.filtering === "endpoint-independent" ? "no firewall in the way" : "a stateful firewall opens when both ends send";
    out.push(`IPv6: no NAT: direct with every peer that has IPv6 too (${fw})${symmetric ? ", which also avoids the relay for them" : ""}`);
  } else if (ipv6 === "nat") out.push("IPv6: behind a NAT66 or prefix translation: treat it like IPv4 NAT");
  return out;
}
