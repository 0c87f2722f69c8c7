import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { dirname } from "node:path";
import { prefixContains } from "../util/prefix.js";
import { AutoPeers } from "./auto-peers-runner.js";
import { tryCanonicalIp } from "../wg/endpoint.js";
import type { Clock } from "../util/clock.js";
import { addressHost } from "../config/values.js";
import type { Logger } from "../util/log.js";
import { WgError, type WgDevice, type WireGuard } from "../wg/types.js";
import { tunnelCheck } from "./validate.js";
import { NodeAgent, type RegistryRef } from "./agent.js";
import { DEFAULT_CONTROL_SOCKET, startControl, stopControl } from "./control.js";
import type { DecideOptions } from "./decide.js";
import { createUdpProber, type Prober, type RouteCheck } from "./prober.js";
import { pingMeter, type RttMeter } from "./rtt.js";
import { probeNatMapping, type NatProbeResult } from "./natprobe.js";
import { DEFAULT_STUN_PORT, NODE_DEFAULTS } from "../config/settings.js";
import { channelCredentials, type ClientTls } from "../tls/client.js";
import { addressPort, createGrpcSource, type RegistrySource } from "./source.js";

export interface NodeConfig {
  /** The registries' host:port, one or more, in the order given. */
  readonly addresses: readonly string[];
  readonly token: string;
  /** One interface, or null for all. */
  readonly iface: string | null;
  readonly refreshMs: number;
  readonly keepaliveSec: number;
  /** Hello to the registry's tunnel address this often; 0 for never (and no relay). */
  readonly probeIntervalMs: number;
  /** Relay through the registry (end to end encrypted) what cannot go direct. Default true. */
  readonly allowRelay?: boolean;
  /** Unix socket where `wormhole status` finds the agent; null: none. */
  readonly controlSocket?: string | null;
  /** Reach the registry over TLS, trusting it this way; null or absent: plaintext. */
  readonly tls?: ClientTls | null;
  /** Add the registries' peers inside this prefix (a self-assembling mesh); null or absent: off. */
  readonly autoPeers?: string | null;
  /** How long an auto peer may be missing from every registry before it is removed; absent: the settings table's default (--auto-peers-grace). */
  readonly autoPeersGraceMs?: number;
}

export interface NodeDeps {
  readonly wg: WireGuard;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The first registry's source (tests); by default the gRPC source for each address. */
  readonly source?: RegistrySource;
  readonly decideOptions?: DecideOptions;
  /** Defaults to a UDP prober; null for none. */
  readonly prober?: Prober | null;
  /** Relay timings (tests shorten them). */
  readonly relayTimings?: { readonly relayAfterMs?: number; readonly tryDirectMs?: number; readonly quietMs?: number; readonly roundMs?: number };
  /** Route check for tunnel addresses (`ip route get` by default). */
  readonly routeCheck?: RouteCheck;
  /** Source address of the relay link (tests). */
  readonly relayBindAddress?: string;
  /** The machine's network interfaces (for LAN candidates); os.networkInterfaces by default. */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Round trips for `wormhole status`; ping(8) by default, null for none. */
  readonly rttMeter?: RttMeter | null;
  /** The start-up NAT probe; the registry's STUN responder on its default ports by default, null for none. */
  readonly natProbe?: ((host: string) => Promise<NatProbeResult>) | null;
}

/**
 * Checks what must work before the agent can do anything (the interface
 * exists and is readable), then starts it. Only start-up fails; after this,
 * every failure is logged and retried.
 */
export async function runNode(config: NodeConfig, deps: NodeDeps): Promise<NodeAgent> {
  const { wg, logger } = deps;
  if (config.addresses.length === 0) throw new Error("no registry address");
  const registries: RegistryRef[] = [];
  for (const [i, address] of config.addresses.entries()) {
    const source =
      (i === 0 ? deps.source : undefined) ??
      createGrpcSource({
        address,
        token: config.token,
        refreshMs: config.refreshMs,
        logger,
        credentials: channelCredentials(config.tls ?? null),
        secure: (config.tls ?? null) !== null,
      });
    const host = addressHost(address);
    registries.push({ name: address, source, host, ips: await hostAddresses(host, logger), port: addressPort(address) ?? 1638 });
  }
  if (config.iface) {
    const device = await wg.getDevice(config.iface);
    for (const r of registries) warnPlaintext(config, r.name, r.ips, device, logger);
  } else {
    const all = await wg.listDevices();
    if (all.length === 0) logger.warn("no WireGuard interface found yet; will keep looking");
    // Reading one proves we have permission before we settle in.
    if (all[0] !== undefined) {
      try {
        await wg.getDevice(all[0]);
      } catch (err) {
        if (err instanceof WgError && err.code === "permission") throw err;
      }
    }
  }
  const autoPeers = config.autoPeers ? autoPeersFor(config, config.autoPeers, deps) : null;
  const agent = new NodeAgent({
    wg,
    registries,
    iface: config.iface,
    refreshMs: config.refreshMs,
    clock: deps.clock,
    logger,
    decideOptions: { defaultKeepaliveSec: config.keepaliveSec, ...deps.decideOptions },
    prober: deps.prober === undefined ? createUdpProber(logger) : deps.prober,
    probeIntervalMs: config.probeIntervalMs,
    ...(deps.interfaces ? { interfaces: deps.interfaces } : {}),
    ...(deps.relayTimings ? { relayTimings: deps.relayTimings } : {}),
    allowRelay: config.allowRelay ?? true,
    ...(deps.routeCheck ? { routeCheck: deps.routeCheck } : {}),
    ...(deps.relayBindAddress ? { relayBindAddress: deps.relayBindAddress } : {}),
    rttMeter: deps.rttMeter === undefined ? pingMeter() : deps.rttMeter,
    natProbe: deps.natProbe === undefined ? (host) => probeNatMapping({ host, port: DEFAULT_STUN_PORT, altPort: DEFAULT_STUN_PORT + 1 }) : deps.natProbe,
    autoPeers,
  });
  agent.start();
  if (config.controlSocket) {
    const path = config.controlSocket;
    try {
      const server = await startControl(path, () => agent.status(), logger);
      agent.onStop(() => stopControl(server, path));
    } catch (err) {
      logger.warn({ path, err: (err as Error).message }, "cannot open the control socket; `wormhole status` will read WireGuard directly");
    }
  }
  logger.info(
    { registries: config.addresses, iface: config.iface ?? "(all)", refreshMs: config.refreshMs, tls: tlsMode(config.tls ?? null), relay: config.allowRelay ?? true, autoPeers: config.autoPeers ?? "off" },
    "node agent started",
  );
  return agent;
}

/**
 * `--auto-peers PREFIX` is for one interface (-i), one of whose addresses
 * lies inside PREFIX: the tunnel's prefix, where the registries' peers
 * have their tunnel addresses. Anything else is a start-up error naming the value.
 */
function autoPeersFor(config: NodeConfig, prefix: string, deps: NodeDeps): AutoPeers {
  if (!config.iface) {
    throw new Error(`--auto-peers ${prefix} needs -i/--iface: it adds peers to one WireGuard interface, the one whose tunnel addresses lie inside ${prefix}`);
  }
  const addresses = ((deps.interfaces ?? networkInterfaces)()[config.iface] ?? []).map((a) => a.address);
  if (!addresses.some((ip) => prefixContains(prefix, ip))) {
    throw new Error(
      `--auto-peers ${prefix} does not fit interface ${config.iface}: none of its addresses (${addresses.join(", ") || "none"}) lies inside ${prefix}; give the tunnel's prefix, such as the one of the interface's own address`,
    );
  }
  return new AutoPeers({
    wg: deps.wg,
    prefix,
    recordDir: dirname(config.controlSocket ?? DEFAULT_CONTROL_SOCKET),
    logger: deps.logger,
    keepaliveSec: config.keepaliveSec,
    ...(deps.interfaces ? { interfaces: deps.interfaces } : {}),
    graceMs: config.autoPeersGraceMs ?? NODE_DEFAULTS.autoPeersGraceMs,
  });
}

/** How the registry is trusted, for the log. */
function tlsMode(tls: ClientTls | null): string {
  if (tls === null) return "off";
  const ca = tls.ca === null ? (tls.pins.length > 0 ? "" : "system CAs") : "--tls-ca";
  return [ca, tls.pins.length > 0 ? `${tls.pins.length} pinned key(s)` : ""].filter((s) => s !== "").join(" + ");
}

/**
 * Says so when the token will cross the network in plaintext: no TLS, and
 * the registry's address is not inside the tunnel (it is until the node
 * finds the registry's tunnel address, and again whenever that does not
 * answer).
 */
function warnPlaintext(config: NodeConfig, address: string, registryIps: readonly string[], device: WgDevice, logger: Logger): void {
  if (!config.token || config.tls) return;
  const inTunnel = tunnelCheck(device);
  if (registryIps.some((ip) => ip === "127.0.0.1" || ip === "::1" || inTunnel({ ip, port: 1 }))) return;
  logger.warn(
    { registry: address },
    "the token crosses the network in plaintext to the address given, until the node reaches the registry through the tunnel: give the registry's tunnel address, or --tls / --tls-ca / --tls-pin",
  );
}

/**
 * The IP addresses of the registry's host as given: itself when it is one,
 * else what the name resolves to now (none when it does not: then the node
 * cannot tell which peer is the registry, and says so).
 */
async function hostAddresses(host: string | null, logger: Logger): Promise<string[]> {
  if (host === null) return [];
  if (isIP(host)) return [host];
  try {
    const found = await lookup(host, { all: true, verbatim: true });
    return found.map((a) => tryCanonicalIp(a.address) ?? a.address);
  } catch (err) {
    logger.warn({ registry: host, err: (err as Error).message }, "cannot resolve the registry's name: the node cannot tell which peer is the registry (no reports, no relay)");
    return [];
  }
}
