/**
 * The STUN messages wormhole speaks (RFC 8489 Binding, with RFC 5780's
 * CHANGE-REQUEST, OTHER-ADDRESS and RESPONSE-ORIGIN for the NAT tests), as
 * pure functions over bytes. Nothing else of STUN is understood: parsing a
 * message gives its class, method, transaction id and raw attributes, and
 * the helpers below read the few attributes used.
 *
 * Wire format (RFC 8489 §5): a 20-byte header (2 zero bits, 14-bit type,
 * 16-bit body length, magic cookie 0x2112A442, 96-bit transaction id), then
 * attributes (16-bit type, 16-bit length, value padded to 4 bytes).
 */
import { tryCanonicalIp } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_SIZE = 20;
export const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;

export const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  CHANGE_REQUEST: 0x0003,
  XOR_MAPPED_ADDRESS: 0x0020,
  PADDING: 0x0026,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  RESPONSE_ORIGIN: 0x802b,
  OTHER_ADDRESS: 0x802c,
  /**
   * wormhole's own, in the comprehension-optional range (ordinary clients
   * skip it): where this registry answers STUN in the other address family,
   * so `wormhole netcheck` can test IPv6 against a registry dialled over IPv4
   * (and the other way round). Encoded as an XOR-MAPPED-ADDRESS.
   */
  OTHER_FAMILY: 0xc0fe,
} as const;

/** Comprehension-required attributes (type < 0x8000) a Binding request may carry and still be answered. */
const UNDERSTOOD_REQUIRED = new Set<number>([ATTR.CHANGE_REQUEST, ATTR.PADDING]);

export interface StunAttribute {
  readonly type: number;
  readonly value: Uint8Array;
}

export interface StunMessage {
  /** The 14-bit message type: 0x0001 Binding request, 0x0101 Binding success, ... */
  readonly type: number;
  /** 12 bytes. */
  readonly transactionId: Uint8Array;
  readonly attributes: readonly StunAttribute[];
}

export interface ChangeRequest {
  readonly changeIp: boolean;
  readonly changePort: boolean;
}

/**
 * Parses one STUN message; a string saying what is wrong when `buf` is not
 * one (never throws). A FINGERPRINT, when present, must be the last
 * attribute and match.
 */
export function parseStun(buf: Uint8Array): StunMessage | string {
  if (buf.length < HEADER_SIZE) return `${buf.length} bytes: shorter than a STUN header`;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const type = view.getUint16(0);
  if (type & 0xc000) return "the first two bits are not zero: not STUN";
  const length = view.getUint16(2);
  if (view.getUint32(4) !== MAGIC_COOKIE) return "no magic cookie (an RFC 3489 message, or not STUN)";
  if (length % 4 !== 0) return `body length ${length} is not a multiple of 4`;
  if (HEADER_SIZE + length !== buf.length) return `body length ${length} does not match the ${buf.length - HEADER_SIZE} bytes after the header`;
  const attributes: StunAttribute[] = [];
  let at = HEADER_SIZE;
  while (at < buf.length) {
    if (buf.length - at < 4) return `attribute header at byte ${at} is cut short`;
    const attrType = view.getUint16(at);
    const attrLen = view.getUint16(at + 2);
    const end = at + 4 + attrLen;
    if (end > buf.length) return `attribute 0x${attrType.toString(16)} at byte ${at} runs past the end`;
    attributes.push({ type: attrType, value: buf.subarray(at + 4, end) });
    if (attrType === ATTR.FINGERPRINT) {
      if (attrLen !== 4) return "FINGERPRINT is not 4 bytes";
      if (end + ((4 - (attrLen % 4)) % 4) !== buf.length) return "FINGERPRINT is not the last attribute";
      if (view.getUint32(at + 4) !== fingerprintOf(buf.subarray(0, at), buf.length)) return "FINGERPRINT does not match";
    }
    at = end + ((4 - (attrLen % 4)) % 4);
  }
  if (at !== buf.length) return "attribute padding runs past the end";
  return { type, transactionId: buf.slice(8, 20), attributes };
}

/** The first attribute of `type`, or undefined. */
export function attribute(msg: StunMessage, type: number): Uint8Array | undefined {
  return msg.attributes.find((a) => a.type === type)?.value;
}

/**
 * Whether a parsed message is a Binding request this server answers, and
 * what it asks for: a string saying why not otherwise (unknown
 * comprehension-required attributes: authentication, ICE, ...).
 */
export function bindingRequest(msg: StunMessage): { readonly change: ChangeRequest } | string {
  if (msg.type !== BINDING_REQUEST) return `message type 0x${msg.type.toString(16).padStart(4, "0")} is not a Binding request`;
  for (const a of msg.attributes) {
    if (a.type < 0x8000 && !UNDERSTOOD_REQUIRED.has(a.type)) return `comprehension-required attribute 0x${a.type.toString(16).padStart(4, "0")} is not supported`;
  }
  const cr = attribute(msg, ATTR.CHANGE_REQUEST);
  if (cr === undefined) return { change: { changeIp: false, changePort: false } };
  if (cr.length !== 4) return `CHANGE-REQUEST is ${cr.length} bytes, not 4`;
  const flags = cr[3] ?? 0;
  return { change: { changeIp: (flags & 0x04) !== 0, changePort: (flags & 0x02) !== 0 } };
}

// ---------------------------------------------------------------- addresses

/** IPv4 or IPv6 as 4 or 16 bytes; null when `ip` is neither (or has a zone). */
export function ipBytes(ip: string): Uint8Array | null {
  const canonical = tryCanonicalIp(ip);
  if (canonical === null || canonical.includes("%")) return null;
  if (!canonical.includes(":")) return Uint8Array.from(canonical.split(".").map(Number));
  const [head = "", tail] = canonical.split("::") as [string, string | undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return tryCanonicalIp(groups.join(":")) as string;
}

/** XORs the address bytes with the cookie (and, for IPv6, the transaction id), as XOR-MAPPED-ADDRESS does. */
function xorAddress(addr: Uint8Array, transactionId: Uint8Array): Uint8Array {
  const pad = new Uint8Array(16);
  new DataView(pad.buffer).setUint32(0, MAGIC_COOKIE);
  pad.set(transactionId, 4);
  return addr.map((b, i) => b ^ (pad[i] ?? 0));
}

/** The value of a (XOR-)MAPPED-ADDRESS-style attribute for `ep`. */
export function encodeAddress(ep: Endpoint, transactionId: Uint8Array, xor: boolean): Uint8Array {
  const raw = ipBytes(ep.ip);
  if (raw === null) throw new TypeError(`STUN address is not an IPv4 or IPv6 address: \`${ep.ip}'`);
  const out = new Uint8Array(4 + raw.length);
  const view = new DataView(out.buffer);
  out[1] = raw.length === 4 ? 0x01 : 0x02;
  view.setUint16(2, xor ? ep.port ^ (MAGIC_COOKIE >>> 16) : ep.port);
  out.set(xor ? xorAddress(raw, transactionId) : raw, 4);
  return out;
}

/** Reads a (XOR-)MAPPED-ADDRESS-style value; a string saying what is wrong otherwise. */
export function decodeAddress(value: Uint8Array, transactionId: Uint8Array, xor: boolean): Endpoint | string {
  if (value.length < 4) return `address attribute of ${value.length} bytes is too short`;
  const family = value[1];
  const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (size === 0) return `address family 0x${(family ?? 0).toString(16)} is neither IPv4 nor IPv6`;
  if (value.length !== 4 + size) return `${family === 0x01 ? "IPv4" : "IPv6"} address attribute is ${value.length} bytes, not ${4 + size}`;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const port = xor ? view.getUint16(2) ^ (MAGIC_COOKIE >>> 16) : view.getUint16(2);
  const raw = value.subarray(4);
  return { ip: ipText(xor ? xorAddress(raw, transactionId) : raw), port };
}

// ---------------------------------------------------------------- encoding

/** Encodes a message; `fingerprint` appends a FINGERPRINT attribute. */
export function encodeStun(type: number, transactionId: Uint8Array, attributes: readonly StunAttribute[], fingerprint = false): Uint8Array {
  if (transactionId.length !== 12) throw new TypeError(`STUN transaction id must be 12 bytes, got ${transactionId.length}`);
  const bodyLen = attributes.reduce((n, a) => n + attributeSize(a.value.length), 0) + (fingerprint ? 8 : 0);
  const out = new Uint8Array(HEADER_SIZE + bodyLen);
  const view = new DataView(out.buffer);
  view.setUint16(0, type);
  view.setUint16(2, bodyLen);
  view.setUint32(4, MAGIC_COOKIE);
  out.set(transactionId, 8);
  let at = HEADER_SIZE;
  for (const a of attributes) {
    view.setUint16(at, a.type);
    view.setUint16(at + 2, a.value.length);
    out.set(a.value, at + 4);
    at += attributeSize(a.value.length);
  }
  if (fingerprint) {
    view.setUint16(at, ATTR.FINGERPRINT);
    view.setUint16(at + 2, 4);
    view.setUint32(at + 4, fingerprintOf(out.subarray(0, at), out.length));
  }
  return out;
}

/** Bytes an attribute with a value of `valueLen` bytes takes: header plus padded value. */
export function attributeSize(valueLen: number): number {
  return 4 + valueLen + ((4 - (valueLen % 4)) % 4);
}

/** A Binding request; `paddingBytes` adds a PADDING attribute (RFC 5780) so the server may answer with more than the mapped address. */
export function encodeBindingRequest(transactionId: Uint8Array, options: { change?: ChangeRequest; paddingBytes?: number } = {}): Uint8Array {
  const attrs: StunAttribute[] = [];
  const c = options.change;
  if (c && (c.changeIp || c.changePort)) attrs.push({ type: ATTR.CHANGE_REQUEST, value: Uint8Array.of(0, 0, 0, (c.changeIp ? 4 : 0) | (c.changePort ? 2 : 0)) });
  if (options.paddingBytes) attrs.push({ type: ATTR.PADDING, value: new Uint8Array(options.paddingBytes) });
  return encodeStun(BINDING_REQUEST, transactionId, attrs);
}

// ---------------------------------------------------------------- FINGERPRINT

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * FINGERPRINT over the message up to (not including) the attribute, with the
 * header's length field already counting it (`totalLength`): RFC 8489 §14.7.
 */
function fingerprintOf(before: Uint8Array, totalLength: number): number {
  const copy = Uint8Array.from(before);
  new DataView(copy.buffer).setUint16(2, totalLength - HEADER_SIZE);
  return (crc32(copy) ^ 0x5354554e) >>> 0;
}
