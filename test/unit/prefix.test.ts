/** src/util/prefix.ts: networks, containment, single hosts; IPv4 and IPv6 never match each other. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { networkOf, prefixContains, singleHost } from "../../src/util/prefix.js";

describe("prefixes", () => {
  it("networkOf clears the host bits, and leaves what is not a prefix as it is", () => {
    assert.equal(networkOf("10.77.0.5/24"), "10.77.0.0/24");
    assert.equal(networkOf("fd77::5/64"), "fd77::/64");
    assert.equal(networkOf("mesh"), "mesh");
  });

  it("prefixContains: inside, outside, the other family, garbage", () => {
    assert.equal(prefixContains("10.77.0.0/24", "10.77.0.9"), true);
    assert.equal(prefixContains("10.77.0.0/24", "10.78.0.9"), false);
    assert.equal(prefixContains("fd77::/64", "fd77::9"), true);
    assert.equal(prefixContains("10.77.0.0/24", "fd77::9"), false);
    assert.equal(prefixContains("not/a/prefix", "10.77.0.9"), false);
    assert.equal(prefixContains("10.77.0.0/24", "not an address"), false);
  });

  it("singleHost: the address of a /32 or /128 only", () => {
    assert.equal(singleHost("10.77.0.9/32"), "10.77.0.9");
    assert.equal(singleHost("fd77:0::9/128"), "fd77::9");
    assert.equal(singleHost("10.77.0.0/24"), null);
    assert.equal(singleHost("fd77::/64"), null);
    assert.equal(singleHost("garbage"), null);
  });
});
