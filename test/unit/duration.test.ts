import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { formatDuration, parseDuration } from "../../src/util/duration.js";
import { backoffDelay } from "../../src/util/backoff.js";

describe("parseDuration", () => {
  const good: Array<[string, number]> = [
    ["15s", 15_000],
    ["1m", 60_000],
    ["1m30s", 90_000],
    ["500ms", 500],
    ["1h", 3_600_000],
    ["1.5s", 1_500],
    ["2h3m4s", 7_384_000],
    [" 10s ", 10_000],
  ];
  for (const [text, ms] of good) it(`reads ${JSON.stringify(text)}`, () => assert.equal(parseDuration(text), ms));

  const bad = ["", "15", "s", "5x", "1m 30s", "-1s", "1d", "ms", "1s2"];
  for (const text of bad) {
    it(`refuses ${JSON.stringify(text)} naming the flag`, () => {
      assert.throws(() => parseDuration(text, "--refresh"), (err: Error) => err.message.includes("--refresh"));
    });
  }

  it("round-trips whole seconds and sub-second milliseconds", () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 1, max: 999 }), fc.integer({ min: 1, max: 500_000 }).map((s) => s * 1000)), (ms) => {
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
    );
  });

  it("never throws anything but an Error with a message on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          const ms = parseDuration(text);
          assert.ok(Number.isFinite(ms) && ms >= 0);
        } catch (err) {
          assert.ok(err instanceof Error && err.message.length > 0);
        }
      }),
    );
  });
});

describe("backoffDelay", () => {
  it("grows exponentially within [ceiling/2, ceiling] and stops at the cap", () => {
    const opts = { minMs: 500, maxMs: 15_000 };
    assert.equal(backoffDelay(0, { ...opts, random: () => 0 }), 250);
    assert.equal(backoffDelay(0, { ...opts, random: () => 1 }), 500);
    assert.equal(backoffDelay(3, { ...opts, random: () => 1 }), 4_000);
    assert.equal(backoffDelay(10, { ...opts, random: () => 1 }), 15_000);
    assert.equal(backoffDelay(1000, { ...opts, random: () => 0 }), 7_500);
  });
});
