/**
 * The registry under attack: what legitimate clients see while each attack of issue 12 runs at
 * full speed.
 *
 *   netns whb-TAG (ours)                  root netns, 127.0.0.1 only
 *   wireguard-go -f whbTAGh (DOWN,  <---  wormhole registry (dist/wormhole.cjs, fresh for each phase)
 *   N peers + one insider peer                 ^            ^
 *   whose allowed IP is 127.0.0.2/32)          |            +-- attacker (bench/hostile-attacker.ts, its own process)
 *                                              +-- this process: the legitimate clients
 *
 *   node --import tsx bench/hostile.ts [--peers 10000] [--seconds 10] [--attacks a,b,...]
 *
 * Each phase starts a fresh registry, lets it settle, then runs one attack (or none: "baseline")
 * for --seconds while the legitimate clients, each on a connection of its own, measure:
 *  - GetPeers: back-to-back calls, latency p50/p99/max and failures;
 *  - Watch join: a new connection, a Watch of 10 peers (as a node asks), time to its snapshot;
 *    and the same for a Watch of every peer;
 *  - change: every second one of those 10 peers' endpoint is moved on the interface; time from
 *    the set to its arrival on a long-lived Watch of the 10 peers and on one of every peer;
 *  - /healthz over HTTP: back-to-back, latency and failures;
 *  - the registry's CPU and RSS from /proc.
 * Bounded: phases × (--seconds + a few s of set-up); every connection to 127.0.0.1; --timeout aborts.
 */
import { fork } from "node:child_process";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { v1Proto, type WatchEvent__Output } from "../src/rpc/proto.js";
import { ATTACKS, type Attack, type AttackConfig, type AttackResult } from "./hostile-attacker.js";
import {
  bundleBenchCommand,
  type Cleanup,
  fmt,
  keyPair,
  labBench,
  peakRssKb,
  percentile,
  ProcSampler,
  registryBench,
  ROOT,
  sleep,
  startRegistry,
  stopChild,
  uapiSet,
  wholeNumber,
} from "./lib.js";

interface Flags {
  peers: number;
  seconds: number;
  attacks: string;
  connections: number;
  settle: number;
  timeout: number;
  bin: string;
}

const f = bundleBenchCommand("hostile.ts", "The registry under attack: what legitimate clients see while each attack of issue 12 runs.", 900)
  .option("--peers <n>", "peers on the registry's interface", wholeNumber, 10_000)
  .option("--seconds <s>", "length of each phase", wholeNumber, 10)
  .option("--attacks <list>", `comma-separated, or "all": ${ATTACKS.join(", ")}`, "all")
  .option("--connections <n>", "connections for connection-flood and sockets for http-slowloris", wholeNumber, 2000)
  .option("--settle <ms>", "pause after the registry starts, before measuring", wholeNumber, 2000)
  .parse()
  .opts<Flags>();

const INSIDER_ADDRESS = "127.0.0.2";
const CALL_TIMEOUT_MS = 10_000;

interface Legit {
  getPeers: number[];
  getPeersFailed: Record<string, number>;
  joinSome: number[];
  joinAll: number[];
  joinFailed: Record<string, number>;
  changeSome: number[];
  changeAll: number[];
  changesSent: number;
  healthz: number[];
  healthzFailed: Record<string, number>;
  watchErrors: Record<string, number>;
}

let changeCounter = 0;
const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

function metadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

/** A v1 client on a connection of its own. */
function ownClient(port: number): InstanceType<typeof v1Proto.Registry> {
  return new v1Proto.Registry(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": 64 << 20,
  });
}

/** The legitimate clients, until `until` (performance.now()). */
async function legitimate(port: number, httpPort: number, token: string, iface: string, watched: ReadonlyArray<{ hex: string; base64: string }>, until: number): Promise<Legit> {
  const r: Legit = { getPeers: [], getPeersFailed: {}, joinSome: [], joinAll: [], joinFailed: {}, changeSome: [], changeAll: [], changesSent: 0, healthz: [], healthzFailed: {}, watchErrors: {} };
  const keys = watched.map((k) => k.base64);
  const going = () => performance.now() < until;

  const getPeersLoop = async () => {
    const client = ownClient(port);
    while (going()) {
      const t = performance.now();
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.GetPeers({}, metadata(token), { deadline: Date.now() + CALL_TIMEOUT_MS }, (e) => resolve(e)));
      if (err) bump(r.getPeersFailed, grpc.status[err.code] ?? String(err.code));
      else r.getPeers.push(performance.now() - t);
    }
    client.close();
  };

  const join = (peerPublicKeys: string[]): Promise<number | string> =>
    new Promise((resolve) => {
      const client = ownClient(port);
      const t = performance.now();
      const call = client.Watch({ publicKey: "", peerPublicKeys }, metadata(token));
      const timer = setTimeout(() => finish("no snapshot in 10 s"), CALL_TIMEOUT_MS);
      const finish = (v: number | string) => {
        clearTimeout(timer);
        call.removeAllListeners("data");
        call.on("error", () => {});
        call.cancel();
        client.close();
        resolve(v);
      };
      call.on("data", () => finish(performance.now() - t));
      call.on("error", (e: grpc.ServiceError) => finish(grpc.status[e.code] ?? String(e.code)));
    });
  const joinLoop = async () => {
    while (going()) {
      for (const [list, into] of [
        [keys, r.joinSome],
        [[], r.joinAll],
      ] as const) {
        const v = await join([...list]);
        if (typeof v === "number") into.push(v);
        else bump(r.joinFailed, v);
      }
    }
  };

  // Long-lived watchers and the changes they time.
  const arrivals = new Map<string, (which: "some" | "all") => void>();
  let stopping = false;
  const longWatch = (which: "some" | "all") => {
    const client = ownClient(port);
    const call = client.Watch({ publicKey: "", peerPublicKeys: which === "some" ? keys : [] }, metadata(token));
    call.on("data", (e: WatchEvent__Output) => {
      const ep = e.changed?.endpoint;
      if (ep) arrivals.get(`${e.changed?.publicKey} ${ep.port}`)?.(which);
    });
    call.on("error", (e: grpc.ServiceError) => {
      if (!stopping) bump(r.watchErrors, `${which}: ${grpc.status[e.code] ?? e.code}`);
    });
    return () => {
      stopping = true;
      call.cancel();
      client.close();
    };
  };
  const stops = [longWatch("some"), longWatch("all")];
  await sleep(1000); // their snapshots (at 10,000 peers, ~1 MB for the one of every peer)
  const changeLoop = async () => {
    let n = 0;
    while (going()) {
      const k = watched[n++ % watched.length];
      if (!k) break;
      const port = 20000 + (changeCounter++ % 40000); // never the endpoint a peer has (phases share the interface)
      const t = performance.now();
      const seen = new Set<string>();
      arrivals.set(`${k.base64} ${port}`, (which) => {
        if (seen.has(which)) return;
        seen.add(which);
        (which === "some" ? r.changeSome : r.changeAll).push(performance.now() - t);
      });
      await uapiSet(iface, `public_key=${k.hex}\nendpoint=198.51.100.200:${port}\n`);
      r.changesSent++;
      await sleep(1000);
    }
  };

  const healthzLoop = async () => {
    while (going()) {
      const t = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
        await res.text();
        if (res.status === 200) r.healthz.push(performance.now() - t);
        else bump(r.healthzFailed, String(res.status));
      } catch (err) {
        bump(r.healthzFailed, (err as Error).name);
        await sleep(50);
      }
    }
  };

  await Promise.all([getPeersLoop(), joinLoop(), changeLoop(), healthzLoop()]);
  await sleep(1500); // the last change's arrivals
  for (const stop of stops) stop();
  return r;
}

function runAttacker(cleanup: Cleanup, config: AttackConfig): Promise<AttackResult> {
  const child = cleanup.process(
    fork(join(ROOT, "bench", "hostile-attacker.ts"), [], { execArgv: ["--import", "tsx"], cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    `attacker ${config.attack}`,
  );
  return new Promise((resolve, reject) => {
    child.on("message", (m: AttackResult) => resolve(m));
    child.on("exit", (code, signal) => reject(new Error(`attacker exited (${code ?? signal}) without a result`)));
    child.send(config);
  });
}

const stat = (xs: number[]) => `${fmt(percentile(xs, 50), 0)}/${fmt(percentile(xs, 99), 0)}/${fmt(percentile(xs, 100), 0)}`;
const fails = (m: Record<string, number>) => (Object.keys(m).length === 0 ? "" : ` fail ${JSON.stringify(m)}`);

async function main(): Promise<number> {
  const attacks: Array<Attack | "baseline"> = ["baseline", ...(f.attacks === "all" ? ATTACKS : (f.attacks.split(",") as Attack[]))];
  for (const a of attacks) if (a !== "baseline" && !ATTACKS.includes(a)) throw new Error(`unknown attack ${a}`);
  return labBench("hostile", f.timeout, async (cleanup) => {
    const { bin, wg, keys, token } = await registryBench(cleanup, {
      title: `hostile: ${f.peers} peers, ${f.seconds} s per phase, phases: ${attacks.join(", ")}`,
      bin: f.bin,
      suffix: "h",
      peers: f.peers,
    });
    const insider = keyPair();
    await uapiSet(wg.iface, `public_key=${insider.publicHex}\nallowed_ip=${INSIDER_ADDRESS}/32\n`);
    const watched = keys.slice(0, 10);
    console.log("");
    console.log("legitimate clients, ms p50/p99/max (failures by status):");
    console.log("  getpeers: back-to-back GetPeers; join10/joinall: new connection → snapshot of 10 peers / of every peer;");
    console.log("  chg10/chgall: endpoint set on the interface → event on a long-lived Watch of 10 peers / of every peer; healthz: GET /healthz");
    console.log("");
    for (const attack of attacks) {
      const started = await startRegistry(cleanup, bin, { iface: wg.iface, tokenPath: token.path, name: `registry (${attack})`, http: true });
      const { registry, port } = started;
      const httpPort = started.httpPort ?? 0;
      await sleep(f.settle);
      const sampler = new ProcSampler(registry.pid, 100).start();
      sampler.mark("start");
      const until = performance.now() + f.seconds * 1000;
      const attacker =
        attack === "baseline"
          ? Promise.resolve(null)
          : runAttacker(cleanup, {
              attack,
              port,
              httpPort,
              token: token.token,
              seconds: f.seconds,
              connections: f.connections,
              peerKeys: keys.slice(0, 512).map((k) => k.base64),
              insiderAddress: INSIDER_ADDRESS,
            });
      const [legit, result] = await Promise.all([legitimate(port, httpPort, token.token, wg.iface, watched, until), attacker]);
      sampler.mark("end");
      sampler.stop();
      const ph = sampler.phase("start", "end");
      const died = registry.child.exitCode !== null || registry.child.signalCode !== null;
      const hwm = peakRssKb(registry.pid) / 1024;
      await stopChild(registry.child);
      console.log(`## ${attack}${result ? `: ${result.note}` : ""}`);
      if (result) console.log(`attacker: ${result.operations} operations, ${fmt(result.bytesSent / 1e6, 1)} MB sent, answered ${JSON.stringify(result.statuses)}`);
      console.log(`registry: ${died ? "DIED; " : ""}cpu ${fmt(ph.cpuPercent, 0)} %, rss ${fmt(ph.rssStartMb, 0)} → ${fmt(ph.rssEndMb, 0)} MB (max ${fmt(ph.rssMaxMb, 0)}, VmHWM ${fmt(hwm, 0)})`);
      console.log(
        `legit: getpeers ${stat(legit.getPeers)} (n=${legit.getPeers.length})${fails(legit.getPeersFailed)} | join10 ${stat(legit.joinSome)} | joinall ${stat(legit.joinAll)}${fails(legit.joinFailed)}`,
      );
      console.log(
        `       chg10 ${stat(legit.changeSome)} (${legit.changeSome.length}/${legit.changesSent}) | chgall ${stat(legit.changeAll)} (${legit.changeAll.length}/${legit.changesSent})${fails(legit.watchErrors)} | healthz ${stat(legit.healthz)}${fails(legit.healthzFailed)}`,
      );
      console.log("");
    }
  });
}

process.exitCode = await main();
