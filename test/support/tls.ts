/**
 * Test certificates made with the openssl tool (P-256 keys, one day). The
 * tool is independent of the code under test, so pins it computes check ours.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync("openssl", args, { input, stdio: ["pipe", "pipe", "pipe"] });
}

export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), "wormhole-tls-"));
  private n = 0;

  /** A self-signed CA certificate. */
  ca(name: string): CertFiles {
    const files = this.paths(name);
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", files.key, "-out", files.cert, "-subj", `/CN=${name}`, "-days", "1"]);
    return files;
  }

  /**
   * A server certificate for `names` (subjectAltName entries such as
   * "IP:127.0.0.1", "DNS:localhost"): signed by `ca`, or self-signed without one.
   */
  server(name: string, names: readonly string[], ca?: CertFiles): CertFiles {
    const files = this.paths(name);
    if (!ca) {
      openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", files.key, "-out", files.cert, "-subj", `/CN=${name}`, "-days", "1", "-addext", `subjectAltName=${names.join(",")}`]);
      return files;
    }
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, `subjectAltName=${names.join(",")}\n`);
    const csr = join(this.dir, `${name}.csr`);
    openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", files.key, "-out", csr, "-subj", `/CN=${name}`]);
    openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-out", files.cert, "-days", "1", "-extfile", ext]);
    return files;
  }

  /** The public-key pin of a certificate, computed by openssl (sha256 of the DER SubjectPublicKeyInfo). */
  pin(cert: string): string {
    const pub = openssl(["x509", "-in", cert, "-pubkey", "-noout"]);
    const der = openssl(["pkey", "-pubin", "-outform", "der"], pub);
    const digest = openssl(["dgst", "-sha256", "-binary"], der);
    return `sha256//${digest.toString("base64")}`;
  }

  /** The certificate's notAfter, as openssl reads it. */
  notAfter(cert: string): Date {
    const line = openssl(["x509", "-in", cert, "-enddate", "-noout"]).toString().trim();
    return new Date(line.replace(/^notAfter=/, ""));
  }

  private paths(name: string): CertFiles {
    this.n += 1;
    return { cert: join(this.dir, `${this.n}-${name}.crt`), key: join(this.dir, `${this.n}-${name}.key`) };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
