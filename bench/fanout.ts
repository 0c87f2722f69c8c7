/**
 * Registry fan-out: how long one endpoint change takes to reach every Watch stream.
 *
 *   netns whb-TAG (ours)                     root netns, 127.0.0.1 only
 *   wireguard-go -f whbTAGr  (DOWN,    <---  wormhole registry (dist/wormhole.cjs) -- gRPC -->  load generator
 *   N peers, set over its socket)            polls the socket                                   (bench/loadgen.ts,
 *            ^                                                                                   another process)
 *            +------------------- the load generator moves one peer's endpoint over the socket --+
 *
 *   node --import tsx bench/fanout.ts [--peers 10000] [--streams 10000] [--connections 500] ...
 *
 * Prints: set-up times, the registry's CPU and RSS per phase, and per change the time from the
 * change to its arrival on each stream (p50/p99/max), with the targets (p99 <= 1 s, RSS <= 400 MB).
 */
import type { WatchConfig } from "./loadgen.js";
import {
  bundleBenchCommand,
  type Cleanup,
  fmt,
  labBench,
  parseEnv,
  peakRssKb,
  percentile,
  privateBundle,
  phaseLine,
  ProcSampler,
  registryBench,
  runLoadgen,
  sleep,
  startRegistry,
  stopChild,
  uapiGetSize,
  verdict,
  wholeNumber,
} from "./lib.js";

interface Flags {
  peers: number;
  streams: number;
  connections: number;
  batch: number;
  client: string;
  interest: number;
  rounds: number;
  gap: number;
  settle: number;
  idle: number;
  pollInterval: string;
  roundTimeout: number;
  timeout: number;
  bin: string;
  registryNodeArgs: string;
  registryEnv: string;
  baselineBin: string;
}

const f = bundleBenchCommand("fanout.ts", "Registry fan-out: how long one endpoint change takes to reach every Watch stream.", 900)
  .option("--peers <n>", "peers on the registry's interface", wholeNumber, 10_000)
  .option("--streams <n>", "Watch streams the load generator opens", wholeNumber, 10_000)
  .option("--connections <n>", "HTTP/2 connections the streams share (the registry serves at most 32 calls per connection at once)", wholeNumber, 500)
  .option("--batch <n>", "streams opened at once; the next batch waits for their snapshots", wholeNumber, 100)
  .option("--client <c>", "load generator's gRPC client: http2 (a minimal one on node:http2) or grpc-js", "http2")
  .option("--interest <n>", "each stream watches N peers (interest-filtered Watch, as a node asks); 0: every peer", wholeNumber, 0)
  .option("--rounds <n>", "endpoint changes to time", wholeNumber, 5)
  .option("--gap <ms>", "mean pause before each change, randomised 0.5-1.5x", wholeNumber, 1500)
  .option("--settle <ms>", "pause after the last snapshot before the first change", wholeNumber, 3000)
  .option("--idle <ms>", "registry measured with no watcher first", wholeNumber, 3000)
  .option("--poll-interval <d>", "registry --poll-interval", "250ms")
  .option("--round-timeout <ms>", "give up on a change after this", wholeNumber, 15_000)
  .option("--registry-node-args <\"ARGS\">", 'extra node flags for the registry, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"', "")
  .option("--registry-env <\"K=V ...\">", 'extra environment for the registry, e.g. "MALLOC_MMAP_THRESHOLD_=131072"', "")
  .option("--baseline-bin <path>", "then the same load against this other bundle, and a current/baseline table", "")
  .parse()
  .opts<Flags>();

interface Summary {
  readonly label: string;
  readonly snapshotSeconds: number;
  readonly snapshotCpuSec: number;
  readonly idleWatchersCpuPercent: number;
  readonly idleWatchersRssMb: number;
  readonly peakRssMb: number;
  readonly p50: number;
  readonly p99: number;
  readonly fanP99: number;
  /** Median over rounds of each round's fan-out p99: less swayed by one slow round. */
  readonly fanRoundMedian: number;
  readonly missing: number;
}

/** One registry process (bundle `bin`) under the whole load; prints its figures. */
async function scenario(
  f: Flags,
  cleanup: Cleanup,
  bin: string,
  label: string,
  iface: string,
  wgPid: number,
  keys: ReadonlyArray<{ base64: string }>,
  token: { path: string; token: string },
  portBase: number,
): Promise<Summary> {
  console.log("");
  console.log(`## ${label}: ${bin}`);
  const t = performance.now();
  const { registry, port, serving } = await startRegistry(cleanup, bin, {
    iface,
    tokenPath: token.path,
    name: `registry (${label})`,
    args: ["--poll-interval", f.pollInterval],
    nodeArgs: f.registryNodeArgs.split(" ").filter(Boolean),
    env: parseEnv(f.registryEnv),
  });
  console.log(`registry: pid ${registry.pid}, 127.0.0.1:${port}, serving ${String(serving.peers)} peers ${fmt(performance.now() - t, 0)} ms after start`);

  const sampler = new ProcSampler(registry.pid, 50).start();
  const wgSampler = new ProcSampler(wgPid, 200).start();
  sampler.mark("start");
  wgSampler.mark("start");
  await sleep(f.idle);
  sampler.mark("idle");
  wgSampler.mark("idle");

  const config: WatchConfig = {
    mode: "watch",
    address: `127.0.0.1:${port}`,
    token: token.token,
    streams: f.streams,
    connections: f.connections,
    batch: f.batch,
    client: f.client === "grpc-js" ? "grpc-js" : "http2",
    settleMs: f.settle,
    rounds: f.rounds,
    roundTimeoutMs: f.roundTimeout,
    gapMs: f.gap,
    iface,
    portBase,
    // With --interest, streams watch keys[0 .. streams + interest - 2]: the changes pick among those.
    targets: Array.from({ length: f.rounds }, (_, r) => {
      const span = f.interest > 0 ? Math.min(keys.length, f.streams) : keys.length;
      return keys[Math.floor(((r + 0.5) / f.rounds) * span)]?.base64 ?? "";
    }),
    ...(f.interest > 0 ? { interest: { keys: keys.map((k) => k.base64), perStream: f.interest } } : {}),
  };
  const result = await runLoadgen(cleanup, config, sampler);
  sampler.stop();
  wgSampler.mark("end");
  wgSampler.stop();
  const hwmMb = peakRssKb(registry.pid) / 1024;
  if (registry.child.exitCode !== null) throw new Error(`registry died: ${registry.log()}`);
  await stopChild(registry.child);

  console.log(
    `snapshots: ${result.snapshots}/${result.opened} in ${fmt(result.snapshotSeconds, 2)} s, ${fmt(result.snapshotBytes / Math.max(1, result.snapshots) / 1e3, 1)} kB each, ${fmt(result.snapshotBytes / 1e9, 2)} GB in all; load generator (${config.client}) cpu ${fmt(result.loadgenCpuSec.snapshots, 1)} s, rss ${fmt(result.loadgenRssMb, 0)} MB`,
  );
  if (Object.keys(result.errors).length > 0) console.log(`stream errors: ${JSON.stringify(result.errors)}`);
  console.log("");
  console.log("registry process (from /proc):");
  const snap = sampler.phase("snapshots-start", "snapshots-done");
  const idleW = sampler.phase("snapshots-done", "rounds-start");
  console.log(phaseLine("idle, 0 watchers (polling)", sampler.phase("start", "idle")));
  const wgIdle = wgSampler.phase("start", "idle");
  console.log(`wireguard-go (pid ${wgPid}) while the registry idles: cpu ${fmt(wgIdle.cpuSec, 2)} s = ${fmt(wgIdle.cpuPercent, 1)} %; over the whole run ${fmt(wgSampler.phase("start", "end").cpuPercent, 1)} %`);
  console.log(phaseLine("opening streams+snapshots", snap));
  console.log(phaseLine(`idle, ${result.opened} watchers`, idleW));
  console.log(phaseLine("change rounds", sampler.phase("rounds-start", "rounds-done")));
  console.log(`peak RSS (VmHWM) over the whole run: ${fmt(hwmMb, 0)} MB`);

  console.log("");
  console.log("per change: ms from the set on the socket to the event's arrival on each stream");
  console.log("  first: the first stream's arrival (≈ the registry's next poll + read + one write)");
  console.log("  fan-out: arrival minus the first arrival (the registry's writes to all streams, and the load generator's reads)");
  console.log("round  received    first      p50      p99      max   fan-out p99  fan-out max  set ms  registry cpu  rss at end");
  const all: number[] = [];
  const fan: number[] = [];
  const roundFan: number[] = [];
  let missing = 0;
  for (const r of result.rounds) {
    const l = r.latenciesMs;
    const first = percentile(l, 0);
    const spread = l.map((x) => x - first);
    all.push(...l);
    fan.push(...spread);
    roundFan.push(percentile(spread, 99));
    missing += r.expected - r.received;
    const cpu = sampler.phase(`round-${r.round}-start`, `round-${r.round}-done`);
    console.log(
      [
        String(r.round).padStart(5),
        `${r.received}/${r.expected}`.padStart(11),
        fmt(first, 0).padStart(7),
        fmt(percentile(l, 50), 0).padStart(8),
        fmt(percentile(l, 99), 0).padStart(8),
        fmt(percentile(l, 100), 0).padStart(8),
        fmt(percentile(spread, 99), 0).padStart(13),
        fmt(percentile(spread, 100), 0).padStart(12),
        fmt(r.setMs, 1).padStart(7),
        `${fmt(cpu.cpuSec, 2)} s`.padStart(13),
        `${fmt(cpu.rssEndMb, 0)} MB`.padStart(11),
      ].join(" "),
    );
  }
  console.log(
    `${"all".padStart(5)} ${`${all.length}/${result.rounds.reduce((n, r) => n + r.expected, 0)}`.padStart(11)} ${"".padStart(7)} ${fmt(percentile(all, 50), 0).padStart(8)} ${fmt(percentile(all, 99), 0).padStart(8)} ${fmt(percentile(all, 100), 0).padStart(8)} ${fmt(percentile(fan, 99), 0).padStart(13)} ${fmt(percentile(fan, 100), 0).padStart(12)}`,
  );
  console.log(`load generator cpu during the rounds: ${fmt(result.loadgenCpuSec.rounds, 2)} s`);
  console.log("");
  const p99 = missing > 0 ? Infinity : percentile(all, 99);
  const fanP99 = missing > 0 ? Infinity : percentile(fan, 99);
  console.log(verdict(`${label}: p99 change → every stream (end to end)`, p99, "<=", 1000, "ms"));
  console.log(verdict(`${label}: p99 fan-out alone (arrival - first arrival)`, fanP99, "<=", 1000, "ms"));
  console.log(verdict(`${label}: registry peak RSS`, hwmMb, "<=", 400, "MB"));
  if (missing > 0) console.log(`(${missing} deliveries never arrived within ${f.roundTimeout} ms)`);
  return {
    label,
    snapshotSeconds: result.snapshotSeconds,
    snapshotCpuSec: snap.cpuSec,
    idleWatchersCpuPercent: idleW.cpuPercent,
    idleWatchersRssMb: idleW.rssEndMb,
    peakRssMb: hwmMb,
    p50: percentile(all, 50),
    p99,
    fanP99,
    fanRoundMedian: percentile(roundFan, 50),
    missing,
  };
}

async function main(): Promise<number> {
  return labBench("fanout", f.timeout, async (cleanup) => {
    const notes = f.registryEnv || f.registryNodeArgs ? [`registry started with: ${[f.registryEnv, "node", f.registryNodeArgs].filter(Boolean).join(" ")}`] : [];
    const { bin, wg, keys, token, keygenMs, addPeersMs } = await registryBench(cleanup, {
      title: `fanout: ${f.peers} peers, ${f.streams} Watch streams over ${f.connections} connections, ${f.rounds} changes`,
      notes,
      bin: f.bin,
      suffix: "r",
      peers: f.peers,
    });
    const baseline = f.baselineBin ? await privateBundle(cleanup, f.baselineBin) : null;
    let t: number;
    const getTimes: number[] = [];
    let replyBytes = 0;
    for (let i = 0; i < 5; i++) {
      t = performance.now();
      replyBytes = await uapiGetSize(wg.iface);
      getTimes.push(performance.now() - t);
    }
    console.log(
      `set-up: ${f.peers} key pairs in ${fmt(keygenMs, 0)} ms; peers added over the socket in ${fmt(addPeersMs, 0)} ms; get=1 reply ${fmt(replyBytes / 1e6, 2)} MB, read from the socket in ${fmt(percentile(getTimes, 50), 0)} ms (median of 5, unparsed)`,
    );
    const runs: Summary[] = [await scenario(f, cleanup, bin, "current", wg.iface, wg.daemon.pid ?? 0, keys, token, 40_000)];
    if (baseline) runs.push(await scenario(f, cleanup, baseline, "baseline", wg.iface, wg.daemon.pid ?? 0, keys, token, 41_000));
    const [a, b] = runs;
    if (a && b) {
      console.log("");
      console.log(`## current vs baseline, same run (ratio = current / baseline)`);
      const row = (what: string, x: number, y: number, unit: string, d = 1) =>
        console.log(`${what.padEnd(34)} ${`${fmt(x, d)} ${unit}`.padStart(12)} ${`${fmt(y, d)} ${unit}`.padStart(12)}   ×${fmt(x / y, 2)}`);
      console.log(`${"".padEnd(34)} ${"current".padStart(12)} ${"baseline".padStart(12)}`);
      row("snapshot phase, wall", a.snapshotSeconds, b.snapshotSeconds, "s");
      row("snapshot phase, registry cpu", a.snapshotCpuSec, b.snapshotCpuSec, "s");
      row("registry cpu per snapshot", (1000 * a.snapshotCpuSec) / f.streams, (1000 * b.snapshotCpuSec) / f.streams, "ms", 2);
      row(`rss, idle with ${f.streams} watchers`, a.idleWatchersRssMb, b.idleWatchersRssMb, "MB", 0);
      row("peak rss", a.peakRssMb, b.peakRssMb, "MB", 0);
      row("change → stream p50", a.p50, b.p50, "ms", 0);
      row("change → stream p99", a.p99, b.p99, "ms", 0);
      row("fan-out p99", a.fanP99, b.fanP99, "ms", 0);
      row("fan-out p99, median round", a.fanRoundMedian, b.fanRoundMedian, "ms", 0);
    }
  });
}

process.exitCode = await main();
