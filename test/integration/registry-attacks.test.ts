/**
 * Attacks on the registry from the review in issue 12, each bounded, over real
 * gRPC (or HTTP) on 127.0.0.1. Each test fails on the code before its fix.
 */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as net from "node:net";
import { addReflection, defaultReflection, MAX_HEALTH_SERVICE_NAME, type ReflectionAnswerer } from "../../src/registry/grpc-standard.js";
import { runRegistry } from "../../src/registry/run.js";
import { bindServer, createRegistryServer, MAX_REQUEST_BYTES, SERVER_CHANNEL_OPTIONS } from "../../src/registry/server.js";
import { startRegistryHttp } from "../../src/registry/http.js";
import { createRegistryMetrics } from "../../src/registry/metrics.js";
import { PeerTable } from "../../src/registry/table.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";
import { v1Proto, type WatchEvent__Output } from "../../src/rpc/proto.js";

const TOKEN = "attacks-token";

async function registry() {
  // key(1) is identified by the tunnel when it calls from 127.0.0.1 (its /32).
  const wg = new FakeWireGuard([
    {
      name: "wg0",
      publicKey: key(9),
      peers: [
        { publicKey: key(1), endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["10.200.0.2/32", "127.0.0.1/32"] },
        { publicKey: key(2), endpoint: { ip: "198.51.100.2", port: 2 }, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
  const log = captureLogger();
  const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50 }, { wg, logger: log.logger });
  cleanups.push(() => reg.stop());
  return { reg, log, wg };
}

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A gRPC message frame: no compression, 4-byte length, the bytes. */
function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** A raw HTTP/2 call that advertises a zero window: the server can send it nothing (no reply is ever read). */
function unreadCall(port: number, path: string, headers: http2.OutgoingHttpHeaders = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 0 } });
  session.on("error", () => {});
  const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
  req.on("error", () => {});
  const close = () => {
    req.close(http2.constants.NGHTTP2_CANCEL);
    session.destroy();
  };
  cleanups.push(close);
  return { session, req, close };
}

describe("server reflection against a client that never reads", () => {
  it("answers one request at a time: a stream that does not read its replies stops being read", async () => {
    const real = defaultReflection();
    let answered = 0;
    const counting: ReflectionAnswerer = {
      handleServerReflectionRequest(m) {
        answered++;
        return real.handleServerReflectionRequest(m);
      },
    };
    const server = new grpc.Server(SERVER_CHANNEL_OPTIONS);
    addReflection(server, counting);
    const port = await bindServer(server, "127.0.0.1:0");
    cleanups.push(() => server.forceShutdown());

    // 10,000 list_services requests (field 7, empty): 70 kB, more than one HTTP/2 window.
    const { req } = unreadCall(port, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    const one = frame(Buffer.from([0x3a, 0x00]));
    const sent = 10_000;
    req.write(Buffer.concat(Array.from({ length: sent }, () => one)));
    // The registry stops taking the client's bytes: they stay in the client's buffers.
    await waitFor("the client's requests held back by flow control", () => answered >= 1 && req.bufferSize > 0);
    assert.ok(answered <= 1, `${answered} replies made for a client that reads none (at most one waits)`);
  });
});

/** The gRPC status of a raw HTTP/2 call, once its trailers (or trailers-only headers) come. */
function statusOf(req: http2.ClientHttp2Stream): Promise<{ status: string; message: string }> {
  return new Promise((resolve) => {
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) resolve({ status: String(h["grpc-status"]), message: decodeURIComponent(String(h["grpc-message"] ?? "")) });
    };
    req.on("response", take);
    req.on("trailers", take);
  });
}

describe("requests refused before they are read", () => {
  it("a wormhole.v1 call with a wrong token is refused as its headers arrive, before its request has come", { timeout: 20_000 }, async () => {
    const { reg } = await registry();
    const session = http2.connect(`http://127.0.0.1:${reg.port}`);
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    const req = session.request({ ":method": "POST", ":path": "/wormhole.v1.Registry/Report", "content-type": "application/grpc", te: "trailers", authorization: "Bearer wrong" });
    req.on("error", () => {});
    req.on("data", () => {});
    // A message announced at 60,000 bytes, of which 100 are sent: the request never completes.
    const head = Buffer.alloc(5);
    head.writeUInt32BE(60_000, 1);
    req.write(Buffer.concat([head, Buffer.alloc(100, 0x1a)]));
    const { status } = await statusOf(req);
    assert.equal(status, String(grpc.status.PERMISSION_DENIED));
  });

  it("a request whose length prefix is over MAX_REQUEST_BYTES is refused at once, without waiting for its bytes", { timeout: 20_000 }, async () => {
    const { reg } = await registry();
    const session = http2.connect(`http://127.0.0.1:${reg.port}`);
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    const req = session.request({ ":method": "POST", ":path": "/wgSvc.proto.Registry/GetEndpoint", "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => {});
    req.on("data", () => {});
    const head = Buffer.alloc(5);
    head.writeUInt32BE(MAX_REQUEST_BYTES + 1, 1); // announced; only 10 bytes follow
    req.write(Buffer.concat([head, Buffer.alloc(10, 0x61)]));
    const { status, message } = await statusOf(req);
    assert.equal(status, String(grpc.status.RESOURCE_EXHAUSTED));
    assert.match(message, new RegExp(`${MAX_REQUEST_BYTES + 1} vs ${MAX_REQUEST_BYTES}`));
  });

  it("a health Check or Watch of an over-long service name is refused, and no Watch is kept", { timeout: 20_000 }, async () => {
    const { reg } = await registry();
    const Health = grpc.makeGenericClientConstructor(
      {
        Check: {
          path: "/grpc.health.v1.Health/Check",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
        Watch: {
          path: "/grpc.health.v1.Health/Watch",
          requestStream: false,
          responseStream: true,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "Health",
    );
    const client = new Health(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const name = Buffer.alloc(MAX_HEALTH_SERVICE_NAME + 1, 0x61);
    const request = Buffer.concat([Buffer.from([0x0a, 0x82, 0x02]), name]); // field 1, length 257
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      const call = (client as unknown as { Watch(r: Buffer): grpc.ClientReadableStream<Buffer> }).Watch(request);
      call.on("data", () => {});
      call.on("error", resolve);
    });
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(reg.health.watcherCount, 0);
    const checked = await new Promise<grpc.ServiceError | null>((resolve) =>
      (client as unknown as { Check(r: Buffer, cb: (e: grpc.ServiceError | null) => void): void }).Check(request, (e) => resolve(e)),
    );
    assert.equal(checked?.code, grpc.status.INVALID_ARGUMENT);
  });
});

describe("connection cap", () => {
  it("a server bound to localhost takes connections on 127.0.0.1 and on ::1, as grpc-js bound it", async () => {
    const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9) }]);
    const log = captureLogger();
    const table = new PeerTable({ wg, iface: "wg0", logger: log.logger });
    await table.refresh();
    const server = createRegistryServer({ table, token: TOKEN, logger: log.logger });
    const port = await bindServer(server, "localhost:0");
    cleanups.push(() => server.forceShutdown());
    for (const host of ["127.0.0.1", "::1"]) {
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(port, host, () => {
          s.destroy();
          resolve();
        });
        s.on("error", reject);
      });
    }
  });

  it("holds at most maxConnections connections: more are closed as they arrive, and room frees as they end", { timeout: 20_000 }, async () => {
    const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9) }]);
    const log = captureLogger();
    const table = new PeerTable({ wg, iface: "wg0", logger: log.logger });
    await table.refresh();
    const server = createRegistryServer({ table, token: TOKEN, logger: log.logger, connections: { maxConnections: 2 } });
    const port = await bindServer(server, "127.0.0.1:0");
    cleanups.push(() => server.forceShutdown());

    const open = (): Promise<{ socket: net.Socket; closed: Promise<void> }> =>
      new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => resolve({ socket, closed }));
        socket.on("error", () => {});
        const closed = new Promise<void>((done) => socket.on("close", () => done()));
        cleanups.push(() => socket.destroy());
      });
    const a = await open();
    const b = await open();
    // Both held: each gets the server's HTTP/2 SETTINGS.
    for (const s of [a, b]) {
      s.socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00");
      await new Promise((resolve) => s.socket.once("data", resolve));
    }
    const c = await open();
    await c.closed; // the third is closed by the registry
    a.socket.destroy();
    await a.closed;
    await waitFor("room for one more", async () => {
      const d = await open();
      d.socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00");
      return await Promise.race([new Promise((resolve) => d.socket.once("data", () => resolve(true))), d.closed.then(() => false)]);
    });
  });
});

const bearer = () => {
  const m = new grpc.Metadata();
  m.set("authorization", `Bearer ${TOKEN}`);
  return m;
};

function v1Client(port: number) {
  const client = new v1Proto.Registry(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  return client;
}

type PathMsg = { peerPublicKey: string; kind: "PATH_KIND_RELAYED" | "PATH_KIND_DIRECT" | "PATH_KIND_DOWN"; sinceUnixMs: number; endpoint: null };

function report(client: InstanceType<typeof v1Proto.Registry>, paths: PathMsg[]): Promise<grpc.ServiceError | null> {
  return reportWith(client, [], paths);
}

function reportWith(client: InstanceType<typeof v1Proto.Registry>, candidates: Array<{ ip: string; port: number }>, paths: PathMsg[]): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client.Report({ publicKey: key(1), candidates, paths }, bearer(), (err) => resolve(err)));
}

describe("reports from an identified node", () => {
  it("are limited per node: a flood is refused with RESOURCE_EXHAUSTED", async () => {
    const { reg } = await registry();
    const client = v1Client(reg.port);
    const results: Array<grpc.ServiceError | null> = [];
    for (let i = 0; i < 20; i++) results.push(await report(client, [{ peerPublicKey: key(2), kind: i % 2 ? "PATH_KIND_RELAYED" : "PATH_KIND_DIRECT", sinceUnixMs: 1, endpoint: null }]));
    const accepted = results.filter((r) => r === null).length;
    assert.ok(accepted >= 10 && accepted <= 12, `${accepted} of 20 reports accepted at once`);
    const refused = results.find((r) => r !== null);
    assert.equal(refused?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(refused?.details ?? "", /^too many reports from this node; report again in 1s$/);
  });

  it("reports reach watchers only when their candidates change; paths never do, and a report that changes nothing they see encodes no snapshot", async () => {
    const { reg } = await registry();
    const client = v1Client(reg.port);
    const watchMethod = v1Proto.Registry.service.Watch;
    const original = watchMethod.responseSerialize;
    let encoded = 0;
    watchMethod.responseSerialize = (value) => {
      encoded++;
      return original(value);
    };
    try {
      const events: WatchEvent__Output[] = [];
      const call = client.Watch({}, bearer());
      call.on("data", (e: WatchEvent__Output) => events.push(e));
      call.on("error", () => {});
      cleanups.push(() => call.cancel());
      await waitFor("snapshot", () => events.length === 1);
      assert.equal(encoded, 1);
      // Paths only, of every kind, to peers and strangers: nothing a watcher sees.
      assert.equal(await report(client, [{ peerPublicKey: key(2), kind: "PATH_KIND_DIRECT", sinceUnixMs: 1, endpoint: null }]), null);
      assert.equal(await report(client, [{ peerPublicKey: key(2), kind: "PATH_KIND_DOWN", sinceUnixMs: 1, endpoint: null }, { peerPublicKey: key(50), kind: "PATH_KIND_RELAYED", sinceUnixMs: 1, endpoint: null }]), null);
      // A candidate: one change event, without paths.
      assert.equal(await reportWith(client, [{ ip: "192.168.1.10", port: 51820 }], [{ peerPublicKey: key(2), kind: "PATH_KIND_DOWN", sinceUnixMs: 1, endpoint: null }]), null);
      await waitFor("the candidate's event", () => events.length === 2);
      assert.deepEqual(events[1]?.changed?.candidates.map((c) => c.ip), ["192.168.1.10"]);
      assert.deepEqual(events[1]?.changed?.paths, []);
      assert.equal(encoded, 2, "the snapshot was not encoded again: only the one change event");
    } finally {
      watchMethod.responseSerialize = original;
    }
  });
});

describe("the HTTP port against slow clients and rebinding", () => {
  async function httpRegistry() {
    const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9) }]);
    const log = captureLogger();
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50, http: { host: "127.0.0.1", port: 0 } }, { wg, logger: log.logger });
    cleanups.push(() => reg.stop());
    return reg;
  }

  it("answers /healthz while 100 connections trickle their headers (slowloris)", { timeout: 30_000 }, async () => {
    const reg = await httpRegistry();
    const sockets = await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(reg.httpPort ?? 0, "127.0.0.1", () => {
              s.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"); // never finished
              resolve(s);
            });
            s.on("error", () => {});
          }),
      ),
    );
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
    });
    const res = await fetch(`http://127.0.0.1:${reg.httpPort}/healthz`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^ok: /);
  });

  async function bareHttp(limits: { maxConnections?: number; perAddress?: number; headersTimeoutMs?: number }) {
    const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9) }]);
    const log = captureLogger();
    const table = new PeerTable({ wg, iface: "wg0", logger: log.logger });
    await table.refresh();
    const metrics = createRegistryMetrics({ table });
    const http = await startRegistryHttp({ host: "127.0.0.1", port: 0 }, { table, iface: "wg0", metrics, logger: log.logger, limits });
    cleanups.push(() => metrics.close(), () => http.close());
    return http;
  }

  function socketTo(port: number, first: string): Promise<{ socket: net.Socket; closed: Promise<void>; text: () => string }> {
    return new Promise((resolve) => {
      let text = "";
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.write(first);
        resolve({ socket, closed, text: () => text });
      });
      socket.on("data", (d) => (text += d.toString()));
      socket.on("error", () => {});
      const closed = new Promise<void>((done) => socket.on("close", () => done()));
      cleanups.push(() => socket.destroy());
    });
  }

  it("closes a connection whose headers have not all come within headersTimeoutMs", { timeout: 20_000 }, async () => {
    const http = await bareHttp({ headersTimeoutMs: 300 });
    const slow = await socketTo(http.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    await slow.closed;
  });

  it("to make room, closes a connection that never sent a whole request before a kept-alive one", { timeout: 20_000 }, async () => {
    const http = await bareHttp({ perAddress: 3 });
    const kept = await socketTo(http.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await waitFor("the kept-alive connection's first answer", () => kept.text().includes("ok: "));
    const slow1 = await socketTo(http.port, "GET / HTTP/1.1\r\n");
    await socketTo(http.port, "GET / HTTP/1.1\r\n");
    await socketTo(http.port, "GET / HTTP/1.1\r\n"); // the fourth from this address
    await slow1.closed; // the oldest slow one went, not the older kept-alive one
    kept.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await waitFor("the kept-alive connection's second answer", () => kept.text().split("ok: ").length === 3);
  });

  it("serves the status page only to a Host that is an IP address or localhost (DNS rebinding)", async () => {
    const reg = await httpRegistry();
    const get = (path: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const s = net.connect(reg.httpPort ?? 0, "127.0.0.1", () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
        let text = "";
        s.on("data", (d) => (text += d.toString()));
        s.on("end", () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1])));
        s.on("error", reject);
      });
    assert.equal(await get("/", "rebind.attacker.example:9638"), 421);
    assert.equal(await get("/", `127.0.0.1:${reg.httpPort}`), 200);
    assert.equal(await get("/", `localhost:${reg.httpPort}`), 200);
    assert.equal(await get("/", `[::1]:${reg.httpPort}`), 200);
    assert.equal(await get("/healthz", "rebind.attacker.example"), 200, "/healthz is no secret");
  });
});

describe("GetPeers", () => {
  it("is encoded once per read of the interface and report, however many ask", async () => {
    const { reg } = await registry();
    reg.table.stop(); // no polls: the table changes only when the test says
    const client = v1Client(reg.port);
    const method = v1Proto.Registry.service.GetPeers;
    const original = method.responseSerialize;
    let encoded = 0;
    method.responseSerialize = (value) => {
      encoded++;
      return original(value);
    };
    try {
      const getPeers = () =>
        new Promise<number>((resolve, reject) => client.GetPeers({}, bearer(), (err, reply) => (err ? reject(err) : resolve(reply?.peers.length ?? -1))));
      for (let i = 0; i < 5; i++) assert.equal(await getPeers(), 2);
      assert.equal(encoded, 1, "five calls, one encoding");
      assert.equal(await report(client, [{ peerPublicKey: key(2), kind: "PATH_KIND_DIRECT", sinceUnixMs: 1, endpoint: null }]), null);
      await getPeers();
      assert.equal(encoded, 2, "a report shows in GetPeers: encoded again");
      await reg.table.refresh();
      await getPeers();
      assert.equal(encoded, 3, "a new read of the interface: encoded again");
    } finally {
      method.responseSerialize = original;
    }
  });
});

describe("a registry nobody watches", () => {
  it("reads its interface on demand: GetEndpoint, GetPeers and /healthz see a change made just before", { timeout: 30_000 }, async () => {
    const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9), peers: [{ publicKey: key(1), endpoint: { ip: "198.51.100.1", port: 1 }, allowedIps: ["10.200.0.2/32"] }] }]);
    const log = captureLogger();
    // Polls once a minute on its own: anything fresher was read on demand. Data counts as old after
    // the poll interval (which stretches with the read time, up to 1 s): each wait below asks until
    // the call that finds the data old has read the change.
    const reg = await runRegistry(
      { address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 20, idlePollIntervalMs: 60_000, http: { host: "127.0.0.1", port: 0 } },
      { wg, logger: log.logger },
    );
    cleanups.push(() => reg.stop());
    const { seedProto } = await import("../../src/rpc/proto.js");
    const seed = new seedProto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => seed.close());
    const client = v1Client(reg.port);

    const seedPort = async () => {
      const reply = await new Promise<{ Peers: Array<{ endpointPort?: number }> }>((resolve, reject) =>
        seed.GetEndpoint({ token: TOKEN }, (err, r) => (err || !r ? reject(err) : resolve(r as never))),
      );
      return reply.Peers[0]?.endpointPort;
    };
    for (const port of [2, 3]) {
      wg.setPeerEndpoint("wg0", key(1), { ip: "198.51.100.1", port });
      await waitFor(`GetEndpoint reading port ${port}`, async () => (await seedPort()) === port);
    }
    wg.setPeerEndpoint("wg0", key(1), { ip: "198.51.100.1", port: 4 });
    const v1Port = async () => {
      const peers = await new Promise<Array<{ endpoint?: { port: number } | null }>>((resolve, reject) =>
        client.GetPeers({}, bearer(), (err, r) => (err || !r ? reject(err) : resolve(r.peers))),
      );
      return peers[0]?.endpoint?.port;
    };
    await waitFor("GetPeers reading port 4", async () => (await v1Port()) === 4);
    wg.failNext("failed", "getDevice");
    await waitFor("/healthz reading the failure", async () => (await fetch(`http://127.0.0.1:${reg.httpPort}/healthz`)).status === 503);
  });
});
