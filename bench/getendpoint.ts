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
  addPeers,
  DEFAULT_BIN,
  fmt,
  machine,
  parseEnv,
  parseFlags,
  peakRssKb,
  percentile,
  privateBundle,
  ProcSampler,
  publicKeys,
  labBench,
  runLoadgen,
  runTag,
  sleep,
  startWireGuard,
  startWormhole,
  tokenFile,
} from "./lib.js";

const USAGE = `usage: node --import tsx bench/getendpoint.ts [flags]
  --peers N       peers on the registry's interface (10000)
  --levels LIST   concurrency levels, callers in flight (1,8,64)
  --seconds S     measured time per level (5)
  --warmup MS     unmeasured time per level first (1000)
  --registry-env "K=V ..."  extra environment for the registry ("")
  --timeout S     abort the whole run after this many seconds (600)
  --bin PATH      the wormhole bundle (dist/wormhole.cjs)`;

async function main(): Promise<number> {
  const f = parseFlags(USAGE, { peers: 10_000, levels: "1,8,64", seconds: 5, warmup: 1000, registryEnv: "", timeout: 600, bin: DEFAULT_BIN });
  const levels = f.levels.split(",").map(Number);
  if (levels.some((l) => !Number.isInteger(l) || l < 1 || l > 1000)) {
    console.error(`--levels ${f.levels}: whole numbers from 1 to 1000, comma-separated`);
    return 2;
  }
  return labBench("getendpoint", f.timeout, async (cleanup) => {
    const bin = await privateBundle(cleanup, f.bin);
    const tag = runTag();
    console.log(`# getendpoint: ${f.peers} peers, concurrency ${levels.join("/")}, ${f.seconds} s each (run ${tag})`);
    console.log(machine());
    const wg = await startWireGuard(cleanup, `whb-${tag}`, `whb${tag}r`);
    await addPeers(wg.iface, publicKeys(f.peers));
    const token = tokenFile(cleanup);
    const registry = startWormhole(cleanup, bin, ["registry", "-i", wg.iface, "-a", "127.0.0.1:0", "--token-file", token.path], "registry", [], parseEnv(f.registryEnv));
    const port = Number((await registry.waitForLog("registry serving", 60_000)).port);
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
