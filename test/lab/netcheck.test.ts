/**
 * `wormhole netcheck` on a node of every lab profile, IPv4 and IPv6, against
 * the real registry's STUN responder (with an alternate address per family,
 * so mapping and filtering are told apart as RFC 5780 does). Real nftables
 * NATs and firewalls; the verdict must match what each profile is built to
 * do (nat.ts).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { withLab, type Lab } from "../../src/lab/index.js";
import { IPV6_PROFILES, type NatBehaviour, type SiteIpv6 } from "../../src/lab/nat.js";
import { newRunId } from "../../src/lab/names.js";
import { pollUntil } from "../../src/lab/wait.js";
import { inNs } from "../../src/lab/wg.js";
import { SKIP, WORMHOLE_CJS, WORMHOLE_COMMAND, assertNoLeftovers } from "./helpers.js";
import { existsSync } from "node:fs";

interface Expected {
  readonly mapping: string;
  readonly filtering: string;
  readonly hairpin: boolean | null;
  readonly portPreserved: boolean | null;
  readonly ipv6: string;
  /** IPv6 filtering, when the node has IPv6. */
  readonly filtering6?: string;
}

const HOME: Omit<Expected, "ipv6"> = { mapping: "endpoint-independent", filtering: "address-and-port-dependent", hairpin: false, portPreserved: true };
const SYMMETRIC: Omit<Expected, "ipv6"> = { mapping: "address-and-port-dependent", filtering: "address-and-port-dependent", hairpin: false, portPreserved: false };
const NATIVE6 = { ipv6: "native", filtering6: "address-and-port-dependent" };

/** One node per profile (two for samelan): site, node, expected verdict. */
const PROFILES: ReadonlyArray<{ site: string; nat: NatBehaviour; ipv6?: SiteIpv6; nodes: string[]; expect: Expected }> = [
  { site: "pub", nat: "public", nodes: ["pub1"], expect: { mapping: "none", filtering: "endpoint-independent", hairpin: true, portPreserved: true, ipv6: "none" } },
  { site: "home", nat: "home", nodes: ["home1"], expect: { ...HOME, ipv6: "none" } },
  // Masquerade without a firewall still forwards only what matches a mapping's reply tuple.
  { site: "bare", nat: "bare", nodes: ["bare1"], expect: { ...HOME, ipv6: "none" } },
  { site: "sym", nat: "symmetric", nodes: ["sym1"], expect: { ...SYMMETRIC, ipv6: "none" } },
  { site: "cgn", nat: "cgnat", nodes: ["cgn1"], expect: { ...HOME, ipv6: "none" } },
  { site: "lan", nat: "samelan", nodes: ["lan1", "lan2"], expect: { ...HOME, ipv6: "none" } },
  { site: "home6", ...IPV6_PROFILES.home6, nodes: ["h6"], expect: { ...HOME, ...NATIVE6 } },
  { site: "cgn6", ...IPV6_PROFILES.cgnat6, nodes: ["c6"], expect: { ...HOME, ...NATIVE6 } },
  { site: "sym6", ...IPV6_PROFILES.symmetric6, nodes: ["s6"], expect: { ...SYMMETRIC, ...NATIVE6 } },
  { site: "v6o", ...IPV6_PROFILES.v6only, nodes: ["o6"], expect: { mapping: "unknown", filtering: "unknown", hairpin: null, portPreserved: null, ...NATIVE6 } },
];

interface NetcheckJson {
  mapping: string;
  filtering: string;
  hairpin: boolean | null;
  portPreserved: boolean | null;
  ipv6: string;
  why: Record<string, string>;
  api: { ok: boolean };
  ipv6Detail: { filtering: string };
  stun: string;
  stunVia: string | null;
}

async function startRegistry(lab: Lab): Promise<void> {
  const reg = lab.plan.registry;
  const proc = await lab.spawn("wormhole registry", reg.ns, [...WORMHOLE_COMMAND, "registry", "-i", reg.iface, "-a", `0.0.0.0:${reg.grpcPort}`, "--token-file", lab.tokenFile], {
    logName: "registry",
  });
  await pollUntil(
    "the registry answering STUN",
    async () => {
      const st = proc.exitStatus();
      if (st) throw new Error(`wormhole registry exited (${st.signal ?? `code ${st.code}`})`);
      return (await readFile(proc.logFile, "utf8")).includes("answering STUN Binding requests") ? true : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 100, check: () => lab.checkOpen() },
  );
}

/** netcheck on `node`, dialling the registry at its public address, or at its tunnel address (`tunnel`). */
async function netcheck(lab: Lab, node: string, tunnel = false): Promise<NetcheckJson> {
  const n = lab.node(node);
  const reg = lab.plan.registry;
  const api = tunnel ? `${reg.tunnelIp}:${reg.grpcPort}` : n.ipv6 === "only" ? `[${reg.ip6 as string}]:${reg.grpcPort}` : `${reg.ip}:${reg.grpcPort}`;
  const r = await lab.run(inNs(n.ns, [...WORMHOLE_COMMAND, "netcheck", "-a", api, "-i", n.iface, "--token-file", lab.tokenFile, "--json"]), { timeoutMs: 60_000 });
  return JSON.parse(r.stdout) as NetcheckJson;
}

describe("wormhole netcheck in the NAT lab", { skip: SKIP }, () => {
  it("gives each profile's verdict: mapping, filtering, hairpin, port preservation, IPv6", async (t) => {
    assert.ok(existsSync(WORMHOLE_CJS), `${WORMHOLE_CJS} is missing: run \`npm run build' before the lab tests`);
    const runId = newRunId();
    await withLab(
      {
        runId,
        registryAlternates: true,
        sites: PROFILES.map((p) => ({ name: p.site, nat: p.nat, nodes: p.nodes, ...(p.ipv6 ? { ipv6: p.ipv6 } : {}) })),
      },
      async (lab) => {
        await startRegistry(lab);
        const jobs = PROFILES.flatMap((p) => p.nodes.map((node) => ({ p, node })));
        const results: Array<{ node: string; site: string; got: NetcheckJson; expect: Expected }> = [];
        // Three at a time: the machine has two cores, and each netcheck waits out a few silent probes.
        for (let i = 0; i < jobs.length; i += 3) {
          const batch = jobs.slice(i, i + 3);
          results.push(...(await Promise.all(batch.map(async ({ p, node }) => ({ node, site: p.site, got: await netcheck(lab, node), expect: p.expect })))));
        }
        const wrong: string[] = [];
        for (const { node, site, got, expect } of results) {
          const seen = { mapping: got.mapping, filtering: got.filtering, hairpin: got.hairpin, portPreserved: got.portPreserved, ipv6: got.ipv6, ...(expect.filtering6 ? { filtering6: got.ipv6Detail.filtering } : {}) };
          t.diagnostic(`${site}/${node}: ${JSON.stringify(seen)}${Object.keys(got.why).length ? ` why ${JSON.stringify(got.why)}` : ""}`);
          if (JSON.stringify(seen) !== JSON.stringify(expect)) wrong.push(`${site}/${node}: got ${JSON.stringify(seen)}, expected ${JSON.stringify(expect)}; why ${JSON.stringify(got.why)}`);
          assert.equal(got.api.ok, true, `${node}: the registry's API accepts the lab's token`);
        }
        assert.deepEqual(wrong, []);

        // Dialling the registry at its tunnel address, the probes still go to its public address (the WireGuard peer's endpoint), not through the tunnel.
        const viaTunnel = await netcheck(lab, "home1", true);
        t.diagnostic(`home1 via the tunnel: STUN to ${viaTunnel.stun} (${viaTunnel.stunVia}): ${viaTunnel.mapping}, ${viaTunnel.filtering}`);
        assert.equal(viaTunnel.stun, `${lab.plan.registry.ip}:3478`);
        assert.deepEqual([viaTunnel.mapping, viaTunnel.filtering, viaTunnel.api.ok], ["endpoint-independent", "address-and-port-dependent", true]);
      },
    );
    await assertNoLeftovers(runId);
  });
});
