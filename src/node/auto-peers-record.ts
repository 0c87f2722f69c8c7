/**
 * The record of the peers `--auto-peers` added to one interface: a small JSON
 * file, `auto-peers-IFACE.json`, by default next to the node's control socket
 * (/run/wormhole: cleared at reboot, exactly when a kernel interface and its
 * peers are gone too). Written atomically (a temporary file, mode 0600, then
 * renamed over the old one), so a crash leaves the old record or the new one.
 *
 * What it protects: a peer not in the record is the user's and is never
 * removed. A missing file is an empty record; a corrupt one is logged and
 * treated as empty too, so it can only make the node remove less, never a
 * peer of the user's.
 */
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../util/log.js";
import { singleHost } from "../util/prefix.js";
import { isKey } from "../wg/keys.js";
import { EMPTY_RECORD, MAX_AUTO_PEERS, MAX_REMOVED, type AddedPeer, type AutoPeersRecord, type RemovedPeer } from "./auto-peers.js";

/** Larger than this is not a record this node wrote. */
const MAX_RECORD_BYTES = 1024 * 1024;
const VERSION = 1;

export function recordPath(dir: string, iface: string): string {
  return join(dir, `auto-peers-${iface}.json`);
}

interface RecordFile {
  version: number;
  iface: string;
  added: { publicKey: string; allowedIp: string; addedAtMs: number; absentSinceMs: number | null }[];
  removed: { publicKey: string; atMs: number; count: number }[];
}

export function recordToJson(iface: string, record: AutoPeersRecord): string {
  const file: RecordFile = {
    version: VERSION,
    iface,
    added: [...record.added].map(([publicKey, a]) => ({ publicKey, allowedIp: a.allowedIp, addedAtMs: a.addedAtMs, absentSinceMs: a.absentSinceMs })),
    removed: [...record.removed].map(([publicKey, r]) => ({ publicKey, atMs: r.atMs, count: r.count })),
  };
  return `${JSON.stringify(file, null, 1)}\n`;
}

const isTime = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Parses a record; throws an Error saying what is wrong (never quoting the file). */
export function recordFromJson(iface: string, text: string): AutoPeersRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error("not JSON");
  }
  const f = data as Partial<RecordFile> | null;
  if (typeof f !== "object" || f === null || f.version !== VERSION) throw new Error(`not a version ${VERSION} record`);
  if (f.iface !== iface) throw new Error("written for another interface");
  if (!Array.isArray(f.added) || !Array.isArray(f.removed)) throw new Error("no lists of added and removed peers");
  if (f.added.length > MAX_AUTO_PEERS || f.removed.length > MAX_REMOVED) throw new Error("more entries than this node ever writes");
  const added = new Map<string, AddedPeer>();
  for (const [i, e] of f.added.entries()) {
    const ok =
      typeof e === "object" && e !== null && isKey(e.publicKey) && typeof e.allowedIp === "string" && isTime(e.addedAtMs) && (e.absentSinceMs === null || isTime(e.absentSinceMs));
    // Exactly what the node writes: one host (/32 or /128), in canonical form.
    const host = ok ? singleHost(e.allowedIp) : null;
    const cidr = host === null ? "" : `${host}/${host.includes(":") ? 128 : 32}`;
    if (!ok || cidr !== e.allowedIp) throw new Error(`added peer ${i + 1} is malformed`);
    added.set(e.publicKey, { allowedIp: cidr, addedAtMs: e.addedAtMs, absentSinceMs: e.absentSinceMs });
  }
  const removed = new Map<string, RemovedPeer>();
  for (const [i, e] of f.removed.entries()) {
    if (typeof e !== "object" || e === null || !isKey(e.publicKey) || !isTime(e.atMs) || !Number.isSafeInteger(e.count) || e.count < 1) {
      throw new Error(`removed peer ${i + 1} is malformed`);
    }
    removed.set(e.publicKey, { atMs: e.atMs, count: e.count });
  }
  return { added, removed };
}

/** Reads the record of `iface` in `dir`: empty when there is none; a corrupt one is logged and treated as empty. */
export async function loadRecord(dir: string, iface: string, logger: Logger): Promise<AutoPeersRecord> {
  const path = recordPath(dir, iface);
  let text: string;
  try {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      if (size > MAX_RECORD_BYTES) throw Object.assign(new Error(`larger than ${MAX_RECORD_BYTES} bytes`), { code: "ETOOBIG" });
      text = await readFile(handle, "utf8");
    } finally {
      await handle.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return EMPTY_RECORD;
    logger.warn({ iface, path, err: (err as Error).message }, "cannot read the record of auto peers: starting from none (no peer added before is removed)");
    return EMPTY_RECORD;
  }
  try {
    return recordFromJson(iface, text);
  } catch (err) {
    logger.warn({ iface, path, err: (err as Error).message }, "the record of auto peers is corrupt: starting from none (no peer added before is removed)");
    return EMPTY_RECORD;
  }
}

/** Writes the record atomically: a temporary file (mode 0600) renamed over the old one. */
export async function saveRecord(dir: string, iface: string, record: AutoPeersRecord): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = recordPath(dir, iface);
  const tmp = `${path}.${process.pid}.tmp`;
  await rm(tmp, { force: true }); // one left by a crash may have another mode
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(recordToJson(iface, record));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
