/**
 * What the registry's STUN responder says to one datagram: pure. The
 * sockets are in server.ts.
 *
 * It answers Binding requests only, and never amplifies: a reply is at most
 * the request's size plus one XOR-MAPPED-ADDRESS attribute. The other
 * attributes (OTHER-ADDRESS, RESPONSE-ORIGIN, wormhole's OTHER-FAMILY, and a
 * FINGERPRINT when the request had one) are added only while they fit in
 * that budget; a client that wants them pads its request (RFC 5780 PADDING).
 */
import type { Endpoint } from "../wg/types.js";
import { ATTR, attributeSize, BINDING_SUCCESS, bindingRequest, encodeAddress, encodeStun, parseStun, type StunAttribute } from "./codec.js";

/** Which of the server's sockets sends a reply, relative to the one the request came in on. */
export interface ReplyVia {
  readonly changeIp: boolean;
  readonly changePort: boolean;
}

export interface AnswerContext {
  /** Where the request came from (the mapped address the reply tells). */
  readonly source: Endpoint;
  /** The socket the request arrived on. */
  readonly local: Endpoint;
  /** The server's other address and port (RFC 5780 OTHER-ADDRESS), null when it has no alternate address. */
  readonly other: Endpoint | null;
  /** The server's other port (CHANGE-REQUEST change-port answers from it; OTHER-ADDRESS has it too). */
  readonly altPort: number;
  /** Where the server answers STUN in the other address family, if anywhere. */
  readonly otherFamily: Endpoint | null;
}

export type Answer = { readonly reply: Uint8Array; readonly via: ReplyVia; readonly from: Endpoint } | { readonly drop: string };

/** The reply to `request`, and from which socket to send it; or why it gets none. */
export function answerStun(request: Uint8Array, ctx: AnswerContext): Answer {
  const msg = parseStun(request);
  if (typeof msg === "string") return { drop: msg };
  const binding = bindingRequest(msg);
  if (typeof binding === "string") return { drop: binding };
  const { changeIp, changePort } = binding.change;
  if (changeIp && ctx.other === null) return { drop: "CHANGE-REQUEST asks for another address and this server has none" };
  const from: Endpoint = {
    ip: changeIp && ctx.other ? ctx.other.ip : ctx.local.ip,
    port: changePort ? ctx.altPort : ctx.local.port,
  };
  const tid = msg.transactionId;
  const mapped = { type: ATTR.XOR_MAPPED_ADDRESS, value: encodeAddress(ctx.source, tid, true) };
  const hadFingerprint = msg.attributes.some((a) => a.type === ATTR.FINGERPRINT);
  const budget = request.length + attributeSize(mapped.value.length) - (hadFingerprint ? 8 : 0);
  const attrs: StunAttribute[] = [mapped];
  let size = 20 + attributeSize(mapped.value.length);
  const optional: StunAttribute[] = [];
  if (ctx.other) optional.push({ type: ATTR.OTHER_ADDRESS, value: encodeAddress(ctx.other, tid, false) });
  optional.push({ type: ATTR.RESPONSE_ORIGIN, value: encodeAddress(from, tid, false) });
  if (ctx.otherFamily) optional.push({ type: ATTR.OTHER_FAMILY, value: encodeAddress(ctx.otherFamily, tid, true) });
  for (const a of optional) {
    const s = attributeSize(a.value.length);
    if (size + s > budget) break;
    attrs.push(a);
    size += s;
  }
  return { reply: encodeStun(BINDING_SUCCESS, tid, attrs, hadFingerprint), via: { changeIp, changePort }, from };
}

/**
 * Per-source token buckets, plus one for everyone: a flood from one address
 * (or from many spoofed ones) gets at most `globalPerSec` replies a second.
 * At most `maxSources` sources are remembered; the oldest is forgotten first.
 */
export class StunLimiter {
  readonly #sources = new Map<string, { tokens: number; atMs: number }>();
  #global: { tokens: number; atMs: number } | null = null;

  constructor(
    private readonly limits: { readonly perSourcePerSec: number; readonly burst: number; readonly globalPerSec: number; readonly maxSources: number } = {
      perSourcePerSec: 10,
      burst: 20,
      globalPerSec: 2_000,
      maxSources: 10_000,
    },
  ) {}

  /** Whether a reply to `sourceIp` may be sent at `nowMs`; takes a token when it may. */
  allow(sourceIp: string, nowMs: number): boolean {
    const { perSourcePerSec, burst, globalPerSec, maxSources } = this.limits;
    const g = refill(this.#global ?? { tokens: globalPerSec, atMs: nowMs }, nowMs, globalPerSec, globalPerSec);
    this.#global = g;
    let s = this.#sources.get(sourceIp);
    if (s) this.#sources.delete(sourceIp); // re-inserted last: the map's order is least recently seen first
    s = refill(s ?? { tokens: burst, atMs: nowMs }, nowMs, perSourcePerSec, burst);
    this.#sources.set(sourceIp, s);
    while (this.#sources.size > maxSources) {
      const oldest = this.#sources.keys().next().value as string;
      this.#sources.delete(oldest);
    }
    if (s.tokens < 1 || g.tokens < 1) return false;
    s.tokens -= 1;
    g.tokens -= 1;
    return true;
  }

  get sources(): number {
    return this.#sources.size;
  }
}

function refill(b: { tokens: number; atMs: number }, nowMs: number, perSec: number, cap: number): { tokens: number; atMs: number } {
  const elapsed = Math.max(0, nowMs - b.atMs);
  return { tokens: Math.min(cap, b.tokens + (elapsed * perSec) / 1000), atMs: Math.max(b.atMs, nowMs) };
}
