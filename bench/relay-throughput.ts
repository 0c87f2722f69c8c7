/**
 * Relayed against direct throughput in the NAT lab, in one run, and what
 * relaying costs the registry.
 *
 *   node --import tsx bench/relay-throughput.ts [--seconds 10] [--pair-limit MBIT]
 *
 * One lab, four nodes: alice and bob behind two home routers (they go
 * direct), carol and dave behind two symmetric NATs (relayed through the
 * registry). The real `wormhole` registry and nodes, started with the seed's
 * command line and no other flag (with --pair-limit, the registry gets
 * `--relay-pair-limit MBIT`: 0 measures the relay without its default cap
 * of 100 Mbit/s per pair). Then iperf3 (TCP, one stream) over the
 * tunnel, alice → bob, then carol → dave, each for --seconds. The registry's
 * CPU time (user + system, from /proc) is read around the relayed run and
 * divided by the bytes relayed. Needs root, the lab's packages and iperf3
 * (`apt-get install iperf3`); builds nothing (`npm run build` first).
 * Traffic stays inside the namespaces the lab makes.
 */
import { readFile } from "node:fs/promises";
import { measurePaths, startAgents, withLab, wormholeAgents, type Lab } from "../src/lab/index.js";
import { inNs } from "../src/lab/wg.js";
import { benchCommand, wholeNumber } from "./lib.js";

const values = benchCommand("relay-throughput.ts", "Relayed against direct throughput in the NAT lab (iperf3), and what relaying costs the registry.")
  .option("--seconds <s>", "iperf3 time per pair, 1 to 120", wholeNumber, 10)
  .option("--pair-limit <mbit>", "the registry's --relay-pair-limit (0: no cap; default: the registry's own)")
  .parse()
  .opts<{ seconds: number; pairLimit?: string }>();
const pairLimit = values.pairLimit;
const seconds = values.seconds;
if (seconds < 1 || seconds > 120) throw new Error(`--seconds \`${values.seconds}' is not a whole number of seconds from 1 to 120`);

/** CPU seconds (user + system) of the registry's agent process, found among the registry namespace's processes. */
async function registryCpuSec(lab: Lab): Promise<number> {
  const pids = (await lab.run(["ip", "netns", "pids", lab.plan.registry.ns])).stdout.split(/\s+/).filter(Boolean);
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (!cmdline.includes("registry")) continue;
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th (clock ticks, 100 a second).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }
  throw new Error("no registry process in the registry's namespace");
}

/** iperf3 from `from` to `to` over the tunnel: received bits per second and bytes. */
async function iperf(lab: Lab, from: string, to: string): Promise<{ bps: number; bytes: number }> {
  const server = await lab.spawn(`iperf3 server ${to}`, lab.node(to).ns, ["iperf3", "-s", "-1", "-B", lab.node(to).tunnelIp], { logName: `${to}.iperf3` });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const r = await lab.run(inNs(lab.node(from).ns, ["iperf3", "-c", lab.node(to).tunnelIp, "-t", String(seconds), "-J"]), { timeoutMs: (seconds + 20) * 1000 });
    const report = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
    return { bps: report.end.sum_received.bits_per_second, bytes: report.end.sum_received.bytes };
  } finally {
    await lab.stopProcess(server);
  }
}

await withLab(
  {
    sites: [
      { name: "ha", nat: "home", nodes: ["alice"] },
      { name: "hb", nat: "home", nodes: ["bob"] },
      { name: "sa", nat: "symmetric", nodes: ["carol"] },
      { name: "sb", nat: "symmetric", nodes: ["dave"] },
    ],
  },
  async (lab) => {
    const agents = wormholeAgents(pairLimit === undefined ? {} : { registryArgs: ["--relay-pair-limit", pairLimit] });
    const start = Date.now();
    await startAgents(lab, agents);
    const paths = await measurePaths(lab, { pairs: [["alice", "bob"], ["carol", "dave"]], startMs: start, timeoutMs: 20_000 });
    for (const p of paths) process.stdout.write(`${p.from} -> ${p.to}: ${p.path}\n`);
    if (paths[0]?.path !== "direct" || paths[1]?.path !== "relayed") throw new Error("expected alice-bob direct and carol-dave relayed");
    const direct = await iperf(lab, "alice", "bob");
    const cpu0 = await registryCpuSec(lab);
    const relayed = await iperf(lab, "carol", "dave");
    const cpu1 = await registryCpuSec(lab);
    const mbps = (bps: number) => (bps / 1e6).toFixed(0);
    const gb = relayed.bytes / 1e9;
    process.stdout.write(
      [
        `direct  (home/home)          ${mbps(direct.bps).padStart(6)} Mbit/s`,
        `relayed (symmetric/symmetric) ${mbps(relayed.bps).padStart(5)} Mbit/s   ${(relayed.bps / direct.bps).toFixed(2)} of direct`,
        `registry CPU while relaying: ${(cpu1 - cpu0).toFixed(1)} s for ${gb.toFixed(2)} GB = ${((cpu1 - cpu0) / gb).toFixed(1)} CPU-s per relayed GB`,
        `(iperf3 -t ${seconds}, one TCP stream, over the tunnel)`,
        "",
      ].join("\n"),
    );
    await agents.stopAll(lab);
  },
);
