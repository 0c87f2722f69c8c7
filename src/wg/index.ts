/**
 * The one module that talks with WireGuard. `createWireGuard()` picks a backend per interface:
 * the userspace control socket (wireguard-go, boringtun) when SOCKETDIR/NAME.sock exists, else the
 * kernel module through `wg`. Everything else in wormhole sees only the {@link WireGuard} interface.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "../util/runner.js";
import type { Runner } from "../util/runner.js";
import { quote } from "./quote.js";
import type { PeerUpdate, WgDevice, WireGuard } from "./types.js";
import { WgError } from "./types.js";
import { DEFAULT_MAX_REPLY_BYTES, DEFAULT_SOCKET_DIR, DEFAULT_TIMEOUT_MS, uapiGetDevice, uapiProbe, uapiSocketPath, uapiUpdatePeers } from "./uapi.js";
import type { UapiOptions } from "./uapi.js";
import { checkUpdates } from "./uapi-parse.js";
import { wgtoolGetDevice, wgtoolUpdatePeers } from "./wgtool.js";
import type { WgToolOptions } from "./wgtool.js";

export type { DeviceType, Endpoint, PeerUpdate, WgDevice, WgErrorCode, WgPeer, WireGuard } from "./types.js";
export { WgError } from "./types.js";
export { checkKey, isKey, keyFromHex, keyToHex, publicKeyFromPrivate } from "./keys.js";
export { canonicalCidr, canonicalIp, checkEndpoint, endpointsEqual, formatEndpoint, parseEndpoint, tryParseEndpoint } from "./endpoint.js";
export { FakeWireGuard } from "./fake.js";
export type { FakeDeviceInit, FakeMethod, FakePeerInit, FakeUpdateCall } from "./fake.js";

export interface CreateWireGuardOptions {
  /** Directory of userspace control sockets (NAME.sock). Default "/var/run/wireguard". */
  readonly socketDir?: string;
  /** Runs `wg` for kernel interfaces. Default: the real runner ({@link runCommand}). */
  readonly runner?: Runner;
  /** Where kernel interfaces are found (NAME/uevent with DEVTYPE=wireguard). Default "/sys/class/net". */
  readonly sysClassNet?: string;
  /** Limit for one control-socket exchange or one `wg` run, in milliseconds. Default 5000. */
  readonly timeoutMs?: number;
  /** Largest control-socket reply accepted, in bytes. Default 64 MiB. */
  readonly maxReplyBytes?: number;
}

/** Linux interface names: 1-15 bytes, no '/', whitespace, ':' or '%'; not "." or "..". */
const IFNAME = /^[^\s/:%]{1,15}$/;

type Backend = "userspace" | "kernel";

export function createWireGuard(options: CreateWireGuardOptions = {}): WireGuard {
  const socketDir = options.socketDir ?? DEFAULT_SOCKET_DIR;
  const sysClassNet = options.sysClassNet ?? "/sys/class/net";
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const uapi: UapiOptions = { socketDir, timeoutMs, maxReplyBytes: options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES };
  const tool: WgToolOptions = { runner: options.runner ?? runCommand, timeoutMs };

  async function listDevices(): Promise<string[]> {
    const [sockets, kernel] = await Promise.all([listSockets(), listKernel()]);
    return [...new Set([...sockets, ...kernel])].sort();
  }

  async function listSockets(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(socketDir);
    } catch {
      return []; // no directory (no userspace daemon ever ran) or unreadable
    }
    const names = entries.filter((e) => e.endsWith(".sock")).map((e) => e.slice(0, -5)).filter((n) => IFNAME.test(n) && n !== "." && n !== "..");
    const alive = await Promise.all(
      names.map(async (n) => {
        const path = uapiSocketPath(socketDir, n);
        try {
          if (!(await stat(path)).isSocket()) return false;
        } catch {
          return false;
        }
        return uapiProbe(path, Math.min(timeoutMs, 1000)); // a stale file (daemon gone) refuses: not listed
      }),
    );
    return names.filter((_, i) => alive[i]);
  }

  async function listKernel(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(sysClassNet);
    } catch {
      return [];
    }
    const flags = await Promise.all(entries.map(async (n) => (await kernelState(n)) === "wireguard"));
    return entries.filter((_, i) => flags[i]);
  }

  /** "wireguard": a kernel WireGuard interface; "absent": not one; "unknown": no sysfs to ask. */
  async function kernelState(name: string): Promise<"wireguard" | "absent" | "unknown"> {
    try {
      const uevent = await readFile(join(sysClassNet, name, "uevent"), "utf8");
      return /^DEVTYPE=wireguard$/m.test(uevent) ? "wireguard" : "absent";
    } catch {
      try {
        await stat(sysClassNet);
        return "absent";
      } catch {
        return "unknown";
      }
    }
  }

  async function notFound(name: string, cause?: unknown): Promise<WgError> {
    let existing: string[] = [];
    try {
      existing = await listDevices();
    } catch {
      /* the listing is a courtesy */
    }
    return new WgError("not-found", `WireGuard interface ${quote(name)} not found (existing: ${existing.join(", ") || "none"})`, { cause });
  }

  async function backendFor(name: string): Promise<Backend> {
    if (typeof name !== "string" || !IFNAME.test(name) || name === "." || name === "..") {
      throw new WgError("not-found", `${quote(String(name))} is not a valid interface name (1-15 characters, no '/', ':', '%' or spaces)`);
    }
    const path = uapiSocketPath(socketDir, name);
    let socketUnreadable: NodeJS.ErrnoException | null = null;
    try {
      if ((await stat(path)).isSocket()) return "userspace";
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ENOTDIR") {
        socketUnreadable = err as NodeJS.ErrnoException;
      }
    }
    const kernel = await kernelState(name);
    if (kernel === "wireguard") return "kernel";
    if (socketUnreadable !== null) {
      throw new WgError("permission", `no permission to look for WireGuard interface ${quote(name)}: run as root or give access to ${path}`, {
        cause: socketUnreadable,
      });
    }
    if (kernel === "unknown") return "kernel"; // no sysfs here: let `wg` say
    throw await notFound(name);
  }

  /** Runs `op`; a not-found from a backend (interface gone meanwhile, stale socket) gets the listing. */
  async function withListing<T>(name: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof WgError && err.code === "not-found") throw await notFound(name, err);
      throw err;
    }
  }

  return {
    listDevices,
    async getDevice(name: string): Promise<WgDevice> {
      const backend = await backendFor(name);
      return withListing(name, () => (backend === "userspace" ? uapiGetDevice(name, uapi) : wgtoolGetDevice(name, tool)));
    },
    async updatePeers(name: string, updates: readonly PeerUpdate[]): Promise<void> {
      checkUpdates(updates);
      const backend = await backendFor(name);
      return withListing(name, () => (backend === "userspace" ? uapiUpdatePeers(name, updates, uapi) : wgtoolUpdatePeers(name, updates, tool)));
    },
  };
}
