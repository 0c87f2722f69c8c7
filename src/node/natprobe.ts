/**
 * The node's start-up look at its own NAT, with the registry's STUN responder
 * (`wormhole netcheck`'s mapping test, alone): two Binding requests from one
 * socket, to the STUN port and to its alternate (or to the alternate address
 * the registry names). Two different mapped endpoints: the NAT maps per
 * destination (a "symmetric" NAT, address- or address-and-port-dependent
 * mapping), and punching cannot work against any peer that is not public.
 * Never throws; every wait is bounded.
 */
import { createSocket, type Socket } from "node:dgram";
import { binding, type BindingResult } from "../stun/client.js";
import { endpointsEqual } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";

export type NatMapping = "per-destination" | "endpoint-independent" | "unknown";

export interface NatProbeResult {
  readonly mapping: NatMapping;
  /** Why, for the log. */
  readonly detail: string;
}

/** Reads the two replies. Pure. */
export function mappingOf(first: BindingResult, second: BindingResult | null): NatProbeResult {
  if ("problem" in first) return { mapping: "unknown", detail: first.problem };
  if (second === null) return { mapping: "unknown", detail: "no second address or port to compare with" };
  if ("problem" in second) return { mapping: "unknown", detail: second.problem };
  if (endpointsEqual(first.mapped, second.mapped)) return { mapping: "endpoint-independent", detail: `mapped to ${first.mapped.ip}:${first.mapped.port} for both destinations` };
  return { mapping: "per-destination", detail: `mapped to ${first.mapped.ip}:${first.mapped.port}, then to ${second.mapped.ip}:${second.mapped.port} for another destination` };
}

export interface NatProbeOptions {
  /** The registry's public address (where WireGuard sends to it), an IP. */
  readonly host: string;
  readonly port: number;
  readonly altPort: number;
  /** Bound for each request. Default 1 000 ms. */
  readonly timeoutMs?: number;
}

export async function probeNatMapping(options: NatProbeOptions): Promise<NatProbeResult> {
  const timeoutMs = options.timeoutMs ?? 1_000;
  let socket: Socket | null = null;
  try {
    const s = createSocket(options.host.includes(":") ? { type: "udp6", ipv6Only: true } : { type: "udp4" });
    socket = s;
    s.on("error", () => {}); // send errors reach binding()'s callback
    s.unref();
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(0, () => {
        s.off("error", reject);
        resolve();
      });
    });
    const server: Endpoint = { ip: options.host, port: options.port };
    const first = await binding(s, server, { timeoutMs });
    if ("problem" in first) return mappingOf(first, null);
    const family = options.host.includes(":");
    const other = first.other !== null && first.other.ip.includes(":") === family ? { ip: first.other.ip, port: options.port } : { ip: options.host, port: options.altPort };
    return mappingOf(first, await binding(s, other, { timeoutMs }));
  } catch (err) {
    return { mapping: "unknown", detail: (err as Error).message };
  } finally {
    try {
      socket?.close();
    } catch {
      /* closed already */
    }
  }
}
