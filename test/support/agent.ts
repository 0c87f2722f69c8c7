/**
 * A node agent with nothing but a WireGuard and a registry that says one
 * thing: no datagrams, no programs, no relay. For the agent's own tests.
 */
import type { AgentOptions } from "../../src/node/agent.js";
import type { RegistrySource, RegistryView } from "../../src/node/source.js";
import type { Clock } from "../../src/util/clock.js";
import type { Logger } from "../../src/util/log.js";
import { FakeWireGuard, type FakeDeviceInit } from "../../src/wg/fake.js";
import type { WireGuard } from "../../src/wg/types.js";
import { key } from "./keys.js";

export const SELF = key(1);
export const BOB = key(2);
export const REGISTRY = key(9);
export const BOB_EP = { ip: "203.0.113.2", port: 4000 };

/** wg0: the registry as a peer (its endpoint, its tunnel address, a keepalive) and Bob without an endpoint. */
export function nodeDevice(): FakeDeviceInit[] {
  return [
    {
      name: "wg0",
      publicKey: SELF,
      listenPort: 51820,
      peers: [
        { publicKey: REGISTRY, endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["10.200.0.1/32"], persistentKeepaliveSec: 25 },
        { publicKey: BOB, allowedIps: ["10.200.0.2/32"] },
      ],
    },
  ];
}

/**
 * wg0 of a node whose registry is dialled at 127.0.0.1 (standing for its
 * tunnel address: the registry's peer has it as its /32), and one other
 * node at `otherTunnel`, without an endpoint. For tests that run a real
 * registry and real agents in process.
 */
export function dialledNodeWg(self: string, other: string, otherTunnel: string): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: self,
      listenPort: 51820,
      peers: [
        { publicKey: REGISTRY, endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["127.0.0.1/32"], persistentKeepaliveSec: 25 },
        { publicKey: other, allowedIps: [otherTunnel] },
      ],
    },
  ]);
}

/** What the registry says: Bob at BOB_EP. */
export const BOB_VIEW: RegistryView = { endpoints: new Map([[BOB, BOB_EP]]), candidates: new Map(), registryPublicKey: REGISTRY, relay: false, generation: 1, via: "watch" };

/** A registry that hands the agent `view` as soon as it subscribes, and nothing more. */
export function staticSource(view: RegistryView = BOB_VIEW): RegistrySource {
  return { start: (onView) => onView(view), report: async () => {}, stop: () => {} };
}

/** The options of an agent on `wg0` that sends nothing but WireGuard requests. */
export function quietAgent(wg: WireGuard, source: RegistrySource, clock: Clock, logger: Logger, refreshMs = 60_000): AgentOptions {
  return { wg, registries: [{ name: "registry", source, host: null, ips: [], port: 1638 }], iface: "wg0", refreshMs, clock, logger, prober: null, probeIntervalMs: 0, interfaces: () => ({}), routeCheck: async () => false, natProbe: null };
}
