/** The registry's TLS identity: expiry warnings with a fake clock (certificates from the openssl tool). */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ReloadingIdentity } from "../../src/tls/server.js";
import { captureLogger } from "../support/logs.js";
import { TestPki } from "../support/tls.js";

const pki = new TestPki();
after(() => pki.remove());

describe("ReloadingIdentity: expiry warnings", () => {
  it("warns at start when under 14 days are left, at most once a day while nothing changes, and says when it has expired", () => {
    const cert = pki.server("short", ["DNS:registry.example"]); // valid for one day
    const notAfter = pki.notAfter(cert.cert).getTime();
    let now = notAfter - 20 * 3600_000;
    const log = captureLogger();
    const id = new ReloadingIdentity({ certFile: cert.cert, keyFile: cert.key }, log.logger, () => new Date(now));
    const warnings = () => log.records.filter((r) => r.level === 40).map((r) => String(r.msg));
    assert.deepEqual(warnings(), ["the TLS certificate expires in less than 14 days"]);

    now += 3600_000;
    assert.equal(id.reload(), false, "same files: nothing to take");
    assert.equal(warnings().length, 1, "not again within the day");

    now = notAfter + 5 * 3600_000;
    id.reload();
    assert.equal(warnings().length, 2);
    assert.match(warnings()[1] ?? "", /^the TLS certificate has expired: nodes that verify it/);
  });

  it("says nothing about a certificate with months left", () => {
    const cert = pki.server("long", ["DNS:registry.example"]);
    const log = captureLogger();
    const notAfter = pki.notAfter(cert.cert).getTime();
    const id = new ReloadingIdentity({ certFile: cert.cert, keyFile: cert.key }, log.logger, () => new Date(notAfter - 90 * 24 * 3600_000));
    id.reload();
    assert.equal(log.records.filter((r) => r.level === 40).length, 0);
  });
});
