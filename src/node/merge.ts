/**
 * One view from several registries. Each registry reads its own WireGuard
 * and shares nothing with the others, so for a peer they may say different
 * things: one has not seen the peer's new NAT mapping yet, one is down and
 * its last word is old, one lies. Per peer, the freshest evidence wins:
 *
 *  1. An endpoint beats no endpoint.
 *  2. Among endpoints, the one a registry changed to most recently, as this
 *     node heard it: a rebinding reaches every registry's WireGuard within a
 *     second (the node's hellos go to each), and the registry that reports it
 *     first is the one that saw it. A value that came in a snapshot (a
 *     registry connected or reconnected) counts as old news: it says what
 *     the registry had, not when it changed; so a registry that comes back
 *     never overrides what a live one reported while it was away.
 *  3. Ties: the registry given first.
 *
 * A registry that goes silent keeps its last view here, but that view
 * stops changing, so any change another registry reports wins. Candidates
 * (LAN addresses the peer reported) are joined from every registry. What a
 * registry says never clobbers a working session: decide() keeps those.
 * Pure and bounded: at most one view per registry, each already bounded by
 * the source (MAX_VIEW_PEERS).
 */
import { endpointsEqual } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";
import type { RegistryView } from "./source.js";
import { MAX_PEER_CANDIDATES } from "./validate.js";

interface Held {
  readonly view: RegistryView;
  /** When this registry last changed each peer's endpoint (-Infinity: as of its snapshot). */
  readonly changedAtMs: Map<string, number>;
}

/** Two registries' different endpoints for one peer, as merged (for a log line). */
export interface Disagreement {
  readonly peer: string;
  readonly chosen: { readonly registry: string; readonly endpoint: Endpoint };
  readonly other: { readonly registry: string; readonly endpoint: Endpoint };
}

export class ViewMerger {
  private readonly held = new Map<string, Held>();

  /** `order`: the registries' names, in the order given (ties go to the earlier). */
  constructor(private readonly order: readonly string[]) {}

  /** Takes a registry's new view, noting which peers' endpoints it changed now. */
  update(name: string, view: RegistryView, nowMs: number): void {
    const before = this.held.get(name);
    const fresh = before !== undefined && before.view.generation === view.generation;
    const changedAtMs = new Map<string, number>();
    for (const [key, ep] of view.endpoints) {
      const was = before?.view.endpoints.get(key);
      const same = was !== undefined && (was === null ? ep === null : ep !== null && endpointsEqual(was, ep));
      // A change within one connection is news from now; anything in a snapshot is as old as can be.
      changedAtMs.set(key, same ? (before?.changedAtMs.get(key) ?? -Infinity) : fresh ? nowMs : -Infinity);
    }
    this.held.set(name, { view, changedAtMs });
  }

  /** The registry's last view, or null when it never sent one. */
  viewOf(name: string): RegistryView | null {
    return this.held.get(name)?.view ?? null;
  }

  /** The merged view (null before any registry sent one), and where the registries disagree. */
  merged(): { view: RegistryView; disagreements: Disagreement[] } | null {
    const names = this.order.filter((n) => this.held.has(n));
    const first = names[0] === undefined ? undefined : this.held.get(names[0]);
    if (!first) return null;
    if (names.length === 1) return { view: first.view, disagreements: [] };
    const endpoints = new Map<string, Endpoint | null>();
    const from = new Map<string, { registry: string; at: number }>();
    const candidates = new Map<string, Endpoint[]>();
    const allowedIps = new Map<string, readonly string[]>();
    const disagreements: Disagreement[] = [];
    let generation = 0;
    for (const name of names) {
      const held = this.held.get(name) as Held;
      generation += held.view.generation;
      for (const [key, ep] of held.view.endpoints) {
        const at = held.changedAtMs.get(key) ?? -Infinity;
        const chosen = endpoints.get(key);
        const chosenFrom = from.get(key);
        if (chosen === undefined || (chosen === null && ep !== null)) {
          endpoints.set(key, ep);
          from.set(key, { registry: name, at });
        } else if (chosen !== null && ep !== null && !endpointsEqual(chosen, ep)) {
          const newer = chosenFrom !== undefined && at > chosenFrom.at;
          const winner = newer ? { registry: name, endpoint: ep } : { registry: chosenFrom?.registry ?? "", endpoint: chosen };
          const loser = newer ? { registry: chosenFrom?.registry ?? "", endpoint: chosen } : { registry: name, endpoint: ep };
          disagreements.push({ peer: key, chosen: winner, other: loser });
          if (newer) {
            endpoints.set(key, ep);
            from.set(key, { registry: name, at });
          }
        }
        if (!allowedIps.has(key)) {
          const ips = held.view.allowedIps?.get(key);
          if (ips) allowedIps.set(key, ips);
        }
      }
      for (const [key, list] of held.view.candidates) {
        const joined = candidates.get(key) ?? [];
        for (const c of list) if (joined.length < MAX_PEER_CANDIDATES && !joined.some((j) => endpointsEqual(j, c))) joined.push(c);
        candidates.set(key, joined);
      }
    }
    return {
      view: {
        endpoints,
        candidates,
        allowedIps,
        registryPublicKey: first.view.registryPublicKey,
        generation,
        relay: names.some((n) => this.held.get(n)?.view.relay === true),
        via: first.view.via,
      },
      disagreements,
    };
  }
}
