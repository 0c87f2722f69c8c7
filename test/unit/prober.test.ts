import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { createUdpProber, routeDevice, tunnelAddress } from "../../src/node/prober.js";
import type { Runner } from "../../src/util/runner.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

describe("prober", () => {
  it("routeDevice reads `ip -o route get`", () => {
    assert.equal(routeDevice("10.200.0.1 dev wg0 src 10.200.0.2 uid 0 \\    cache"), "wg0");
    assert.equal(routeDevice("10.200.0.1 via 192.168.1.1 dev eth0 src 192.168.1.10 uid 0"), "eth0");
    assert.equal(routeDevice("RTNETLINK answers: Network is unreachable"), null);
  });

  it("tunnelAddress: the first single-host allowed IP", () => {
    assert.equal(tunnelAddress(["10.200.0.0/24", "10.200.0.1/32"]), "10.200.0.1");
    assert.equal(tunnelAddress(["fd00::1/128"]), "fd00::1");
    assert.equal(tunnelAddress(["10.200.0.0/24"]), null);
  });

  it("sends only when the kernel routes the address into the given interface", async () => {
    const server = createSocket("udp4");
    const got: string[] = [];
    server.on("message", (m) => got.push(m.toString()));
    await new Promise<void>((r) => server.bind(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    const asked: string[][] = [];
    const runner: Runner = async (argv) => {
      asked.push([...argv]);
      return { stdout: `127.0.0.1 dev ${argv.includes("127.0.0.1") ? "lo" : "eth0"} src 127.0.0.1`, stderr: "", code: 0 };
    };
    const log = captureLogger();
    const prober = createUdpProber(log.logger, port, runner);
    try {
      prober.poke("127.0.0.1", "wg0"); // routed via lo, not wg0: must not be sent
      await waitFor("the refusal logged", () => log.records.some((r) => String(r.msg).startsWith("not sending")));
      prober.poke("127.0.0.1", "lo");
      await waitFor("the datagram", () => got.length > 0);
      assert.deepEqual(got, ["wormhole-probe"], "exactly the one routed through the named interface arrived");
      prober.poke("127.0.0.1", "lo");
      await waitFor("the second datagram", () => got.length === 2);
      assert.equal(asked.filter((a) => a.join(" ") === "ip -o route get 127.0.0.1").length, 2, "one route check per (interface, address), then cached");
    } finally {
      prober.close();
      server.close();
    }
  });
});
