/**
 * How a node trusts a registry it reaches over TLS. Three ways, and pins go
 * with either of the others:
 * - the system's CA certificates, and the certificate must name the host the
 *   node dials (`--tls`);
 * - a CA file of the user's (`--tls-ca`; it may be the registry's own
 *   self-signed certificate), and the certificate must name the host;
 * - public-key pins (`--tls-pin`): the registry's key must be one of them.
 *   Alone, a pin is all that is checked (like an SSH host key: no CA, no
 *   names, no dates), so a self-signed certificate made once is enough.
 *   With a CA, both must hold.
 */
import * as grpc from "@grpc/grpc-js";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { fileErrorReason } from "../util/file-error.js";
import { quote } from "../wg/quote.js";
import { certificatePin } from "./pin.js";

type SecureConnector = grpc.experimental.SecureConnector;

export interface ClientTls {
  /** PEM CA certificates to verify against; null: the system's (unless pins alone are given). */
  readonly ca: Buffer | null;
  /** Accepted public-key pins; empty: no pinning. */
  readonly pins: readonly string[];
}

/** Reads a CA file (PEM, one or more certificates); Error naming `name` and the path. */
export function readCaFile(name: string, path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${name} ${quote(path)}: ${fileErrorReason(err)}`);
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new Error(`${name} ${quote(path)} is not a PEM certificate`);
  }
  return pem;
}

/** Why a registry's certificate does not match the pins, or null when it does. */
export function pinProblem(peerCertDer: Buffer | undefined, pins: readonly string[]): string | null {
  if (pins.length === 0) return null;
  if (!peerCertDer || peerCertDer.length === 0) return "the registry presented no certificate";
  let pin: string;
  try {
    pin = certificatePin(peerCertDer);
  } catch {
    return "the registry's certificate cannot be read";
  }
  return pins.includes(pin) ? null : `the registry's public key ${pin} is not one of the pinned keys (--tls-pin)`;
}

/**
 * Credentials that check the pins on every new connection, after grpc-js's own
 * handshake (which verifies the chain unless pins alone are given).
 */
class PinningCredentials extends grpc.ChannelCredentials {
  constructor(
    private readonly inner: grpc.ChannelCredentials,
    private readonly pins: readonly string[],
  ) {
    super();
  }
  _isSecure(): boolean {
    return true;
  }
  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }
  _createSecureConnector(...args: Parameters<grpc.ChannelCredentials["_createSecureConnector"]>): SecureConnector {
    const connector = this.inner._createSecureConnector(...args);
    const pins = this.pins;
    return {
      async connect(socket) {
        const result = await connector.connect(socket);
        const problem = pinProblem((result.socket as TLSSocket).getPeerCertificate?.()?.raw, pins);
        if (problem) {
          result.socket.destroy();
          throw new Error(problem);
        }
        return result;
      },
      waitForReady: () => connector.waitForReady(),
      getCallCredentials: () => connector.getCallCredentials(),
      destroy: () => connector.destroy(),
    };
  }
}

/** Channel credentials for a node: plaintext when `tls` is null. */
export function channelCredentials(tls: ClientTls | null): grpc.ChannelCredentials {
  if (tls === null) return grpc.credentials.createInsecure();
  if (tls.pins.length === 0) return grpc.credentials.createSsl(tls.ca);
  // Pins alone: the chain and names are not checked, the key is.
  const inner = tls.ca === null ? grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false }) : grpc.credentials.createSsl(tls.ca);
  return new PinningCredentials(inner, tls.pins);
}
