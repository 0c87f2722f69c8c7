/** Public-key pins: their text form, and that ours equal what the openssl tool computes. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { pinProblem } from "../../src/tls/client.js";
import { certificatePin, parsePins } from "../../src/tls/pin.js";
import { listensOnlyOnTunnel } from "../../src/registry/run.js";
import { TestPki } from "../support/tls.js";

const pki = new TestPki();
after(() => pki.remove());

describe("certificatePin", () => {
  it("is the base64 SHA-256 of the public key, as openssl computes it, for PEM and DER alike", () => {
    const a = pki.server("a", ["DNS:a.example"]);
    const pem = readFileSync(a.cert);
    const der = Buffer.from(pem.toString().replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    assert.equal(certificatePin(pem), pki.pin(a.cert));
    assert.equal(certificatePin(der), pki.pin(a.cert));
  });

  it("differs between keys", () => {
    const a = pki.server("a", ["DNS:a.example"]);
    const b = pki.server("b", ["DNS:a.example"]);
    assert.notEqual(certificatePin(readFileSync(a.cert)), certificatePin(readFileSync(b.cert)));
  });
});

describe("pinProblem", () => {
  it("accepts a listed key, refuses another, and a missing or unreadable certificate", () => {
    const a = pki.server("a", ["DNS:a.example"]);
    const pem = readFileSync(a.cert);
    const der = Buffer.from(pem.toString().replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    const other = `sha256//${Buffer.alloc(32).toString("base64")}`;
    assert.equal(pinProblem(der, [other, pki.pin(a.cert)]), null);
    assert.match(pinProblem(der, [other]) ?? "", /^the registry's public key sha256\/\/\S+ is not one of the pinned keys/);
    assert.equal(pinProblem(undefined, [other]), "the registry presented no certificate");
    assert.equal(pinProblem(Buffer.from("junk"), [other]), "the registry's certificate cannot be read");
    assert.equal(pinProblem(undefined, []), null);
  });
});

describe("parsePins", () => {
  const pin = (fill: number) => `sha256//${Buffer.alloc(32, fill).toString("base64")}`;

  it("reads one or several, trims, drops repeats", () => {
    assert.deepEqual(parsePins("--tls-pin", pin(1)), [pin(1)]);
    assert.deepEqual(parsePins("--tls-pin", ` ${pin(1)} ,${pin(2)},${pin(1)}`), [pin(1), pin(2)]);
  });

  const bad: Array<[string, RegExp]> = [
    ["", /: --tls-pin is empty$/],
    [pin(1).replace("sha256//", "sha1//"), /not a public-key pin/],
    [pin(1).replace("sha256//", ""), /not a public-key pin/],
    [`${pin(1).slice(0, -2)}=`, /not a public-key pin/],
    [`${pin(1)},`, /: --tls-pin `' is not a public-key pin/],
    // 43 characters and '=' whose last character has bits that 32 bytes cannot carry.
    [`sha256//${"A".repeat(42)}B=`, /not a public-key pin/],
  ];
  for (const [text, want] of bad) it(`refuses ${JSON.stringify(text)}`, () => assert.throws(() => parsePins("--tls-pin", text), want));

  it("whatever the text, returns only well-formed pins or throws an Error naming the setting", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          for (const p of parsePins("--tls-pin", text)) assert.equal(Buffer.from(p.slice(8), "base64").length, 32);
        } catch (err) {
          assert.match((err as Error).message, /^--tls-pin /);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("listensOnlyOnTunnel (the registry's plaintext warning)", () => {
  const cases: Array<[string, readonly string[], boolean]> = [
    [":1638", ["10.200.0.1"], false],
    ["0.0.0.0:1638", ["10.200.0.1"], false],
    ["[::]:1638", ["10.200.0.1"], false],
    ["10.200.0.1:1638", ["10.200.0.1"], true],
    ["[fd00:0::1]:1638", ["fd00::1"], true],
    ["203.0.113.1:1638", ["10.200.0.1"], false],
    ["127.0.0.1:1638", [], true],
    ["localhost:1638", [], true],
    ["registry.example:1638", ["10.200.0.1"], false],
  ];
  for (const [address, tunnel, want] of cases) {
    it(`${address} with tunnel ${tunnel.join(",") || "none"}: ${want}`, () => assert.equal(listensOnlyOnTunnel(address, tunnel), want));
  }
});
