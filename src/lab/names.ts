/**
 * Names of everything the lab creates, and the patterns the sweep trusts.
 *
 * Every name carries the run id, a 4-hex-digit random string, so two runs never
 * collide and a crashed run's leftovers can be found by prefix:
 *
 *   namespaces          whl-<id>-<role>            e.g. whl-3f9a-n-home1
 *   WireGuard interface whl-<id>-<host>            e.g. whl-3f9a-home1  (≤ 15 chars)
 *   control socket      /var/run/wireguard/whl-<id>-<host>.sock
 *   temp dir            $TMPDIR/whl-<id>-XXXXXX    (logs, token, owner.pid)
 */
import { randomBytes } from "node:crypto";

export const LAB_PREFIX = "whl";
/** Where wireguard-go puts its control sockets (shared by all namespaces). */
export const WG_SOCKET_DIR = "/var/run/wireguard";

const RUN_ID = /^[0-9a-f]{4}$/;
/** Matches every lab name of any run; group 1 is the run id. */
export const LAB_NAME = /^whl-([0-9a-f]{4})-[a-z0-9-]+$/;
/** Linux interface names are at most 15 bytes (IFNAMSIZ - 1). */
export const IFNAME_MAX = 15;
/** Host (node) names are short so `whl-<id>-<host>` fits in an interface name. */
export const HOST_NAME = /^[a-z][a-z0-9]{0,5}$/;

export function newRunId(): string {
  return randomBytes(2).toString("hex");
}

export function checkRunId(id: string): string {
  if (!RUN_ID.test(id)) throw new Error(`lab run id must be 4 lowercase hex digits, got \`${id}'`);
  return id;
}

export function checkHostName(name: string): string {
  if (!HOST_NAME.test(name)) {
    throw new Error(`lab host name must match ${HOST_NAME.source} (so the interface name fits in ${IFNAME_MAX} chars), got \`${name}'`);
  }
  return name;
}

/** The prefix shared by every name of one run: `whl-<id>-`. */
export function runPrefix(runId: string): string {
  return `${LAB_PREFIX}-${checkRunId(runId)}-`;
}

export function namespaceName(runId: string, role: string): string {
  return `${runPrefix(runId)}${role}`;
}

export function wgInterfaceName(runId: string, host: string): string {
  const name = `${runPrefix(runId)}${checkHostName(host)}`;
  if (name.length > IFNAME_MAX) throw new Error(`interface name \`${name}' is longer than ${IFNAME_MAX} characters`);
  return name;
}

export function wgSocketPath(iface: string): string {
  return `${WG_SOCKET_DIR}/${iface}.sock`;
}

/** The run id of a lab-made name (namespace, interface, socket file without `.sock`), or null. */
export function runIdOf(name: string): string | null {
  return LAB_NAME.exec(name)?.[1] ?? null;
}
