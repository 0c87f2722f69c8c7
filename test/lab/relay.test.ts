/**
 * The end-to-end relay with real WireGuard (wireguard-go) behind two
 * symmetric NATs, the real registry and nodes on the seed's command line.
 * Needs root and a built dist/wormhole.cjs.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ALICE, BOB, measurePaths, pairSites, startAgents, withLab, type Lab } from "../../src/lab/index.js";
import { newRunId } from "../../src/lab/names.js";
import { pollUntil } from "../../src/lab/wait.js";
import { inNs } from "../../src/lab/wg.js";
import { SKIP, assertNoLeftovers, realAgents } from "./helpers.js";

const TAMPER = fileURLToPath(new URL("./fixtures/tamper-relay.ts", import.meta.url));

async function relayedPair(lab: Lab): Promise<void> {
  const start = Date.now();
  const paths = await measurePaths(lab, { pairs: [[ALICE, BOB], [BOB, ALICE]], startMs: start, timeoutMs: 20_000 });
  assert.deepEqual(paths.map((p) => p.path), ["relayed", "relayed"], JSON.stringify(paths));
}

async function rxFrom(lab: Lab, host: string, peer: string): Promise<number> {
  return (await lab.readPeers(host)).find((p) => p.publicKey === lab.publicKey(peer))?.rxBytes ?? -1;
}

describe("the end-to-end relay in the NAT lab", { skip: SKIP }, () => {
  it("two symmetric NATs are relayed with no IP forwarding and no allowed IP moved; a relayed packet altered in flight is dropped by WireGuard", async () => {
    const runId = newRunId();
    await withLab({ sites: pairSites("symmetric", "symmetric"), runId }, async (lab) => {
      const agents = realAgents();
      await startAgents(lab, agents);
      await relayedPair(lab);
      const reg = lab.plan.registry;
      assert.equal((await lab.run(inNs(reg.ns, ["sysctl", "-n", "net.ipv4.ip_forward"]))).stdout.trim(), "0", "the registry host does not forward");
      for (const [self, other] of [[ALICE, BOB], [BOB, ALICE]] as const) {
        const peers = await lab.readPeers(self);
        assert.deepEqual(peers.find((p) => p.publicKey === lab.publicKey(other))?.allowedIps, [`${lab.node(other).tunnelIp}/32`]);
        assert.deepEqual(peers.find((p) => p.publicKey === lab.publicKey(reg.name))?.allowedIps, [`${reg.tunnelIp}/32`]);
      }

      // A relay that flips one bit of every payload takes the registry's place.
      await agents.stopRegistry(lab, "SIGKILL");
      const peerList = [ALICE, BOB].map((n) => `${lab.publicKey(n)}=${lab.node(n).tunnelIp}`).join(",");
      const tamper = await lab.spawn("tampering relay", reg.ns, [process.execPath, "--import", "tsx", TAMPER, reg.tunnelIp, String(reg.grpcPort), peerList], { logName: "reg.tamper" });
      await pollUntil("the tampering relay to listen", async () => ((await readFile(tamper.logFile, "utf8")).includes("LISTENING") ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      const rxBefore = await rxFrom(lab, BOB, ALICE);
      let pings = 0;
      const altered = await pollUntil(
        "altered packets to reach bob",
        async () => {
          pings++;
          assert.equal((await lab.ping(ALICE, BOB)).ok, false, "a ping got through a relay that alters every packet");
          const n = Number(/relayed (\d+)\n$/.exec(await readFile(tamper.logFile, "utf8"))?.[1] ?? 0);
          return n >= 5 && pings >= 3 ? n : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      assert.ok(altered >= 5);
      assert.equal(await rxFrom(lab, BOB, ALICE), rxBefore, "bob's WireGuard accepted none of the altered packets");

      // The real registry back: the pair is relayed again.
      await lab.stopProcess(tamper);
      await agents.startRegistry(lab);
      await pollUntil("alice -> bob through the relay again", async () => ((await lab.ping(ALICE, BOB)).ok ? true : undefined), { timeoutMs: 30_000, intervalMs: 250 });
      await agents.stopAll(lab);
    });
    await assertNoLeftovers(runId);
  });

  it("a node agent killed while relaying leaves nothing that breaks the pair: restarted, it is relayed again", async () => {
    const runId = newRunId();
    await withLab({ sites: pairSites("symmetric", "symmetric"), runId }, async (lab) => {
      const agents = realAgents();
      await startAgents(lab, agents);
      await relayedPair(lab);
      await agents.stopNode(lab, ALICE, "SIGKILL");
      const left = (await lab.readPeers(ALICE)).find((p) => p.publicKey === lab.publicKey(BOB))?.endpoint;
      assert.equal(left?.ip, "127.0.0.1", "the dead agent's relay socket is still bob's endpoint");
      await agents.startNode(lab, ALICE);
      await pollUntil(
        "alice and bob to talk again",
        async () => {
          const [ab, ba] = await Promise.all([lab.ping(ALICE, BOB), lab.ping(BOB, ALICE)]);
          return ab.ok && ba.ok ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 250 },
      );
      const now = (await lab.readPeers(ALICE)).find((p) => p.publicKey === lab.publicKey(BOB))?.endpoint;
      assert.equal(now?.ip, "127.0.0.1");
      assert.notEqual(now?.port, left?.port, "a new relay socket, not the dead one");
      await agents.stopAll(lab);
    });
    await assertNoLeftovers(runId);
  });
});
