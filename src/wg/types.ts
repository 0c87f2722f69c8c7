/**
 * The WireGuard data model used everywhere in wormhole.
 *
 * Only this module (src/wg/) talks to WireGuard. Everything else sees these
 * types and the {@link WireGuard} interface. There is deliberately no field for
 * the interface's private key: parsers read it only to derive the public key
 * and then drop it.
 */

/** A UDP endpoint. `ip` is the canonical text form (IPv4 dotted, IPv6 compressed, no brackets). */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

export interface WgPeer {
  /** Base64 public key (44 characters). */
  readonly publicKey: string;
  /** Where WireGuard currently sends to this peer, or null when it has none. */
  readonly endpoint: Endpoint | null;
  /** Last completed handshake as Unix epoch milliseconds; 0 when never. */
  readonly lastHandshakeMs: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  /** CIDR strings, canonical form, e.g. "10.0.0.2/32", "fd00::2/128". */
  readonly allowedIps: readonly string[];
  /** Persistent keepalive interval in seconds; 0 when off. */
  readonly persistentKeepaliveSec: number;
  /** Whether the peer has a preshared key. The key itself is never read. */
  readonly hasPresharedKey: boolean;
}

export type DeviceType = "userspace" | "kernel";

export interface WgDevice {
  readonly name: string;
  readonly type: DeviceType;
  /** Base64 public key of the interface, derived from its private key. "" when the interface has no key. */
  readonly publicKey: string;
  readonly listenPort: number;
  readonly peers: readonly WgPeer[];
}

/**
 * An intent to change one existing peer. Only what is set is changed; a peer
 * that no longer exists is never created (update-only semantics), unless the
 * intent is `add`. `remove` removes the peer.
 */
export interface PeerUpdate {
  readonly publicKey: string;
  readonly endpoint?: Endpoint;
  readonly persistentKeepaliveSec?: number;
  /**
   * Remove the peer and add it again at once, with these allowed IPs and the
   * endpoint and keepalive above, so that WireGuard sends a handshake
   * initiation now instead of on its next 5 s retry tick (a new peer on an
   * up interface initiates immediately; see docs/lab.md). Drops any
   * session and resets counters: only for a peer with no working session and
   * no preshared key (which could not be restored: it is never read).
   */
  readonly recreate?: { readonly allowedIps: readonly string[] };
  /**
   * Replace the peer's allowed IPs with exactly these (WireGuard moves a
   * prefix that another peer of the interface had). Nothing in the node uses
   * it since the relay became end to end (src/node/relay.ts changes
   * endpoints only); the backends and the fake still support it.
   */
  readonly allowedIps?: readonly string[];
  /**
   * Create the peer when the interface does not have it, with exactly these
   * allowed IPs and the endpoint and keepalive above (WireGuard's own
   * `set` without `update_only`). A peer the interface has already is left
   * exactly as it is: an add never changes a peer someone else configured.
   * Not with `recreate`, `allowedIps` or `remove`.
   */
  readonly add?: { readonly allowedIps: readonly string[] };
  /**
   * Remove the peer (WireGuard's `remove=true`); a peer that is gone already
   * is skipped. Nothing else may be set with it.
   */
  readonly remove?: true;
}

/** Everything wormhole ever asks of WireGuard. */
export interface WireGuard {
  /** Names of the WireGuard interfaces on this machine (in this network/mount namespace). */
  listDevices(): Promise<string[]>;
  /** Live state of one interface. Throws WgError(code "not-found") when it does not exist. */
  getDevice(name: string): Promise<WgDevice>;
  /**
   * Applies updates to existing peers of one interface. Adds a peer only for
   * an update with `add` (and never changes one that exists), removes one
   * only for an update with `remove`.
   */
  updatePeers(name: string, updates: readonly PeerUpdate[]): Promise<void>;
}

export type WgErrorCode =
  | "not-found" // interface does not exist
  | "permission" // not root / cannot open the control socket
  | "tool-missing" // `wg` needed for a kernel interface but not installed
  | "protocol" // the daemon or tool answered something we could not parse
  | "failed"; // the daemon or tool refused the request

export class WgError extends Error {
  constructor(
    readonly code: WgErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "WgError";
  }
}
