/**
 * A node's end of the relay, for one WireGuard interface.
 *
 * One uplink socket per registry talks to that registry's relay
 * (src/registry/relay.ts) through the tunnel: a hello every second (which
 * also keeps the registry's WireGuard seeing our current NAT mapping, and
 * tells us the registry is alive), and relayed packets both ways. A packet
 * goes up through the first registry (in the order given) that answers,
 * relays, and knows the peer; packets from any registry's uplink are handed
 * to WireGuard alike. When a registry stops answering, the next packet takes
 * another: the two ends need not use the same registry.
 *
 * Each relayed peer gets a local socket on 127.0.0.1 and the peer's
 * WireGuard endpoint is set to it. Whatever WireGuard sends there (the peer's
 * packets, encrypted by WireGuard) goes up to the registry addressed to the
 * peer's key; whatever the registry hands down from that key is given to
 * WireGuard from that socket. WireGuard authenticates every packet itself, so
 * a packet the registry (or anyone) altered or made up is dropped there, and
 * WireGuard's roaming follows a peer that starts reaching us through the relay
 * (or directly again) by itself.
 *
 * Nothing is written to disk and nothing but endpoints changes: a node killed
 * while relaying leaves peers pointing at a closed local port, which the next
 * agent sees as "no working session" and punches afresh.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { decode, encode, MAX_PAYLOAD } from "../relay/wire.js";
import type { Endpoint } from "../wg/types.js";
import type { RouteCheck } from "./prober.js";

/** The registry's welcome counts this long: three missed hellos and relaying stops being offered. */
export const WELCOME_TTL_MS = 3_500;
/** A peer's local socket unused this long is closed. */
export const LOCAL_IDLE_MS = 120_000;

export const LOCAL_HOST = "127.0.0.1";

export interface RelayLinkOptions {
  readonly iface: string;
  /** Offer to be relayed (false: `--no-relay`; hellos still go out as probes). */
  readonly acceptsRelay: boolean;
  /** WireGuard's listen port on this interface, where relayed packets are handed in. */
  readonly wgPort: () => number;
  /** Whether a key is a peer of this interface (packets from anyone else are dropped). */
  readonly isPeer: (key: string) => boolean;
  /** Whether the named registry knows the peer (it sees an endpoint for it): relayed packets for the peer prefer it. */
  readonly knows?: (registry: string, key: string) => boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Checks that the registry's address is routed into the interface before anything is sent. */
  readonly routed: RouteCheck;
  /** Source address for the uplinks (tests); default any. */
  readonly bindAddress?: string;
  /** Called when relaying becomes available (the first welcome, or one after a gap). */
  readonly onAvailable?: () => void;
  /** Called on every welcome, with the registry's name (it is alive). */
  readonly onWelcome?: (registry: string) => void;
}

interface Local {
  readonly socket: Socket;
  readonly port: Promise<number>;
  /** The socket is bound (packets for WireGuard may go out at once). */
  bound: boolean;
  /** The 36 bytes that go before each of its packets to the registry ("to" this peer). */
  readonly header: Buffer;
  lastMs: number;
}

/** The link to one registry's relay. */
interface Uplink {
  /** The registry's name (its address as given). */
  readonly name: string;
  /** Its tunnel address and relay port (the gRPC port). */
  readonly ip: string;
  readonly port: number;
  readonly socket: Socket;
  welcomeMs: number;
  relays: boolean;
  routeOk: boolean;
}

export interface RelayLinkStats {
  up: number;
  down: number;
  dropped: number;
}

export class RelayLink {
  private readonly uplinks: Uplink[] = [];
  private readonly locals = new Map<string, Local>();
  /** Local port → peer key, for ports already bound. */
  private readonly byPort = new Map<number, string>();
  private closed = false;
  readonly stats: RelayLinkStats = { up: 0, down: 0, dropped: 0 };

  constructor(private readonly options: RelayLinkOptions) {}

  /** Adds the registry `name` at tunnel address `ip` (relay port `port`); a name already added is left as it is. */
  addRegistry(name: string, ip: string, port: number): void {
    if (this.closed || this.uplinks.some((u) => u.name === name)) return;
    const socket = createSocket(isIPv6(ip) ? "udp6" : "udp4");
    const uplink: Uplink = { name, ip, port, socket, welcomeMs: -Infinity, relays: false, routeOk: false };
    socket.on("error", (err) => this.options.logger.debug({ iface: this.options.iface, registry: name, err: err.message }, "relay uplink error"));
    socket.on("message", (bytes: Buffer, rinfo: RemoteInfo) => this.fromRegistry(uplink, bytes, rinfo));
    socket.bind(this.options.bindAddress ? { address: this.options.bindAddress, port: 0 } : { port: 0 });
    socket.unref();
    this.uplinks.push(uplink);
    this.helloTo(uplink);
  }

  /** Some registry answered a hello lately and relays. */
  available(): boolean {
    return this.uplinks.some((u) => this.relaysNow(u));
  }

  /** The named registry answered a hello lately (whether or not it relays). */
  answering(registry: string): boolean {
    const u = this.uplinks.find((x) => x.name === registry);
    return u !== undefined && this.options.clock.now() - u.welcomeMs < WELCOME_TTL_MS;
  }

  /** The named registry answers and relays for us. */
  relaysVia(registry: string): boolean {
    const u = this.uplinks.find((x) => x.name === registry);
    return u !== undefined && this.relaysNow(u);
  }

  /** Checks the routes and sends one hello to every registry (the agent calls this every probe interval). */
  hello(): void {
    for (const u of this.uplinks) this.helloTo(u);
  }

  /** The local endpoint that relays `key` (its socket opened when needed). */
  async endpointFor(key: string): Promise<Endpoint> {
    const local = this.local(key);
    local.lastMs = this.options.clock.now();
    return { ip: LOCAL_HOST, port: await local.port };
  }

  /** The peer this endpoint relays, when it is one of this link's local sockets. */
  relayedKeyOf(ep: Endpoint | null): string | null {
    if (!ep || ep.ip !== LOCAL_HOST) return null;
    return this.byPort.get(ep.port) ?? null;
  }

  /** Closes local sockets unused for LOCAL_IDLE_MS whose peer is not in `keep`. */
  prune(keep: ReadonlySet<string>): void {
    const now = this.options.clock.now();
    for (const [key, local] of this.locals) {
      if (keep.has(key) || now - local.lastMs < LOCAL_IDLE_MS) continue;
      this.closeLocal(key, local);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [key, local] of this.locals) this.closeLocal(key, local);
    for (const u of this.uplinks) u.socket.close();
  }

  private relaysNow(u: Uplink): boolean {
    return u.relays && this.options.acceptsRelay && this.options.clock.now() - u.welcomeMs < WELCOME_TTL_MS;
  }

  private helloTo(u: Uplink): void {
    void this.options.routed(u.ip, this.options.iface).then((ok) => {
      u.routeOk = ok;
      this.send(u, encode({ type: "hello", acceptsRelay: this.options.acceptsRelay }));
    });
  }

  /** Where a packet for `key` goes up: the first relaying registry that knows the peer, else the first relaying one. */
  private uplinkFor(key: string): Uplink | null {
    let fallback: Uplink | null = null;
    for (const u of this.uplinks) {
      if (!this.relaysNow(u)) continue;
      if (this.options.knows?.(u.name, key) ?? true) return u;
      fallback ??= u;
    }
    return fallback ?? this.uplinks[0] ?? null;
  }

  private local(key: string): Local {
    const existing = this.locals.get(key);
    if (existing) return existing;
    const socket = createSocket("udp4");
    socket.on("error", (err) => this.options.logger.debug({ iface: this.options.iface, err: err.message }, "relay local socket error"));
    const port = new Promise<number>((resolve) => {
      socket.bind({ address: LOCAL_HOST, port: 0 }, () => {
        const p = socket.address().port;
        this.byPort.set(p, key);
        local.bound = true;
        resolve(p);
      });
    });
    socket.on("message", (payload: Buffer, rinfo: RemoteInfo) => {
      // Only WireGuard on this machine sends here.
      if (rinfo.address !== LOCAL_HOST || payload.length > MAX_PAYLOAD) return;
      local.lastMs = this.options.clock.now();
      const up = this.uplinkFor(key);
      if (!up) return;
      this.stats.up += 1;
      this.send(up, Buffer.concat([local.header, payload]));
    });
    socket.unref();
    const local: Local = { socket, port, bound: false, header: encode({ type: "to", key, payload: Buffer.alloc(0) }), lastMs: this.options.clock.now() };
    this.locals.set(key, local);
    return local;
  }

  private closeLocal(key: string, local: Local): void {
    this.locals.delete(key);
    void local.port.then((p) => {
      if (this.byPort.get(p) === key) this.byPort.delete(p);
    });
    try {
      local.socket.close();
    } catch {
      /* already closed */
    }
  }

  private fromRegistry(u: Uplink, bytes: Buffer, rinfo: RemoteInfo): void {
    if (rinfo.address !== u.ip || rinfo.port !== u.port) {
      this.stats.dropped += 1;
      return;
    }
    const message = decode(bytes);
    if (message?.type === "welcome") {
      if (!u.relays && message.relays && this.options.acceptsRelay) {
        this.options.logger.info({ iface: this.options.iface, registry: u.name, relay: `${u.ip}:${u.port}` }, "the registry relays for this node (end to end encrypted)");
      }
      const wasAvailable = this.available();
      u.welcomeMs = this.options.clock.now();
      u.relays = message.relays;
      if (!wasAvailable && this.available()) this.options.onAvailable?.();
      this.options.onWelcome?.(u.name);
      return;
    }
    if (message?.type !== "from" || !this.options.acceptsRelay || !this.options.isPeer(message.key)) {
      this.stats.dropped += 1;
      return;
    }
    const local = this.local(message.key);
    local.lastMs = this.options.clock.now();
    this.stats.down += 1;
    // The datagram's buffer is this packet's alone: its payload goes to WireGuard as it is.
    const send = () => {
      if (!this.closed) local.socket.send(message.payload, this.options.wgPort(), LOCAL_HOST, () => {});
    };
    if (local.bound) send();
    else void local.port.then(send);
  }

  /** Sends when the last route check (one per hello) found the registry inside the tunnel. */
  private send(u: Uplink, datagram: Buffer): void {
    if (this.closed || !u.routeOk) return;
    u.socket.send(datagram, u.port, u.ip, () => {});
  }
}
