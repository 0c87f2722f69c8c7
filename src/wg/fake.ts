/**
 * An in-memory WireGuard for tests of other modules. Behaves like the real backends where it
 * matters: update-only semantics (unknown peers are skipped, never created, unless added with
 * `add`, which never changes a peer that exists; `remove` removes), not-found errors that
 * list the existing interfaces, invalid updates rejected with a TypeError, copies out (a returned
 * device never changes under the caller).
 */
import { canonicalCidr, checkEndpoint } from "./endpoint.js";
import { checkKey } from "./keys.js";
import { quote } from "./quote.js";
import type { Endpoint, PeerUpdate, WgDevice, WgPeer, WireGuard, WgErrorCode } from "./types.js";
import { WgError } from "./types.js";
import { checkUpdates } from "./uapi-parse.js";

/** One recorded call of {@link FakeWireGuard.updatePeers}. */
export interface FakeUpdateCall {
  readonly device: string;
  readonly updates: readonly PeerUpdate[];
  /** Whether the call failed (by {@link FakeWireGuard.failNext}, an unknown device, or an invalid update). */
  readonly failed: boolean;
}

export type FakeMethod = "listDevices" | "getDevice" | "updatePeers";

/** A peer for {@link FakeWireGuard.addPeer}: only the public key is required. */
export type FakePeerInit = Partial<WgPeer> & { readonly publicKey: string };

/** A device for the constructor: only the name is required (type "userspace", no peers by default). */
export type FakeDeviceInit = Partial<Omit<WgDevice, "peers">> & { readonly name: string; readonly peers?: readonly FakePeerInit[] };

interface PendingFailure {
  readonly method: FakeMethod | undefined;
  readonly error: Error;
}

export class FakeWireGuard implements WireGuard {
  private readonly devices = new Map<string, { device: Omit<WgDevice, "peers">; peers: WgPeer[] }>();
  private readonly failures: PendingFailure[] = [];
  /** Every updatePeers call in order, including failed ones. */
  readonly calls: FakeUpdateCall[] = [];

  constructor(devices: readonly FakeDeviceInit[] = []) {
    for (const d of devices) this.addDevice(d);
  }

  // ---- the WireGuard interface ----

  async listDevices(): Promise<string[]> {
    this.maybeFail("listDevices");
    return [...this.devices.keys()].sort();
  }

  async getDevice(name: string): Promise<WgDevice> {
    this.maybeFail("getDevice");
    const d = this.find(name);
    return { ...d.device, peers: d.peers.map(copyPeer) };
  }

  async updatePeers(name: string, updates: readonly PeerUpdate[]): Promise<void> {
    const record = (failed: boolean): void => {
      this.calls.push({
        device: name,
        updates: updates.map((u) => ({
          ...u,
          ...(u.endpoint ? { endpoint: { ...u.endpoint } } : {}),
          ...(u.recreate ? { recreate: { allowedIps: [...u.recreate.allowedIps] } } : {}),
          ...(u.allowedIps ? { allowedIps: [...u.allowedIps] } : {}),
          ...(u.add ? { add: { allowedIps: [...u.add.allowedIps] } } : {}),
        })),
        failed,
      });
    };
    try {
      this.maybeFail("updatePeers");
      const d = this.find(name);
      checkUpdates(updates);
      for (const u of updates) {
        const i = d.peers.findIndex((p) => p.publicKey === u.publicKey);
        const peer = d.peers[i];
        if (u.remove === true) {
          if (peer !== undefined) d.peers.splice(i, 1);
          continue;
        }
        if (u.add !== undefined) {
          // Created with exactly these allowed IPs (taken from any other peer, as WireGuard does); one that exists is left alone.
          if (peer !== undefined) continue;
          const taken = new Set(u.add.allowedIps.map((c) => canonicalCidr(c)));
          for (const [j, other] of d.peers.entries()) d.peers[j] = { ...other, allowedIps: other.allowedIps.filter((c) => !taken.has(c)) };
          d.peers.push(
            makePeer({
              publicKey: u.publicKey,
              allowedIps: [...taken],
              endpoint: u.endpoint === undefined ? null : checkEndpoint(u.endpoint),
              persistentKeepaliveSec: u.persistentKeepaliveSec ?? 0,
            }),
          );
          continue;
        }
        if (peer === undefined) continue; // update-only: a peer that is gone is not created
        // A recreated peer starts afresh: no session, counters at zero.
        const base: WgPeer = u.recreate
          ? { ...peer, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, endpoint: null, persistentKeepaliveSec: 0, allowedIps: [...u.recreate.allowedIps] }
          : peer;
        if (u.allowedIps !== undefined) {
          // WireGuard moves a prefix another peer had to this one.
          const moved = new Set(u.allowedIps);
          for (const [j, other] of d.peers.entries()) {
            if (j !== i) d.peers[j] = { ...other, allowedIps: other.allowedIps.filter((c) => !moved.has(c)) };
          }
        }
        d.peers[i] = {
          ...base,
          ...(u.allowedIps !== undefined ? { allowedIps: [...u.allowedIps] } : {}),
          ...(u.endpoint !== undefined ? { endpoint: checkEndpoint(u.endpoint) } : {}),
          ...(u.persistentKeepaliveSec !== undefined ? { persistentKeepaliveSec: u.persistentKeepaliveSec } : {}),
        };
      }
    } catch (err) {
      record(true);
      throw err;
    }
    record(false);
  }

  // ---- test controls ----

  /**
   * Makes the next call fail (of `method`, or of any method when omitted) with `error`:
   * a WgErrorCode (a WgError with a stock message is made), or any Error. Failures queue up.
   */
  failNext(error: WgErrorCode | Error = "failed", method?: FakeMethod): void {
    const e = typeof error === "string" ? new WgError(error, `fake WireGuard: injected ${error} failure`) : error;
    this.failures.push({ method, error: e });
  }

  addDevice(init: FakeDeviceInit): void {
    const { peers = [], ...rest } = init;
    this.devices.set(init.name, {
      device: { type: "userspace", publicKey: "", listenPort: 0, ...rest },
      peers: peers.map(makePeer),
    });
  }

  removeDevice(name: string): void {
    this.devices.delete(name);
  }

  addPeer(device: string, init: FakePeerInit): void {
    const d = this.find(device);
    if (d.peers.some((p) => p.publicKey === init.publicKey)) throw new Error(`fake WireGuard: peer ${quote(init.publicKey)} already on ${quote(device)}`);
    d.peers.push(makePeer(init));
  }

  removePeer(device: string, publicKey: string): void {
    const d = this.find(device);
    d.peers = d.peers.filter((p) => p.publicKey !== publicKey);
  }

  /** Sets where WireGuard sends to a peer, as roaming or another program would. */
  setPeerEndpoint(device: string, publicKey: string, endpoint: Endpoint | null): void {
    this.patchPeer(device, publicKey, { endpoint: endpoint === null ? null : checkEndpoint(endpoint) });
  }

  /** Sets the last handshake time (epoch ms; 0 = never). */
  setHandshake(device: string, publicKey: string, lastHandshakeMs: number): void {
    this.patchPeer(device, publicKey, { lastHandshakeMs });
  }

  /** A peer as it stands now, or undefined. */
  peer(device: string, publicKey: string): WgPeer | undefined {
    const p = this.devices.get(device)?.peers.find((x) => x.publicKey === publicKey);
    return p && copyPeer(p);
  }

  private patchPeer(device: string, publicKey: string, patch: Partial<WgPeer>): void {
    const d = this.find(device);
    const i = d.peers.findIndex((p) => p.publicKey === publicKey);
    const peer = d.peers[i];
    if (peer === undefined) throw new Error(`fake WireGuard: no peer ${quote(publicKey)} on ${quote(device)}`);
    d.peers[i] = { ...peer, ...patch };
  }

  private find(name: string): { device: Omit<WgDevice, "peers">; peers: WgPeer[] } {
    const d = this.devices.get(name);
    if (d === undefined) {
      const existing = [...this.devices.keys()].sort().join(", ") || "none";
      throw new WgError("not-found", `WireGuard interface ${quote(name)} not found (existing: ${existing})`);
    }
    return d;
  }

  private maybeFail(method: FakeMethod): void {
    const i = this.failures.findIndex((f) => f.method === undefined || f.method === method);
    const f = this.failures[i];
    if (f === undefined) return;
    this.failures.splice(i, 1);
    throw f.error;
  }
}

function makePeer(init: FakePeerInit): WgPeer {
  checkKey(init.publicKey, "fake peer public key");
  return copyPeer({
    endpoint: null,
    lastHandshakeMs: 0,
    rxBytes: 0,
    txBytes: 0,
    allowedIps: [],
    persistentKeepaliveSec: 0,
    hasPresharedKey: false,
    ...init,
  });
}

function copyPeer(p: WgPeer): WgPeer {
  return { ...p, endpoint: p.endpoint && { ...p.endpoint }, allowedIps: [...p.allowedIps] };
}
