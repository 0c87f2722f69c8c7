/**
 * The registry's STUN responder on loopback sockets, asked by the netcheck
 * client code; and the registry's API listening on both address families.
 */
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { runRegistry } from "../../src/registry/run.js";
import { v1Proto, type GetPeersResponse__Output } from "../../src/rpc/proto.js";
import { StunLimiter } from "../../src/stun/answer.js";
import { binding } from "../../src/stun/client.js";
import { encodeBindingRequest } from "../../src/stun/codec.js";
import { startStunServer } from "../../src/stun/server.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "stun-token";
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function socket(type: "udp4" | "udp6", address: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket(type);
    cleanups.push(() => s.close());
    s.bind(0, address, () => resolve(s));
  });
}

function registryWg(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      type: "kernel",
      publicKey: key(9),
      peers: [
        { publicKey: key(1), endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"] },
        { publicKey: key(2), endpoint: { ip: "2001:db8:5::10", port: 51820 }, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
}

async function registry(address: string, stun: { host: string | null; port: number; altPort: number } | null = null) {
  const reg = await runRegistry({ address, iface: "wg0", token: TOKEN, pollIntervalMs: 50, stun }, { wg: registryWg(), logger: captureLogger().logger });
  cleanups.push(() => reg.stop());
  return reg;
}

/** The seed's GetEndpoint, raw bytes, at `target`: the endpoint texts of its peers (field 7). */
function seedEndpoints(target: string): Promise<string[]> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  const body = Buffer.from(TOKEN, "utf8");
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/wgSvc.proto.Registry/GetEndpoint",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.concat([Buffer.from([0x0a, body.length]), body]),
      { deadline: Date.now() + 10_000 },
      (err, reply) => {
        if (err) return reject(err);
        const texts: string[] = [];
        // Peers = 4 (length-delimited); inside, endpointIP = 7 (length-delimited). Small messages: one-byte lengths.
        const buf = reply as Buffer;
        for (let i = 0; i < buf.length; ) {
          const tag = buf[i] as number;
          const len = buf[i + 1] as number;
          if (tag === 0x22) {
            const peer = buf.subarray(i + 2, i + 2 + len);
            for (let j = 0; j < peer.length; ) {
              const t = peer[j] as number;
              if ((t & 7) === 2) {
                const l = peer[j + 1] as number;
                if (t >> 3 === 7) texts.push(peer.subarray(j + 2, j + 2 + l).toString());
                j += 2 + l;
              } else {
                j += 1;
                while ((peer[j] as number) & 0x80) j++;
                j++;
              }
            }
          }
          i += 2 + len;
        }
        resolve(texts);
      },
    ),
  );
}

describe("registry STUN responder", () => {
  it("tells an IPv4 client its address, answers change-port from the other port, and names its IPv6 address", async () => {
    const reg = await registry("127.0.0.1:0", { host: "127.0.0.1", port: 0, altPort: 0 });
    assert.ok(reg.stun);
    const { port, altPort } = reg.stun;
    const s = await socket("udp4", "127.0.0.1");
    const r = await binding(s, { ip: "127.0.0.1", port });
    assert.ok("mapped" in r, "problem" in r ? r.problem : "");
    assert.deepEqual(r.mapped, { ip: "127.0.0.1", port: s.address().port });
    assert.equal(r.other, null, "loopback has one IPv4 address: no alternate");
    assert.deepEqual(r.otherFamily, { ip: "::1", port });

    const cp = await binding(s, { ip: "127.0.0.1", port }, { change: { changeIp: false, changePort: true }, expectFrom: { ip: "127.0.0.1", port: altPort } });
    assert.ok("mapped" in cp, "problem" in cp ? cp.problem : "");

    // No alternate address: a change-IP request gets no answer, and the client gives up within its bound.
    const ci = await binding(s, { ip: "127.0.0.1", port }, { change: { changeIp: true, changePort: true }, timeoutMs: 300 });
    assert.ok("problem" in ci);
    assert.match(ci.problem, /no reply from 127\.0\.0\.1:\d+ within 300 ms/);

    // Counted on /metrics: two answered; the three tries of the change-IP request dropped.
    const counted = () => reg.metrics.registry.getSingleMetricAsString("wormhole_registry_stun_requests_total");
    await waitFor("the last try counted", async () => reg.stun?.counts.dropped === 3);
    const text = await counted();
    assert.match(text, /wormhole_registry_stun_requests_total\{result="answered"\} 2\b/);
    assert.match(text, /wormhole_registry_stun_requests_total\{result="dropped"\} 3\b/);
  });

  it("answers over IPv6 on [::1]", async () => {
    const reg = await registry("[::1]:0", { host: "::1", port: 0, altPort: 0 });
    assert.ok(reg.stun);
    const s = await socket("udp6", "::1");
    const r = await binding(s, { ip: "::1", port: reg.stun.port });
    assert.ok("mapped" in r, "problem" in r ? r.problem : "");
    assert.deepEqual(r.mapped, { ip: "::1", port: s.address().port });
    assert.deepEqual(r.otherFamily, { ip: "127.0.0.1", port: reg.stun.port });
  });

  it("a reply that is not from where the request went is a problem, not a result", async () => {
    const reg = await registry("127.0.0.1:0", { host: "127.0.0.1", port: 0, altPort: 0 });
    assert.ok(reg.stun);
    const s = await socket("udp4", "127.0.0.1");
    // Asked to change port, the reply comes from the alternate port: a client expecting the primary says so.
    const r = await binding(s, { ip: "127.0.0.1", port: reg.stun.port }, { change: { changeIp: false, changePort: true } });
    assert.ok("problem" in r);
    assert.match(r.problem, new RegExp(`came from 127\\.0\\.0\\.1:${reg.stun.altPort}, not from 127\\.0\\.0\\.1:${reg.stun.port}`));
  });

  it("rate-limits per source: a burst is answered, the rest dropped", async () => {
    const limiter = new StunLimiter({ perSourcePerSec: 10, burst: 5, globalPerSec: 1_000, maxSources: 100 });
    const server = await startStunServer({ host: "127.0.0.1", port: 0, altPort: 0, logger: captureLogger().logger, limiter, now: () => 0 });
    cleanups.push(() => server.close());
    const s = await socket("udp4", "127.0.0.1");
    for (let i = 0; i < 12; i++) s.send(encodeBindingRequest(new Uint8Array(12).fill(i)), server.port, "127.0.0.1");
    s.send(Buffer.from("not stun at all"), server.port, "127.0.0.1");
    await waitFor("every datagram handled", () => server.counts.answered + server.counts.limited + server.counts.dropped === 13);
    assert.deepEqual(server.counts, { answered: 5, limited: 7, dropped: 1 });
  });

  it("the default STUN port taken: the registry warns and serves without STUN; a given one taken stops it", async () => {
    const taken = await socket("udp4", "127.0.0.1");
    const port = taken.address().port;
    const logs = captureLogger();
    const reg = await runRegistry(
      { address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50, stun: { host: "127.0.0.1", port, altPort: 0, optional: true } },
      { wg: registryWg(), logger: logs.logger },
    );
    cleanups.push(() => reg.stop());
    assert.equal(reg.stun, null);
    assert.ok(reg.port > 0);
    assert.ok(logs.records.some((r) => r.level === 40 && r.msg === "not answering STUN (give --stun to choose where, or --stun off)" && String(r.err).includes(`127.0.0.1:${port}`)), logs.text());
    await assert.rejects(registry("127.0.0.1:0", { host: "127.0.0.1", port, altPort: 0 }), new RegExp(`cannot answer STUN on 127\\.0\\.0\\.1:${port}: bind EADDRINUSE`));
  });

  it("an explicit STUN address that is not this host's is a start-up error naming it", async () => {
    await assert.rejects(registry("127.0.0.1:0", { host: "192.0.2.77", port: 0, altPort: 0 }), /STUN address `192\.0\.2\.77' is not an address of this host/);
  });
});

describe("registry API on both address families", () => {
  it("0.0.0.0:PORT serves IPv6 too, as the seed's Go listener does; IPv6 endpoints keep the seed's text form", async () => {
    const reg = await registry("0.0.0.0:0");
    for (const target of [`127.0.0.1:${reg.port}`, `[::1]:${reg.port}`]) {
      assert.deepEqual(await seedEndpoints(target), ["198.51.100.10", "2001:db8:5::10"], target);
    }
  });

  it("wormhole.v1 GetPeers over IPv6 gives IPv6 endpoints as they are", async () => {
    const reg = await registry("[::1]:0");
    const client = new v1Proto.Registry(`[::1]:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${TOKEN}`);
    const reply = await new Promise<GetPeersResponse__Output>((resolve, reject) =>
      client.GetPeers({}, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, r?: GetPeersResponse__Output) => (err || !r ? reject(err) : resolve(r))),
    );
    assert.deepEqual(
      reply.peers.map((p) => p.endpoint),
      [
        { ip: "198.51.100.10", port: 40000 },
        { ip: "2001:db8:5::10", port: 51820 },
      ],
    );
  });

  it("an IPv6 address in -a", async () => {
    const reg = await registry("[::1]:0");
    assert.deepEqual(await seedEndpoints(`[::1]:${reg.port}`), ["198.51.100.10", "2001:db8:5::10"]);
  });
});
