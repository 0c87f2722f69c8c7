/**
 * Micro-benches, in this process, no root, no I/O: what the registry does with a big interface.
 * - parseUapiGet on a synthetic wireguard-go `get=1` reply (same line order as wireguard-go);
 * - the registry's per-poll work after the parse (nextPeerMap + diffPeers);
 * - encoding what it serves: a Watch snapshot, a GetEndpoint reply, one Watch change event.
 *
 *   node --import tsx bench/uapi-parse.ts [--peers 10000] [--iterations 30]
 */
import { randomBytes } from "node:crypto";
import { peerInfo, diffPeers, nextPeerMap, seedReply } from "../src/registry/view.js";
import { seedProto, v1Proto } from "../src/rpc/proto.js";
import { parseUapiGet } from "../src/wg/uapi-parse.js";
import { benchCommand, fmt, machine, percentile, wholeNumber } from "./lib.js";

function syntheticReply(peers: number, allowedIps: number): string {
  const now = Math.floor(Date.now() / 1000);
  const lines: string[] = [`private_key=${randomBytes(32).toString("hex")}`, "listen_port=51820"];
  for (let i = 0; i < peers; i++) {
    lines.push(`public_key=${randomBytes(32).toString("hex")}`, `preshared_key=${"0".repeat(64)}`, "protocol_version=1");
    if (i % 10 === 9) lines.push(`endpoint=[2001:db8::${(i % 65535).toString(16)}]:${20000 + (i % 40000)}`);
    else if (i % 10 !== 8) lines.push(`endpoint=198.51.100.${1 + (i % 250)}:${20000 + (i % 40000)}`); // 1 in 10 has none
    lines.push(
      `last_handshake_time_sec=${now - (i % 180)}`,
      `last_handshake_time_nsec=${(i * 7919) % 1_000_000_000}`,
      `tx_bytes=${i * 1234}`,
      `rx_bytes=${i * 4321}`,
      "persistent_keepalive_interval=25",
    );
    for (let a = 0; a < allowedIps; a++) {
      lines.push(a % 2 === 0 ? `allowed_ip=10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32` : `allowed_ip=fd00::${i.toString(16)}:${a}/128`);
    }
  }
  lines.push("errno=0", "", "");
  return lines.join("\n");
}

function time(what: string, iterations: number, fn: () => unknown): number[] {
  for (let i = 0; i < 5; i++) fn();
  const ms: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    fn();
    ms.push(performance.now() - t);
  }
  console.log(
    `${what.padEnd(46)} min ${fmt(Math.min(...ms), 2).padStart(7)}  p50 ${fmt(percentile(ms, 50), 2).padStart(7)}  p90 ${fmt(percentile(ms, 90), 2).padStart(7)} ms`,
  );
  return ms;
}

const f = benchCommand("uapi-parse.ts", "Micro-benches, in this process, no root: what the registry does with a big interface.")
  .option("--peers <n>", "peers in the synthetic reply", wholeNumber, 10_000)
  .option("--iterations <n>", "timed runs of each step, after 5 untimed ones", wholeNumber, 30)
  .option("--allowed-ips <n>", "allowed IPs per peer (2: one IPv4, one IPv6)", wholeNumber, 2)
  .parse()
  .opts<{ peers: number; iterations: number; allowedIps: number }>();
console.log(`# uapi-parse: ${f.peers} peers, ${f.allowedIps} allowed IPs each, ${f.iterations} timed runs per step`);
console.log(machine());
const reply = syntheticReply(f.peers, f.allowedIps);
console.log(`synthetic get=1 reply: ${fmt(reply.length / 1e6, 2)} MB, ${reply.split("\n").length} lines`);
console.log("");

const parse = time("parseUapiGet", f.iterations, () => parseUapiGet("wg0", reply));
const device = parseUapiGet("wg0", reply);
if (device.peers.length !== f.peers) throw new Error(`parsed ${device.peers.length} peers, expected ${f.peers}`);
const map1 = nextPeerMap(new Map(), device.peers);
time("nextPeerMap + diffPeers (nothing changed)", f.iterations, () => diffPeers(map1, nextPeerMap(map1, device.peers)));

const watch = v1Proto.Registry.service.Watch;
const getEndpoint = seedProto.Registry.service.GetEndpoint;
let snapshotBytes = 0;
time("Watch snapshot: peerInfo × N + serialize", f.iterations, () => {
  snapshotBytes = watch.responseSerialize({ snapshot: { registryPublicKey: device.publicKey, peers: [...map1.values()].map((p) => peerInfo(p)) } }).length;
});
let seedBytes = 0;
time("GetEndpoint reply: seedReply + serialize", f.iterations, () => {
  seedBytes = getEndpoint.responseSerialize(seedReply(device)).length;
});
const one = [...map1.values()][0];
if (!one) throw new Error("no peer");
const perEvent = time("Watch change event × 10,000 serialize", Math.max(3, Math.floor(f.iterations / 3)), () => {
  for (let i = 0; i < 10_000; i++) watch.responseSerialize({ changed: peerInfo(one) });
});
console.log("");
console.log(`parseUapiGet: ${fmt(percentile(parse, 50), 1)} ms per ${f.peers}-peer reply (p50), ${fmt(reply.length / 1e6 / (percentile(parse, 50) / 1000), 0)} MB/s`);
console.log(`sizes: snapshot ${fmt(snapshotBytes / 1e3, 1)} kB (${fmt(snapshotBytes / f.peers, 1)} B/peer); GetEndpoint reply ${fmt(seedBytes / 1e3, 1)} kB (${fmt(seedBytes / f.peers, 1)} B/peer); change event ${watch.responseSerialize({ changed: peerInfo(one) }).length} B, ${fmt((percentile(perEvent, 50) * 1000) / 10_000, 2)} µs to serialize`);
