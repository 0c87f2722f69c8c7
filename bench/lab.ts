/**
 * Convergence in the NAT lab (cold start and rebinding in BENCHMARKS.md): real
 * wireguard-go behind two NATs, the real `wormhole` registry and nodes.
 *
 *   node --import tsx bench/lab.ts [--runs 10] [--nat home,home] [--cold-only | --outage]
 *
 * Per run, in a fresh lab:
 *  - cold start: the registry runs and both nodes' WireGuard have handshaken
 *    with it; t0 is just before the two node agents are started; the figure is
 *    when a ping over the tunnel, sent every 20 ms, first gets an answer, the
 *    later of alice→bob and bob→alice. It includes starting the node processes.
 *    The path is read off alice's WireGuard right then: relayed (bob's
 *    endpoint is the agent's local relay socket), lan or direct.
 *  - rebinding (not with --cold-only): bob's router loses all its mappings and
 *    masquerades to other ports from then on; the figure is when alice→bob
 *    answers again (pinging every 20 ms from the rebinding on), with alice
 *    pointing at bob's new port. Only for pairs that go direct.
 *  - --outage: the lab has two registries and the nodes are given both; the
 *    first is killed with -9, bob's router rebinds 2 s later (the figure: as
 *    above, with one registry of two down), the registry is started again 10 s
 *    after the kill, and the second figure is from when it listens until
 *    alice's `wormhole status --json` says it is connected (asked every
 *    100 ms; each ask starts a process, ~0.2 s).
 * Needs root and the lab's packages; builds nothing (run `npm run build`).
 * Traffic stays inside the namespaces the lab makes.
 */
import { ALICE, BOB, isNatBehaviour, pairSites, wormholeAgents, withLab, type Lab, type NatBehaviour } from "../src/lab/index.js";
import { REBIND_PORTS } from "../src/lab/scenarios.js";
import { inNs } from "../src/lab/wg.js";
import { controlSocketOf, defaultWormholeCommand } from "../src/lab/agents.js";
import { benchCommand, wholeNumber } from "./lib.js";

const values = benchCommand("lab.ts", "Convergence in the NAT lab: cold start (and rebinding) per NAT pair.")
  .option("--runs <n>", "fresh labs to measure", wholeNumber, 10)
  .option("--nat <a,b>", "the two sites' NAT behaviours", "home,home")
  .option("--cold-only", "measure the cold start only, not rebinding", false)
  .option("--outage", "two registries: rebinding with the first killed, and how soon it is used again when back", false)
  .parse()
  .opts<{ runs: number; nat: string; coldOnly: boolean; outage: boolean }>();
const runs = values.runs;
const nat = values.nat.split(",") as [NatBehaviour, NatBehaviour];
if (runs < 1) throw new Error(`--runs \`${values.runs}' is not a positive whole number`);
if (nat.length !== 2 || !nat.every(isNatBehaviour)) throw new Error(`--nat \`${values.nat}' is not two NAT behaviours`);

/** Resolves with ms from now until `from` first hears back from `to` over the tunnel (pinging every 20 ms), or rejects. */
async function firstAnswer(lab: Lab, from: string, to: string, t0: number, deadlineSec = 30): Promise<number> {
  const ip = lab.node(to).tunnelIp;
  const r = await lab.run(inNs(lab.node(from).ns, ["ping", "-n", "-q", "-c", "1", "-i", "0.02", "-w", String(deadlineSec), ip]), {
    allowFailure: true,
    timeoutMs: (deadlineSec + 5) * 1000,
  });
  if (r.code !== 0) throw new Error(`${from} -> ${to}: no answer within ${deadlineSec}s`);
  return Date.now() - t0;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

const cold: number[] = [];
const rebind: number[] = [];
const backInUse: number[] = [];

/** Ms from now until alice's agent says (`wormhole status --json`) that the registry `name` is connected. */
async function untilConnected(lab: Lab, name: string, t0: number): Promise<number> {
  const [node, script] = defaultWormholeCommand() as [string, string];
  for (;;) {
    const out = await lab.run(inNs(lab.node(ALICE).ns, [node, script, "status", "--json", "--control-socket", controlSocketOf(lab, ALICE)]), { allowFailure: true, timeoutMs: 10_000 });
    const registries = (JSON.parse(out.stdout || "{}") as { registries?: Array<{ name: string; health: string }> }).registries ?? [];
    if (registries.find((r) => r.name === name)?.health === "connected") return Date.now() - t0;
    if (Date.now() - t0 > 30_000) throw new Error(`the registry ${name} was not connected again within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const paths = new Map<string, number>();
/** Targets for the first packet, by path (issue: direct ≤ 0.5 s, LAN ≤ 1 s, relayed ≤ 1.5 s). */
const TARGET_MS: Record<string, number> = { direct: 500, lan: 1_000, relayed: 1_500 };

function pathOf(ep: { ip: string } | null | undefined): string {
  if (!ep) return "none";
  if (ep.ip.startsWith("127.")) return "relayed";
  return /^(10|192\.168|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7]))\./.test(ep.ip) ? "lan" : "direct";
}
for (let i = 0; i < runs; i++) {
  await withLab({ sites: pairSites(nat[0], nat[1]), secondRegistry: values.outage }, async (lab) => {
    const agents = wormholeAgents();
    await agents.startRegistry(lab);
    const t0 = Date.now();
    await Promise.all([agents.startNode(lab, ALICE), agents.startNode(lab, BOB)]);
    const [ab, ba] = await Promise.all([firstAnswer(lab, ALICE, BOB, t0), firstAnswer(lab, BOB, ALICE, t0)]);
    cold.push(Math.max(ab, ba));
    const path = pathOf((await lab.readPeers(ALICE)).find((p) => p.publicKey === lab.publicKey(BOB))?.endpoint);
    paths.set(path, (paths.get(path) ?? 0) + 1);
    if (values.coldOnly || path !== "direct") {
      await agents.stopAll(lab);
      process.stdout.write(`run ${i + 1}/${runs}: cold start ${cold.at(-1)} ms, ${path}\n`);
      return;
    }
    // Let the pair settle (both sides' punch retries over) before disturbing it.
    await new Promise((r) => setTimeout(r, 3_000));
    const bobSite = lab.node(BOB).site;
    const killed = Date.now();
    if (values.outage) {
      await agents.stopRegistryHost(lab, "reg", "SIGKILL");
      await new Promise((r) => setTimeout(r, 2_000));
    }
    await lab.rebind(bobSite, REBIND_PORTS);
    const t1 = Date.now();
    rebind.push(await firstAnswer(lab, ALICE, BOB, t1, 60));
    const ep = (await lab.readPeers(ALICE)).find((p) => p.publicKey === lab.publicKey(BOB))?.endpoint;
    if (!ep || ep.port < REBIND_PORTS[0] || ep.port > REBIND_PORTS[1]) throw new Error(`after rebinding alice points at ${JSON.stringify(ep)}, not bob's new port`);
    if (values.outage) {
      await new Promise((r) => setTimeout(r, Math.max(0, killed + 10_000 - Date.now())));
      await agents.startRegistryHost(lab, "reg");
      const reg = lab.plan.registry;
      backInUse.push(await untilConnected(lab, `${reg.ip}:${reg.grpcPort}`, Date.now()));
    }
    await agents.stopAll(lab);
    process.stdout.write(
      `run ${i + 1}/${runs}: cold start ${cold.at(-1)} ms, ${path}, rebinding ${rebind.at(-1)} ms${values.outage ? ` with a registry down, back in use ${backInUse.at(-1)} ms after it listens` : ""}\n`,
    );
  });
}
const line = (name: string, xs: number[], target: number) =>
  `${name.padEnd(24)} p50 ${String(pct(xs, 50)).padStart(6)} ms  p90 ${String(pct(xs, 90)).padStart(6)} ms  min ${Math.min(...xs)} max ${Math.max(...xs)}  target p50 <= ${target} ms: ${pct(xs, 50) <= target ? "met" : "MISSED"}`;
const mainPath = [...paths].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "none";
process.stdout.write(
  `\nlab ${nat.join("/")}, ${runs} runs, paths: ${[...paths].map(([p, n]) => `${p} ${n}`).join(", ")}\n${line(`cold start -> ${mainPath}`, cold, TARGET_MS[mainPath] ?? 0)}\n` +
    (rebind.length > 0 ? `${line(values.outage ? "rebinding, 1 of 2 down" : "rebinding -> direct", rebind, 3000)}\n` : "") +
    (backInUse.length > 0 ? `${line("registry back in use", backInUse, 2000)}\n` : ""),
);
