/**
 * Tunnel identity through real WireGuard and real NATs (issue 6): a registry
 * reached over the tunnel identifies its callers and refuses a node reporting
 * for another key. And TLS: nodes that reach the registry's public address
 * through their NATs verify or pin its certificate. Against the real
 * `wormhole` (dist/wormhole.cjs; fails, not skips, when it has not been
 * built). Needs root.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ALICE, BOB, runPublicApiScenario, runTunnelIdentityScenario, wormholeAgents } from "../../src/lab/index.js";
import { REGISTRY_IP } from "../../src/lab/topology.js";
import type { ReportAttempt } from "../../src/lab/index.js";
import { newRunId } from "../../src/lab/names.js";
import { TestPki } from "../support/tls.js";
import { SKIP, WORMHOLE_COMMAND, assertNoLeftovers, realAgents } from "./helpers.js";

const WG_PORT = 51820;

function outcome(a: ReportAttempt): string {
  return `${grpc.status[a.outcome.code]}${a.outcome.details ? `: ${a.outcome.details}` : ""}`;
}

describe("NAT lab: tunnel identity and TLS (real wormhole agents)", { skip: SKIP }, () => {
  it("a registry reached over the tunnel identifies its callers and refuses a node reporting for another key", async (t) => {
    const runId = newRunId();
    const started = Date.now();
    const r = await runTunnelIdentityScenario({ agents: realAgents(), runId });
    t.diagnostic(`connected after ${r.connectMs} ms; scenario took ${Date.now() - started} ms`);
    t.diagnostic(`forged report: ${outcome(r.forged)}; via the public address: ${outcome(r.viaPublic)}`);

    // The agents' own reports, made over their tunnels, were accepted and filed under their keys.
    assert.deepEqual(r.before.alice, [{ ip: r.alice.lanIp, port: WG_PORT }], "alice's agent reported her LAN address");
    assert.deepEqual(r.before.bob, [{ ip: r.bob.lanIp, port: WG_PORT }], "bob's agent reported his LAN address");

    // No key in the request: the registry names the caller from her tunnel address alone.
    assert.equal(r.unnamed.outcome.code, grpc.status.OK, `keyless report from alice's tunnel: ${outcome(r.unnamed)}`);
    assert.deepEqual(r.unnamed.after.alice, r.unnamed.candidates, "a keyless report from alice's tunnel address lands on alice");
    assert.deepEqual(r.unnamed.after.bob, r.before.bob, "bob's entry is untouched");

    // Her own key: accepted, and bob sees it on alice's entry.
    assert.equal(r.own.outcome.code, grpc.status.OK, `alice reporting for her own key: ${outcome(r.own)}`);
    assert.deepEqual(r.own.after.alice, r.own.candidates, "bob sees what alice reported on her entry");
    assert.deepEqual(r.own.after.bob, r.before.bob, "bob's entry is untouched");

    // Bob's key from alice's tunnel: refused, naming alice as the caller; nobody's entry changes.
    assert.equal(r.forged.outcome.code, grpc.status.PERMISSION_DENIED, `alice reporting for bob's key: ${outcome(r.forged)}`);
    assert.ok(
      r.forged.outcome.details.includes(`comes from ${r.aliceKey.slice(0, 8)}`) && r.forged.outcome.details.includes(`cannot report for ${r.bobKey.slice(0, 8)}`),
      `the refusal names alice as the caller and bob as the claimed key: ${r.forged.outcome.details}`,
    );
    assert.deepEqual(r.forged.after.bob, r.before.bob, "bob's candidates are still the ones his agent reported");
    assert.deepEqual(r.forged.after.alice, r.own.candidates, "the forged report is not filed under alice either");

    // The same caller at the registry's public address arrives from her NAT: unidentified, refused.
    assert.equal(r.viaPublic.outcome.code, grpc.status.PERMISSION_DENIED, `alice reporting at the registry's public address: ${outcome(r.viaPublic)}`);
    assert.match(r.viaPublic.outcome.details, /tunnel/);
    assert.deepEqual(r.viaPublic.after.alice, r.own.candidates, "the refused report changed nothing on alice's entry");
    assert.deepEqual(r.viaPublic.after.bob, r.before.bob, "bob's entry is untouched");

    await assertNoLeftovers(runId);
  });

  it("over TLS at the registry's public address, through the NATs: nodes that verify and pin it connect; nodes with another pin refuse it", async (t) => {
    const pki = new TestPki();
    try {
      const ca = pki.ca("lab-ca");
      const cert = pki.server("registry", [`IP:${REGISTRY_IP}`], ca);
      const other = pki.server("other", [`IP:${REGISTRY_IP}`]);
      const agents = (nodeArgs: string[]) =>
        wormholeAgents({ command: WORMHOLE_COMMAND, apiVia: "public", registryArgs: ["--tls-cert", cert.cert, "--tls-key", cert.key], nodeArgs });

      const goodRun = newRunId();
      const good = await runPublicApiScenario({ agents: agents(["--tls-ca", ca.cert, "--tls-pin", pki.pin(cert.cert)]), runId: goodRun, timeoutMs: 20_000 });
      for (const p of good.paths) t.diagnostic(`CA and pin: ${p.from} -> ${p.to}: ${p.path} after ${p.pingMs} ms`);
      assert.ok(good.paths.every((p) => p.path === "direct"), `the pair punches through: ${good.paths.map((p) => p.path).join(", ")}`);
      assert.match(good.logs.reg ?? "", /serving TLS/);
      assert.doesNotMatch(Object.values(good.logs).join("\n"), /PRIVATE KEY/, "no log holds the certificate's key");
      for (const n of [ALICE, BOB]) assert.match(good.logs[n] ?? "", /connected to the registry/, `${n}'s log`);
      await assertNoLeftovers(goodRun);

      const badRun = newRunId();
      const bad = await runPublicApiScenario({ agents: agents(["--tls-pin", pki.pin(other.cert)]), runId: badRun, timeoutMs: 6_000 });
      for (const p of bad.paths) t.diagnostic(`wrong pin: ${p.from} -> ${p.to}: ${p.path}`);
      assert.ok(bad.paths.every((p) => p.path === "down"), "without the registry's endpoints the pair never meets");
      for (const n of [ALICE, BOB]) {
        assert.match(bad.logs[n] ?? "", /is not one of the pinned keys/, `${n} says why it refuses the registry`);
        assert.doesNotMatch(bad.logs[n] ?? "", /connected to the registry/);
      }
      await assertNoLeftovers(badRun);
    } finally {
      pki.remove();
    }
  });
});
