/**
 * The registry's TLS identity: a certificate chain and its private key, read
 * from files, checked (both parse, the key is the certificate's), and read
 * again every so often so a renewed certificate is served without a restart.
 * A renewal that does not check out (half-written files, a key that does not
 * match) is refused with a warning and the last good pair stays in use.
 *
 * The key's bytes are kept in memory, as TLS needs them; they are never
 * logged, and messages quote file paths, never contents.
 */
import * as grpc from "@grpc/grpc-js";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Logger } from "../util/log.js";
import { fileErrorReason } from "../util/file-error.js";
import { quote } from "../wg/quote.js";
import { certificatePin } from "./pin.js";

type CertificateProvider = grpc.experimental.CertificateProvider;
type IdentityCertificateUpdateListener = grpc.experimental.IdentityCertificateUpdateListener;

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A checked certificate and key. */
export interface TlsIdentity {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The leaf certificate's public-key pin (sha256//...), for nodes that pin. */
  readonly pin: string;
  readonly subject: string;
  /** Subject alternative names as the certificate gives them ("DNS:..., IP Address:..."), or "". */
  readonly names: string;
  readonly notAfter: Date;
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read the TLS ${what} ${quote(path)}: ${fileErrorReason(err)}`);
  }
}

/**
 * Reads and checks a certificate (PEM, leaf first, then any intermediates)
 * and its private key (PEM, unencrypted). Throws an Error naming the file.
 */
export function loadTlsIdentity(files: TlsFiles): TlsIdentity {
  const cert = read(files.certFile, "certificate");
  const key = read(files.keyFile, "key");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new Error(`the TLS certificate ${quote(files.certFile)} is not a PEM certificate`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    // Node's message names the format problem, never the key's bytes.
    const encrypted = /passphrase/i.test((err as Error).message);
    throw new Error(
      encrypted
        ? `the TLS key ${quote(files.keyFile)} is encrypted; give an unencrypted key readable only by the registry (chmod 600)`
        : `the TLS key ${quote(files.keyFile)} is not a PEM private key`,
    );
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new Error(`the TLS key ${quote(files.keyFile)} is not the key of the certificate ${quote(files.certFile)}`);
  }
  return {
    cert,
    key,
    pin: certificatePin(leaf),
    subject: leaf.subject.replace(/\n/g, ", "),
    names: leaf.subjectAltName ?? "",
    notAfter: new Date(leaf.validTo),
  };
}

/** What to log about an identity: never the key. */
export function describeIdentity(id: TlsIdentity): Record<string, string> {
  return { subject: id.subject, names: id.names, notAfter: id.notAfter.toISOString(), pin: id.pin };
}

const WARN_EXPIRY_MS = 14 * 24 * 3600_000;

/**
 * Serves a {@link TlsIdentity} to grpc-js and re-reads its files every
 * `reloadMs`; grpc-js uses each new one for the connections that follow.
 */
export class ReloadingIdentity implements CertificateProvider {
  private current: TlsIdentity;
  private readonly listeners = new Set<IdentityCertificateUpdateListener>();
  private timer: NodeJS.Timeout | null = null;
  /** The last refused files' problem, so one bad renewal warns once, not every check. */
  private lastProblem: string | null = null;
  private warnedExpiryFor: Buffer | null = null;
  private warnedExpiryAtMs = 0;

  constructor(
    private readonly files: TlsFiles,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.current = loadTlsIdentity(files);
    this.warnExpiry();
  }

  get identity(): TlsIdentity {
    return this.current;
  }

  /** Re-reads the files every `ms` until {@link stop}. */
  watch(ms: number): void {
    this.stop();
    this.timer = setInterval(() => this.reload(), ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads the files again; true when a different, good pair was taken. */
  reload(): boolean {
    let next: TlsIdentity;
    try {
      next = loadTlsIdentity(this.files);
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== this.lastProblem) {
        this.logger.warn({ err: problem, serving: this.current.pin }, "cannot reload the TLS certificate; still serving the previous one");
      }
      this.lastProblem = problem;
      return false;
    }
    this.lastProblem = null;
    if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key)) {
      this.warnExpiry();
      return false;
    }
    this.current = next;
    this.logger.info(describeIdentity(next), "TLS certificate reloaded");
    this.warnExpiry();
    for (const l of this.listeners) l({ certificate: next.cert, privateKey: next.key });
    return true;
  }

  /** Warns when the certificate has expired or soon will: at start, at a reload, and once a day. */
  private warnExpiry(): void {
    const now = this.now().getTime();
    const left = this.current.notAfter.getTime() - now;
    if (left >= WARN_EXPIRY_MS) return;
    if (this.warnedExpiryFor === this.current.cert && now - this.warnedExpiryAtMs < 24 * 3600_000) return;
    this.warnedExpiryFor = this.current.cert;
    this.warnedExpiryAtMs = now;
    if (left <= 0) {
      this.logger.warn({ notAfter: this.current.notAfter.toISOString() }, "the TLS certificate has expired: nodes that verify it (--tls, --tls-ca) will refuse the registry; nodes that only pin its key still connect");
    } else if (left < WARN_EXPIRY_MS) {
      this.logger.warn({ notAfter: this.current.notAfter.toISOString() }, "the TLS certificate expires in less than 14 days");
    }
  }

  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.listeners.add(listener);
    // Not at once: grpc-js adds its own watcher only after this returns (1.14), and would miss it.
    queueMicrotask(() => {
      if (this.listeners.has(listener)) listener({ certificate: this.current.cert, privateKey: this.current.key });
    });
  }

  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.listeners.delete(listener);
  }

  // No CA: the registry does not ask nodes for certificates (WireGuard or the token names them).
  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}
}

/** Server credentials that follow the provider's reloads. */
export function serverCredentials(provider: ReloadingIdentity): grpc.ServerCredentials {
  // grpc-js names this function's first parameter the CA provider, but passes it
  // on as the identity provider (1.14): the identity goes first, no CA second.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, null, false);
}
