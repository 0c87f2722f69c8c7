import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mappingOf } from "../../src/node/natprobe.js";
import type { BindingResult } from "../../src/stun/client.js";

const reply = (ip: string, port: number): BindingResult => ({ mapped: { ip, port }, from: { ip: "203.0.113.1", port: 3478 }, other: null, otherFamily: null, rttMs: 1 });
const timeout: BindingResult = { problem: "no reply from 203.0.113.1:3478 within 1000 ms (3 tries)", timeout: true };

describe("mappingOf", () => {
  const cases: Array<[string, BindingResult, BindingResult | null, string]> = [
    ["the same mapping for both destinations", reply("198.51.100.7", 40000), reply("198.51.100.7", 40000), "endpoint-independent"],
    ["another port for another destination", reply("198.51.100.7", 40000), reply("198.51.100.7", 40001), "per-destination"],
    ["another address for another destination", reply("198.51.100.7", 40000), reply("198.51.100.8", 40000), "per-destination"],
    ["no reply at all", timeout, null, "unknown"],
    ["no reply from the alternate", reply("198.51.100.7", 40000), timeout, "unknown"],
    ["nothing to compare with", reply("198.51.100.7", 40000), null, "unknown"],
  ];
  for (const [name, a, b, want] of cases) it(name, () => assert.equal(mappingOf(a, b).mapping, want));
});

