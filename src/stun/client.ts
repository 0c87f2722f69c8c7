/**
 * A STUN Binding client over one UDP socket: sends a request, retransmits,
 * and takes the first reply that carries its transaction id. Every wait is
 * bounded. `checkReply` (pure) says what one datagram means for a request.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:dgram";
import { endpointsEqual, tryCanonicalIp } from "../wg/endpoint.js";
import type { Endpoint } from "../wg/types.js";
import { ATTR, attribute, BINDING_SUCCESS, decodeAddress, encodeBindingRequest, parseStun, type ChangeRequest } from "./codec.js";

export interface BindingReply {
  /** Our address as the server saw it (XOR-MAPPED-ADDRESS). */
  readonly mapped: Endpoint;
  /** Where the reply came from. */
  readonly from: Endpoint;
  /** The server's alternate address and port (OTHER-ADDRESS), if it told one. */
  readonly other: Endpoint | null;
  /** Where the server answers in the other address family (wormhole's OTHER-FAMILY), if it told one. */
  readonly otherFamily: Endpoint | null;
}

/**
 * What a datagram means for the request with `transactionId` that expects its
 * reply from `expectFrom`: null when it is not about that request (another
 * transaction id, not STUN) — keep waiting; a problem when it is our reply
 * but unusable (from the wrong address, not a success, no mapped address).
 */
export function checkReply(datagram: Uint8Array, from: Endpoint, transactionId: Uint8Array, expectFrom: Endpoint): BindingReply | { readonly problem: string } | null {
  const msg = parseStun(datagram);
  if (typeof msg === "string") return null;
  if (!sameBytes(msg.transactionId, transactionId)) return null;
  const fromText = showEndpoint(from);
  if (!endpointsEqual(from, expectFrom)) return { problem: `the reply came from ${fromText}, not from ${showEndpoint(expectFrom)}` };
  if (msg.type !== BINDING_SUCCESS) return { problem: `${fromText} answered with message type 0x${msg.type.toString(16).padStart(4, "0")}, not a Binding success` };
  const raw = attribute(msg, ATTR.XOR_MAPPED_ADDRESS);
  if (raw === undefined) return { problem: `${fromText}'s reply has no XOR-MAPPED-ADDRESS` };
  const mapped = decodeAddress(raw, msg.transactionId, true);
  if (typeof mapped === "string") return { problem: `${fromText}'s reply: ${mapped}` };
  const optional = (type: number, xor: boolean): Endpoint | null => {
    const v = attribute(msg, type);
    if (v === undefined) return null;
    const ep = decodeAddress(v, msg.transactionId, xor);
    return typeof ep === "string" ? null : ep;
  };
  return { mapped, from, other: optional(ATTR.OTHER_ADDRESS, false), otherFamily: optional(ATTR.OTHER_FAMILY, true) };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `ip:port` or `[ip]:port`, for messages; unlike wg's formatEndpoint it never throws (what it shows came off the network). */
export function showEndpoint(ep: Endpoint): string {
  return ep.ip.includes(":") ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/** A reply, or a problem (`timeout`: nothing usable came back in time). */
export type BindingResult = (BindingReply & { readonly rttMs: number }) | { readonly problem: string; readonly timeout: boolean };

export interface BindingOptions {
  readonly change?: ChangeRequest;
  /** Where the reply must come from. Default: `to`. */
  readonly expectFrom?: Endpoint;
  /** Total time to wait. Default 1 500 ms. */
  readonly timeoutMs?: number;
  /** Sends (the first, then retransmissions spread over the timeout). Default 3. */
  readonly tries?: number;
}

/** Bytes of PADDING each request carries, so the server may answer with OTHER-ADDRESS, RESPONSE-ORIGIN and OTHER-FAMILY. */
export const REQUEST_PADDING = 64;

/**
 * Sends a Binding request from `socket` to `to` and waits for its reply.
 * Never throws for network trouble: a send error, a timeout or a bad reply
 * is a `problem`.
 */
export function binding(socket: Socket, to: Endpoint, options: BindingOptions = {}): Promise<BindingResult> {
  const tid = randomBytes(12);
  const request = encodeBindingRequest(tid, { ...(options.change ? { change: options.change } : {}), paddingBytes: REQUEST_PADDING });
  const expectFrom = options.expectFrom ?? to;
  const timeoutMs = options.timeoutMs ?? 1_500;
  const tries = Math.max(1, options.tries ?? 3);
  return new Promise((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    let others = 0;
    let sentAt = 0;
    let done = false;
    const finish = (r: BindingResult): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      socket.off("message", onMessage);
      resolve(r);
    };
    const onMessage = (msg: Buffer, rinfo: { address: string; port: number }): void => {
      const from = { ip: tryCanonicalIp(rinfo.address) ?? rinfo.address, port: rinfo.port };
      const r = checkReply(msg, from, tid, expectFrom);
      if (r === null) {
        others++;
        return;
      }
      finish("problem" in r ? { problem: r.problem, timeout: false } : { ...r, rttMs: Date.now() - sentAt });
    };
    socket.on("message", onMessage);
    const send = (): void => {
      sentAt = Date.now();
      socket.send(request, to.port, to.ip, (err) => {
        if (err) finish({ problem: `cannot send to ${showEndpoint(to)}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, timeout: false });
      });
    };
    for (let i = 0; i < tries; i++) timers.push(setTimeout(send, Math.floor((i * timeoutMs) / (tries + 1))));
    timers.push(
      setTimeout(
        () =>
          finish({
            timeout: true,
            problem: `no reply from ${showEndpoint(expectFrom)} within ${timeoutMs} ms (${tries} tries${others ? `; ${others} other datagram(s) ignored` : ""})`,
          }),
        timeoutMs,
      ),
    );
  });
}

/**
 * Whether a Binding request sent by `sender` to `to` arrives at `listener`
 * within `timeoutMs` (the hairpin test: `to` is the listener's own mapped
 * address). Any source address counts.
 */
export function arrives(sender: Socket, listener: Socket, to: Endpoint, timeoutMs = 1_000, tries = 3): Promise<{ readonly heard: boolean } | { readonly problem: string }> {
  const tid = randomBytes(12);
  const request = encodeBindingRequest(tid);
  return new Promise((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    let done = false;
    const finish = (r: { heard: boolean } | { problem: string }): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      listener.off("message", onMessage);
      resolve(r);
    };
    const onMessage = (msg: Buffer): void => {
      const m = parseStun(msg);
      if (typeof m !== "string" && sameBytes(m.transactionId, tid)) finish({ heard: true });
    };
    listener.on("message", onMessage);
    for (let i = 0; i < tries; i++) {
      timers.push(
        setTimeout(() => {
          sender.send(request, to.port, to.ip, (err) => {
            if (err) finish({ problem: `cannot send to ${showEndpoint(to)}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
          });
        }, Math.floor((i * timeoutMs) / (tries + 1))),
      );
    }
    timers.push(setTimeout(() => finish({ heard: false }), timeoutMs));
  });
}

