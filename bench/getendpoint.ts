/**
 * The seed's GetEndpoint on a big interface: requests per second at several concurrency levels.
 *
 *   netns whb-TAG: wireguard-go whbTAGr (DOWN, N peers)  <- socket -  wormhole registry (root netns,
 *   127.0.0.1:PORT)  <- gRPC -  load generator (bench/loadgen.ts, another process): C closed-loop
 *   callers, one connection each
 *
 *   node --import tsx bench/getendpoint.ts [--peers 10000] [--levels 1,8,64] [--seconds 5]
 */
import type { GetEndpointConfig } from "./loadgen.js";
import {
  bundleBenchCommand,
  fmt,
  labBench,
  parseEnv,
  peakRssKb,
  percentile,
  ProcSampler,
  registryBench,
  runLoadgen,
  sleep,
  startRegistry,
  wholeNumber,
} from "./lib.js";

interface Flags {
  peers: number;
  levels: string;
  seconds: number;
  warmup: number;
  registryEnv: string;
  timeout: number;
  bin: string;
}

const f = bundleBenchCommand("getendpoint.ts", "The seed's GetEndpoint on a big interface: requests per second at several concurrency levels.", 600)
  .option("--peers <n>", "peers on the registry's interface", wholeNumber, 10_000)
  .option("--levels <list>", "concurrency levels, callers in flight", "1,8,64")
  .option("--seconds <s>", "measured time per level", wholeNumber, 5)
  .option("--warmup <ms>", "unmeasured time per level first", wholeNumber, 1000)
  .option("--registry-env <\"K=V ...\">", "extra environment for the registry", "")
  .parse()
  .opts<Flags>();

async function main(): Promise<number> {
  const levels = f.levels.split(",").map(Number);
  if (levels.some((l) => !Number.isInteger(l) || l < 1 || l > 1000)) {
    console.error(`--levels ${f.levels}: whole numbers from 1 to 1000, comma-separated`);
    return 2;
  }
  return labBench("getendpoint", f.timeout, async (cleanup) => {
    const { bin, wg, token } = await registryBench(cleanup, {
      title: `getendpoint: ${f.peers} peers, concurrency ${levels.join("/")}, ${f.seconds} s each`,
      bin: f.bin,
      suffix: "r",
      peers: f.peers,
    });
    const { registry, port } = await startRegistry(cleanup, bin, { iface: wg.iface, tokenPath: token.path, env: parseEnv(f.registryEnv) });
    console.log(`registry pid ${registry.pid} on 127.0.0.1:${port}`);
    const sampler = new ProcSampler(registry.pid, 100).start();
    sampler.mark("idle-start");
    await sleep(2000);
    sampler.mark("idle-end");

    const config: GetEndpointConfig = {
      mode: "getendpoint",
      address: `127.0.0.1:${port}`,
      token: token.token,
      levels,
      secondsPerLevel: f.seconds,
      warmupMs: f.warmup,
      expectPeers: f.peers,
    };
    const result = await runLoadgen(cleanup, config, sampler);
    sampler.stop();
    if (registry.child.exitCode !== null) throw new Error(`registry died: ${registry.log()}`);

    const idle = sampler.phase("idle-start", "idle-end");
    console.log(`registry idle (polling ${f.peers} peers): cpu ${fmt(idle.cpuPercent, 1)} %, rss ${fmt(idle.rssEndMb, 0)} MB`);
    console.log("");
    console.log("concurrency    req/s   p50 ms   p99 ms   failed  reply bytes  bytes/peer  peers  registry cpu  registry rss max  loadgen cpu");
    for (const l of result.levels) {
      const s = sampler.phase(`level-${l.concurrency}-start`, `level-${l.concurrency}-done`);
      console.log(
        [
          String(l.concurrency).padStart(11),
          fmt(l.ok / l.seconds, 1).padStart(8),
          fmt(percentile(l.latenciesMs, 50), 1).padStart(8),
          fmt(percentile(l.latenciesMs, 99), 1).padStart(8),
          String(l.failed).padStart(8),
          String(l.replyBytes).padStart(12),
          fmt(l.replyBytes / Math.max(1, l.peersInReply), 1).padStart(11),
          String(l.peersInReply).padStart(6),
          `${fmt(s.cpuPercent, 0)} %`.padStart(13),
          `${fmt(s.rssMaxMb, 0)} MB`.padStart(17),
          `${fmt((100 * l.loadgenCpuSec) / l.seconds, 0)} %`.padStart(12),
        ].join(" "),
      );
      if (l.firstError) console.log(`   first error: ${l.firstError}`);
    }
    console.log(`registry peak RSS (VmHWM) over the run: ${fmt(peakRssKb(registry.pid) / 1024, 0)} MB`);
    console.log("(reply bytes: the protobuf message; gRPC adds a 5-byte frame header and HTTP/2 framing)");
  });
}

process.exitCode = await main();
