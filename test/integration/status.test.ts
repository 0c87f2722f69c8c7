/** `wormhole status` against a running agent (in process, fake WireGuard), and its rendering. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { askAgent } from "../../src/node/control.js";
import { runNode } from "../../src/node/run.js";
import { renderStatus, statusJson, type NodeStatus } from "../../src/node/status.js";
import { runRegistry } from "../../src/registry/run.js";
import { systemClock } from "../../src/util/clock.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const dir = mkdtempSync(join(tmpdir(), "wormhole-status-"));
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

describe("wormhole status", () => {
  it("the agent answers on its root-only socket with every peer, its path and round trip; no agent: null", async () => {
    // Bob answers pings in 1.5 ms through wg0; the registry does not answer.
    const pinged: Array<[string, string]> = [];
    const rttMeter = async (ip: string, iface: string) => {
      pinged.push([ip, iface]);
      return ip === "10.200.0.3" && iface === "wg0" ? 1.5 : null;
    };
    const socket = join(dir, "ctl", "node.sock");
    assert.equal(await askAgent(socket), null, "nothing listens yet");
    const regWg = new FakeWireGuard([
      { name: "wg0", publicKey: key(9), peers: [{ publicKey: key(2), endpoint: { ip: "203.0.113.20", port: 50000 }, allowedIps: ["10.200.0.3/32"] }] },
    ]);
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: null, pollIntervalMs: 20 }, { wg: regWg, logger: captureLogger().logger });
    cleanups.push(() => reg.stop());
    const wg = new FakeWireGuard([
      {
        name: "wg0",
        publicKey: key(1),
        peers: [
          { publicKey: key(9), endpoint: { ip: "203.0.113.1", port: 51820 }, allowedIps: ["10.200.0.1/32"], persistentKeepaliveSec: 25, lastHandshakeMs: Date.now(), rxBytes: 2048 },
          { publicKey: key(2), allowedIps: ["10.200.0.3/32"] },
        ],
      },
    ]);
    const agent = await runNode(
      { addresses: [`127.0.0.1:${reg.port}`], token: "", iface: "wg0", refreshMs: 100, keepaliveSec: 25, probeIntervalMs: 0, controlSocket: socket },
      { wg, logger: captureLogger().logger, clock: systemClock, prober: null, interfaces: () => ({}), rttMeter },
    );
    cleanups.push(() => agent.stop());
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    const downBob = await waitFor("a status with Bob, still down", async () => (await askAgent(socket))?.interfaces[0]?.peers.find((p) => p.publicKey === key(2)));
    assert.equal(downBob?.path, "down");
    assert.equal(downBob?.rttMs, null, "a down peer is not pinged");
    assert.ok(!pinged.some(([ip]) => ip === "10.200.0.3"), "nor asked for");
    await waitFor("the agent to write Bob's endpoint", () => wg.peer("wg0", key(2))?.endpoint);
    wg.setHandshake("wg0", key(2), Date.now());
    const status: NodeStatus = await waitFor("a status where Bob is direct", async () => {
      const s = await askAgent(socket);
      return s?.interfaces[0]?.peers.find((p) => p.publicKey === key(2))?.path === "direct" ? s : null;
    }).then((s) => s as NodeStatus);
    assert.equal(status.source, "agent");
    const bob = status.interfaces[0]?.peers.find((p) => p.publicKey === key(2));
    assert.equal(bob?.endpoint, "203.0.113.20:50000");
    assert.equal(bob?.rttMs, 1.5);
    assert.equal(status.interfaces[0]?.peers.find((p) => p.publicKey === key(9))?.rttMs, null, "the registry did not answer");
    assert.ok(pinged.some(([ip, iface]) => ip === "10.200.0.1" && iface === "wg0"), "the registry's tunnel address was pinged");
    assert.equal(status.interfaces[0]?.peers.find((p) => p.publicKey === key(9))?.registry, true);

    const names = new Map([[key(2), "bob\u001b[31m"]]);
    const text = renderStatus(status, names);
    assert.match(text, /^interface wg0/m);
    assert.match(text, /^registry 127\.0\.0\.1:\d+.*: connected, /m, `each registry, with its watch's state:\n${text}`);
    assert.match(text, /bob\?\[31m\s+203\.0\.113\.20:50000\s+direct/, "named, control characters neutralised");
    assert.match(text, /2\.0 KiB/);
    assert.match(text, /direct .* 1\.5 ms$/m);
    const json = statusJson(status) as { interfaces: Record<string, { peers: Record<string, { path: string; endpoint: string }> }> };
    assert.equal(json.interfaces.wg0?.peers[key(2)]?.path, "direct");
    assert.equal(json.interfaces.wg0?.peers[key(9)]?.path, "registry");
    assert.deepEqual((statusJson(status) as { registries: Array<{ health: string }> }).registries.map((r) => r.health), ["connected"]);

    await agent.stop();
    assert.equal(await askAgent(socket), null, "the socket is gone after stop");
  });

  it("renders what WireGuard alone says when no agent runs", () => {
    const status: NodeStatus = {
      source: "wireguard",
      atMs: 1_000_000,
      interfaces: [{ iface: "wg0", publicKey: key(1), peers: [{ publicKey: key(2), name: null, endpoint: null, path: "down", sinceMs: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, rttMs: null, registry: false }] }],
    };
    const text = renderStatus(status, new Map());
    assert.match(text, /no agent answered/);
    assert.match(text, /\(none\)\s+down\s+-\s+never/);
  });
});
