/**
 * Which peers this node relays, kept on disk so that a node that crashed
 * gives the addresses back when it starts again (the only change wormhole
 * makes to allowed IPs). One small JSON file per interface, written
 * atomically, removed when nothing is relayed.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { isKey } from "../wg/keys.js";
import type { RelayEntry } from "./relay.js";

const Entry = z.object({
  allowedIps: z.array(z.string()),
  sinceMs: z.number(),
  phase: z.enum(["quiet", "punching"]),
  atMs: z.number(),
  nextPunchMs: z.number(),
});
const File = z.object({ version: z.literal(1), peers: z.record(z.string(), Entry) });

export function relayStatePath(dir: string, iface: string): string {
  return join(dir, `relay-${iface}.json`);
}

/** The saved state, or an empty map when there is none. Throws, naming the file, when it is unreadable. */
export async function loadRelayState(dir: string, iface: string): Promise<Map<string, RelayEntry>> {
  const path = relayStatePath(dir, iface);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw new Error(`cannot read relay state \`${path}': ${(err as Error).message}`);
  }
  let parsed: z.infer<typeof File>;
  try {
    parsed = File.parse(JSON.parse(text));
  } catch (err) {
    throw new Error(`relay state \`${path}' is damaged: ${(err as Error).message.split("\n")[0]}`);
  }
  const out = new Map<string, RelayEntry>();
  for (const [key, entry] of Object.entries(parsed.peers)) if (isKey(key)) out.set(key, entry);
  return out;
}

export async function saveRelayState(dir: string, iface: string, state: ReadonlyMap<string, RelayEntry>): Promise<void> {
  const path = relayStatePath(dir, iface);
  if (state.size === 0) {
    await rm(path, { force: true });
    return;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ version: 1, peers: Object.fromEntries(state) }, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}
