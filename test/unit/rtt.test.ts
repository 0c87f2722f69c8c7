/** RTT for `wormhole status`: ping's output, and that the ping can only go into the tunnel. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePingRtt, pingMeter } from "../../src/node/rtt.js";
import type { RunOptions } from "../../src/util/runner.js";

const IPUTILS = `PING 10.200.0.3 (10.200.0.3) from 10.200.0.2 wg0: 56(84) bytes of data.
64 bytes from 10.200.0.3: icmp_seq=1 ttl=64 time=0.412 ms

--- 10.200.0.3 ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time 0ms
rtt min/avg/max/mdev = 0.412/0.412/0.412/0.000 ms
`;

describe("parsePingRtt", () => {
  const cases: Array<[string, string, number | null]> = [
    ["iputils", IPUTILS, 0.412],
    ["busybox", "64 bytes from 10.200.0.3: seq=0 ttl=64 time=12.345 ms\n", 12.345],
    ["a whole number", "64 bytes from fd00::3: icmp_seq=1 ttl=64 time=3 ms\n", 3],
    ["under a millisecond, rounded up by some pings", "64 bytes from 10.200.0.3: icmp_seq=1 ttl=64 time<1 ms\n", 1],
    ["no reply", "PING 10.200.0.3 (10.200.0.3) 56(84) bytes of data.\n\n--- 10.200.0.3 ping statistics ---\n1 packets transmitted, 0 received, 100% packet loss, time 0ms\n", null],
    ["empty", "", null],
  ];
  for (const [name, out, want] of cases) it(name, () => assert.equal(parsePingRtt(out), want));
});

describe("pingMeter", () => {
  it("pings once, for one second at most, bound to the WireGuard interface", async () => {
    const calls: Array<{ argv: readonly string[]; options?: RunOptions }> = [];
    const meter = pingMeter(async (argv, options) => {
      calls.push({ argv, options });
      return { stdout: IPUTILS, stderr: "", code: 0 };
    });
    assert.equal(await meter("10.200.0.3", "wg0"), 0.412);
    assert.deepEqual(calls[0]?.argv, ["ping", "-n", "-c", "1", "-W", "1", "-I", "wg0", "10.200.0.3"]);
    assert.equal(calls[0]?.options?.allowFailure, true);
  });

  it("no reply, no ping program, or a failing one: null, never a throw", async () => {
    assert.equal(await pingMeter(async () => ({ stdout: "", stderr: "", code: 1 }))("10.200.0.3", "wg0"), null);
    assert.equal(await pingMeter(async () => Promise.reject(new Error("ping: command not found")))("10.200.0.3", "wg0"), null);
  });
});
