/**
 * Node agent at rest: a real `wormhole node` against a real `wormhole registry`, left alone.
 *
 *   netns whb-TAG-r: wireguard-go whbTAGr (DOWN)  <- socket -  wormhole registry  (root netns, 127.0.0.1:PORT)
 *   netns whb-TAG-n: wireguard-go whbTAGn (DOWN)  <- socket -  wormhole node -i whbTAGn -a 127.0.0.1:PORT
 *
 * Both interfaces stay down: no WireGuard packet is sent; the only traffic is gRPC on 127.0.0.1.
 * The node first has to do its job (write the registry's endpoints into its peers); then it is
 * measured, from /proc, for --seconds.
 *
 *   node --import tsx bench/node-idle.ts [--seconds 60] [--peers 10]
 */
import { pollUntil } from "../src/util/wait.js";
import { createWireGuard } from "../src/wg/index.js";
import {
  addPeers,
  bundleBenchCommand,
  fmt,
  labBench,
  machine,
  peakRssKb,
  peerAllowedIp,
  phaseLine,
  privateBundle,
  ProcSampler,
  publicKeys,
  runTag,
  sleep,
  startRegistry,
  startWireGuard,
  startWormhole,
  tokenFile,
  uapiSet,
  verdict,
  wholeNumber,
} from "./lib.js";

interface Flags {
  seconds: number;
  peers: number;
  registryPeers: number;
  warmup: number;
  refresh: string;
  timeout: number;
  bin: string;
}

const f = bundleBenchCommand("node-idle.ts", "Node agent at rest: a real `wormhole node` against a real `wormhole registry`, left alone.", 300)
  .option("--seconds <s>", "how long the node is left alone and measured", wholeNumber, 60)
  .option("--peers <n>", "other nodes: peers of both interfaces, with endpoints on the registry's", wholeNumber, 10)
  .option("--registry-peers <n>", "more peers on the registry's interface only: a bigger snapshot for the node", wholeNumber, 0)
  .option("--warmup <ms>", "pause between the node's first work and the measurement", wholeNumber, 5000)
  .option("--refresh <d>", "the node's --refresh (its default, 15s, when empty)", "")
  .parse()
  .opts<Flags>();

async function main(): Promise<number> {
  return labBench("node-idle", f.timeout, async (cleanup) => {
    const bin = await privateBundle(cleanup, f.bin);
    const tag = runTag();
    console.log(`# node-idle: one node, ${f.peers} other peers (registry: ${f.peers + 1 + f.registryPeers}), left alone ${f.seconds} s (run ${tag})`);
    console.log(machine());
    const reg = await startWireGuard(cleanup, `whb-${tag}-r`, `whb${tag}r`);
    const node = await startWireGuard(cleanup, `whb-${tag}-n`, `whb${tag}n`);
    const others = publicKeys(f.peers);
    // The registry sees the node and every other peer at some NAT mapping.
    await addPeers(reg.iface, [{ hex: node.keys.publicHex }, ...others, ...publicKeys(f.registryPeers)]);
    // The node: the registry as a peer (endpoint, keepalive) and the others without endpoints.
    let body = `public_key=${reg.keys.publicHex}\nendpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\nallowed_ip=10.200.0.1/32\n`;
    for (const [i, k] of others.entries()) body += `public_key=${k.hex}\nallowed_ip=${peerAllowedIp(i + 1)}\n`;
    await uapiSet(node.iface, body);

    const token = tokenFile(cleanup);
    const { registry, port } = await startRegistry(cleanup, bin, { iface: reg.iface, tokenPath: token.path, timeoutMs: 30_000 });
    const t0 = performance.now();
    const agent = startWormhole(
      cleanup,
      bin,
      // No probes: this node runs in the root namespace, where its registry peer's tunnel address
      // (10.200.0.1) is not routed into WireGuard (the prober checks that too, since 20:50).
      // No control socket outside the bench's own files either.
      [
        "node",
        "-a",
        `127.0.0.1:${port}`,
        "-i",
        node.iface,
        "--token-file",
        token.path,
        "--probe-interval",
        "0",
        "--control-socket",
        `${token.path}.ctl.sock`,
        ...(f.refresh ? ["-r", f.refresh] : []),
      ],
      "node",
    );
    const wg = createWireGuard();
    await pollUntil(
      "the node to write the registry's endpoints",
      async () => {
        const d = await wg.getDevice(node.iface);
        return d.peers.filter((p) => p.publicKey !== reg.keys.publicBase64 && p.endpoint !== null).length === f.peers;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 50,
        check: () => {
          if (agent.child.exitCode !== null || agent.child.signalCode !== null) throw new Error(`the node exited (${agent.child.exitCode ?? agent.child.signalCode})`);
        },
      },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (node log: ${agent.log()})`, { cause: err });
    });
    const readyMs = performance.now() - t0;
    console.log(`node pid ${agent.pid}: endpoints of all ${f.peers} peers written ${fmt(readyMs, 0)} ms after start; registry pid ${registry.pid} on 127.0.0.1:${port}`);
    const startHwm = peakRssKb(agent.pid) / 1024;

    await sleep(f.warmup);
    const nodeS = new ProcSampler(agent.pid, 1000).start();
    const regS = new ProcSampler(registry.pid, 1000).start();
    nodeS.mark("a");
    regS.mark("a");
    await sleep(f.seconds * 1000);
    nodeS.mark("b");
    regS.mark("b");
    nodeS.stop();
    regS.stop();
    for (const p of [agent, registry]) if (p.child.exitCode !== null) throw new Error(`a wormhole process died: ${p.log()}`);
    const n = nodeS.phase("a", "b");
    const r = regS.phase("a", "b");
    const hwm = peakRssKb(agent.pid) / 1024;
    console.log("");
    console.log(phaseLine("node, left alone", n));
    console.log(phaseLine("registry (for reference)", r));
    console.log(`node RSS mean ${fmt(n.rssMeanMb, 1)} MB; peak RSS (VmHWM) ${fmt(hwm, 1)} MB over its life (${fmt(startHwm, 1)} MB at the end of start-up)`);
    console.log("");
    console.log(verdict("node RSS (max while idle)", n.rssMaxMb, "<=", 80, "MB"));
    console.log(verdict("node CPU while idle", n.cpuPercent, "<=", 0.5, "%"));
  });
}

process.exitCode = await main();
