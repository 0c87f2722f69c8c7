/**
 * The relay's datagrams. They travel inside the nodes' WireGuard tunnels to
 * the registry's tunnel address, so the registry knows each sender by its
 * tunnel source address (WireGuard has authenticated it). What they carry is
 * the peers' own WireGuard packets, still encrypted end to end: the registry
 * passes them on and can read or forge none of them.
 *
 *   0      2    3     4
 *   +------+----+-----+----------------------------+------------------+
 *   | "wh" | v1 | type| key (32 bytes, types 3, 4) | payload          |
 *   +------+----+-----+----------------------------+------------------+
 *
 *   1 hello    node → registry, every second: "I am here, at this source
 *              port" (byte 4: flags, bit 0 = I accept relayed packets).
 *              Doubles as the probe that shows the registry's WireGuard a
 *              new NAT mapping of ours within a second.
 *   2 welcome  registry → node, the answer (byte 4: flags, bit 0 = I relay).
 *   3 to       node → registry: pass `payload` to the peer with this key.
 *   4 from     registry → node: `payload` comes from the peer with this key.
 *
 * Pure: encoding and decoding only, never throws on bad input (decode
 * returns null).
 */
import { isKey, KEY_BYTES } from "../wg/keys.js";

export { KEY_BYTES };

export const MAGIC0 = 0x77; // "w"
export const MAGIC1 = 0x68; // "h"
export const VERSION = 1;
export const HEADER_BYTES = 4;
/** Largest payload passed on: a WireGuard packet for an MTU of 65,535 fits; a UDP datagram cannot be larger. */
export const MAX_PAYLOAD = 65_507 - HEADER_BYTES - KEY_BYTES;

export type RelayMessage =
  | { readonly type: "hello"; readonly acceptsRelay: boolean }
  | { readonly type: "welcome"; readonly relays: boolean }
  | { readonly type: "to"; readonly key: string; readonly payload: Buffer }
  | { readonly type: "from"; readonly key: string; readonly payload: Buffer };

const TYPE_CODE = { hello: 1, welcome: 2, to: 3, from: 4 } as const;

/** A 32-byte key from its base64 text, or null when it is not one. */
export function keyBytes(key: string): Buffer | null {
  return isKey(key) ? Buffer.from(key, "base64") : null;
}

export function encode(message: RelayMessage): Buffer {
  const head = [MAGIC0, MAGIC1, VERSION, TYPE_CODE[message.type]];
  switch (message.type) {
    case "hello":
      return Buffer.from([...head, message.acceptsRelay ? 1 : 0]);
    case "welcome":
      return Buffer.from([...head, message.relays ? 1 : 0]);
    case "to":
    case "from": {
      const key = keyBytes(message.key);
      if (!key) throw new Error(`relay: \`${message.key.slice(0, 60)}' is not a WireGuard public key`);
      if (message.payload.length > MAX_PAYLOAD) throw new Error(`relay: a payload of ${message.payload.length} bytes is larger than ${MAX_PAYLOAD}`);
      return Buffer.concat([Buffer.from(head), key, message.payload]);
    }
  }
}

/** The message in `bytes`, or null when it is not a relay datagram of this version. */
export function decode(bytes: Buffer): RelayMessage | null {
  if (bytes.length < HEADER_BYTES || bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1 || bytes[2] !== VERSION) return null;
  const type = bytes[3];
  if (type === TYPE_CODE.hello || type === TYPE_CODE.welcome) {
    if (bytes.length !== HEADER_BYTES + 1) return null;
    const flag = ((bytes[4] as number) & 1) === 1;
    return type === TYPE_CODE.hello ? { type: "hello", acceptsRelay: flag } : { type: "welcome", relays: flag };
  }
  if (type === TYPE_CODE.to || type === TYPE_CODE.from) {
    if (bytes.length < HEADER_BYTES + KEY_BYTES) return null;
    const key = bytes.subarray(HEADER_BYTES, HEADER_BYTES + KEY_BYTES).toString("base64");
    const payload = bytes.subarray(HEADER_BYTES + KEY_BYTES);
    return type === TYPE_CODE.to ? { type: "to", key, payload } : { type: "from", key, payload };
  }
  return null;
}

/** Rewrites a "to" datagram into the "from" datagram its destination gets, in place (same size). */
export function toFrom(datagram: Buffer, senderKey: Buffer): Buffer {
  datagram[3] = TYPE_CODE.from;
  senderKey.copy(datagram, HEADER_BYTES);
  return datagram;
}
