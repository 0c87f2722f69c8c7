/**
 * Reading what a registry sends (a seed's GetEndpoint reply, wormhole.v1
 * Watch events) into the node's view, dropping what the node will not use.
 * Pure: no I/O, no time.
 */
import type { GetEndpointReply, PeerInfo__Output, WatchEvent__Output } from "../rpc/proto.js";
import { isKey } from "../wg/keys.js";
import type { Endpoint } from "../wg/types.js";
import { tryCanonicalCidr } from "../wg/endpoint.js";
import { MAX_PEER_CANDIDATES, MAX_VIEW_PEERS, registryEndpoint } from "./validate.js";

/** Where problems with the registry's messages are told (a Logger, or a stream's rate-limited one). */
export interface WarnSink {
  warn(fields: object, message: string): void;
}

/**
 * What was wrong with one message from the registry: logged once per message, with
 * the first example, however many peers it had (a hostile registry cannot flood the log).
 */
class Garbage {
  private badKeys = 0;
  private badEndpoints = 0;
  private firstKey: unknown;
  private firstEndpoint: Record<string, unknown> | null = null;
  key(key: unknown): void {
    if (this.badKeys++ === 0) this.firstKey = typeof key === "string" ? key.slice(0, 60) : typeof key;
  }
  endpoint(peer: string, ip: unknown, port: unknown, why: string): void {
    if (this.badEndpoints++ === 0) this.firstEndpoint = { peer, ip: typeof ip === "string" ? ip.slice(0, 60) : ip, port, why };
  }
  log(logger: WarnSink): void {
    if (this.badKeys > 0) logger.warn({ count: this.badKeys, first: this.firstKey }, "registry sent peers whose public key is not a WireGuard key; ignoring them");
    if (this.badEndpoints > 0) logger.warn({ count: this.badEndpoints, first: this.firstEndpoint }, "registry sent endpoints this node will not use; ignoring them");
  }
}

/** Reads a seed GetEndpointReply, dropping entries that are not valid keys and endpoints that are not usable. */
export function viewFromSeedReply(reply: GetEndpointReply, logger: WarnSink, allowedIps?: Map<string, readonly string[]>): Map<string, Endpoint | null> {
  const endpoints = new Map<string, Endpoint | null>();
  const garbage = new Garbage();
  const peers = Array.isArray(reply?.Peers) ? reply.Peers : [];
  for (const p of peers.slice(0, MAX_VIEW_PEERS)) {
    const key = p?.pubKey;
    if (typeof key !== "string" || !isKey(key)) {
      garbage.key(key);
      continue;
    }
    const r = registryEndpoint(p.endpointIP, p.endpointPort);
    if ("problem" in r) garbage.endpoint(key, p.endpointIP, p.endpointPort, r.problem);
    endpoints.set(key, "endpoint" in r ? r.endpoint : null);
    allowedIps?.set(key, allowedIpsOf(p.AllowedIPs));
  }
  garbage.log(logger);
  return endpoints;
}

/** What the node keeps of the registry's Watch stream. */
export interface WatchState {
  readonly endpoints: Map<string, Endpoint | null>;
  readonly candidates: Map<string, readonly Endpoint[]>;
  readonly allowedIps: Map<string, readonly string[]>;
}

/** Most allowed IPs kept per peer from the registry. */
export const MAX_PEER_ALLOWED_IPS = 16;

/** The allowed IPs as sent, keeping only valid prefixes (at most MAX_PEER_ALLOWED_IPS). */
function allowedIpsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const a of list.slice(0, MAX_PEER_ALLOWED_IPS)) {
    const cidr = typeof a === "string" && a.length <= 64 ? tryCanonicalCidr(a) : null;
    if (cidr !== null) out.push(cidr);
  }
  return out;
}

/** Candidates as sent, keeping only usable endpoints (at most 16). */
function candidatesOf(list: readonly { ip: string; port: number }[], key: string, garbage: Garbage): Endpoint[] {
  const out: Endpoint[] = [];
  for (const c of list.slice(0, MAX_PEER_CANDIDATES)) {
    const r = registryEndpoint(c?.ip, c?.port);
    if ("problem" in r) garbage.endpoint(key, c?.ip, c?.port, `candidate: ${r.problem}`);
    else if (r.endpoint) out.push(r.endpoint);
  }
  return out;
}

/**
 * Folds one Watch event into the state; returns false for an event it cannot read.
 * The state never holds more than MAX_VIEW_PEERS peers, whatever the registry sends.
 */
export function applyWatchEvent(state: WatchState, event: WatchEvent__Output, logger: WarnSink): boolean {
  const garbage = new Garbage();
  const take = (p: PeerInfo__Output) => {
    const key = p?.publicKey;
    if (typeof key !== "string" || !isKey(key)) {
      garbage.key(key);
      return;
    }
    if (state.endpoints.size >= MAX_VIEW_PEERS && !state.endpoints.has(key)) return;
    const ep = p.endpoint;
    const r = ep ? registryEndpoint(ep.ip, ep.port) : { endpoint: null };
    if ("problem" in r) garbage.endpoint(key, ep?.ip, ep?.port, r.problem);
    state.endpoints.set(key, "endpoint" in r ? r.endpoint : null);
    state.allowedIps.set(key, allowedIpsOf(p.allowedIps));
    const candidates = candidatesOf(Array.isArray(p.candidates) ? p.candidates : [], key, garbage);
    if (candidates.length > 0) state.candidates.set(key, candidates);
    else state.candidates.delete(key);
  };
  switch (event?.event) {
    case "snapshot":
      state.endpoints.clear();
      state.candidates.clear();
      state.allowedIps.clear();
      for (const p of Array.isArray(event.snapshot?.peers) ? event.snapshot.peers : []) take(p);
      garbage.log(logger);
      return true;
    case "changed":
      if (!event.changed) return false;
      take(event.changed);
      garbage.log(logger);
      return true;
    case "removedPublicKey":
      state.endpoints.delete(event.removedPublicKey ?? "");
      state.candidates.delete(event.removedPublicKey ?? "");
      state.allowedIps.delete(event.removedPublicKey ?? "");
      return true;
    default:
      return false;
  }
}
