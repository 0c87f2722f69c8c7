/**
 * The seed's HTTP watch (-A, -w) over real HTTP on loopback, in process with
 * a fake WireGuard: the seed's replies, the token check, the shared limit on
 * failed attempts, junk, and that nothing listens unless asked.
 */
import assert from "node:assert/strict";
import { connect, createServer } from "node:net";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { mergeRegistry } from "../../src/config/index.js";
import { runRegistry, type RegistryConfig, type RunningRegistry } from "../../src/registry/run.js";
import { v1Proto } from "../../src/rpc/proto.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "tok-8675309-secret";
const ALICE = key(1);
const BOB = key(2);
const REGISTRY = key(9);

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function registryWg(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: REGISTRY,
      peers: [
        { publicKey: ALICE, endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"] },
        { publicKey: BOB, endpoint: null, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
}

async function registry(seedHttp: RegistryConfig["seedHttp"], options: { token?: string | null; pollIntervalMs?: number } = {}) {
  const wg = registryWg();
  const log = captureLogger();
  const reg = await runRegistry(
    { address: "127.0.0.1:0", iface: "wg0", token: options.token === undefined ? TOKEN : options.token, pollIntervalMs: options.pollIntervalMs ?? 20, seedHttp },
    { wg, logger: log.logger },
  );
  cleanups.push(() => reg.stop());
  return { reg, wg, log };
}

const LOOPBACK = { host: "127.0.0.1", port: 0 } as const;

async function get(reg: RunningRegistry, path: string, init: RequestInit = {}) {
  assert.ok(reg.seedHttpPort !== null, "the seed's HTTP watch listens");
  const res = await fetch(`http://127.0.0.1:${reg.seedHttpPort}${path}`, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Sends raw bytes and returns everything the server writes until it closes (or `untilMs` passes: then what came so far). */
function raw(port: number, bytes: string | Buffer, untilMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), untilMs);
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    socket.end(bytes);
  });
}

/** Whether something accepts TCP connections on host:port. */
function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("seed HTTP watch: the seed's replies", () => {
  let reg: RunningRegistry;
  let wg: FakeWireGuard;
  let log: ReturnType<typeof captureLogger>;
  it("starts on the port it reports", async () => {
    ({ reg, wg, log } = await registry({ address: LOOPBACK, watchPeerKey: ALICE }));
    assert.ok(reg.seedHttpPort !== null && reg.seedHttpPort > 0);
    assert.notEqual(reg.seedHttpPort, reg.port);
  });

  it("?t=TOKEN: 200, the endpoint as plain text, no newline", async () => {
    const r = await get(reg, `/?t=${TOKEN}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, "198.51.100.10:40000");
    assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
  });

  it("?token=TOKEN: the same", async () => {
    const r = await get(reg, `/?token=${encodeURIComponent(TOKEN)}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, "198.51.100.10:40000");
  });

  it("any path, as the seed's catch-all handler", async () => {
    assert.equal((await get(reg, `/some/path?t=${TOKEN}`)).body, "198.51.100.10:40000");
  });

  it("a wrong token: 403 `403 Forbidden` and a newline", async () => {
    const r = await get(reg, "/?t=guess-31337");
    assert.equal(r.status, 403);
    assert.equal(r.body, "403 Forbidden\n");
    assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  });

  it("no token: 403", async () => {
    const r = await get(reg, "/");
    assert.equal(r.status, 403);
    assert.equal(r.body, "403 Forbidden\n");
  });

  it("follows the interface: a moved endpoint is answered after the next poll", async () => {
    wg.setPeerEndpoint("wg0", ALICE, { ip: "2001:db8::10", port: 41000 });
    await waitFor("the moved endpoint", async () => (await get(reg, `/?t=${TOKEN}`)).body === "[2001:db8::10]:41000");
    wg.setPeerEndpoint("wg0", ALICE, null);
    await waitFor("`not found' for a peer without an endpoint", async () => (await get(reg, `/?t=${TOKEN}`)).body === "not found");
    wg.setPeerEndpoint("wg0", ALICE, { ip: "198.51.100.10", port: 40000 });
    await waitFor("the endpoint back", async () => (await get(reg, `/?t=${TOKEN}`)).body === "198.51.100.10:40000");
  });

  it("HEAD: the headers of GET, no body", async () => {
    const r = await get(reg, `/?t=${TOKEN}`, { method: "HEAD" });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-length"), String("198.51.100.10:40000".length));
    assert.equal(r.body, "");
  });

  it("POST: 405 with Allow, the token not even read", async () => {
    const r = await get(reg, `/?t=${TOKEN}`, { method: "POST", body: "t=x" });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get("allow"), "GET, HEAD");
  });

  it("a GET with a body: 413, and the connection closed", async () => {
    const reply = await raw(reg.seedHttpPort as number, `GET /?t=${TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`);
    assert.match(reply, /^HTTP\/1\.1 413 /);
    assert.match(reply, /\r\nconnection: close\r\n/i);
    assert.doesNotMatch(reply, /198\.51\.100\.10/);
  });

  it("junk: 400 and the socket closed; huge headers: 431; the server answers on", async () => {
    const port = reg.seedHttpPort as number;
    assert.match(await raw(port, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(await raw(port, `GET /?t=${"A".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 431 /);
    assert.match(await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
    assert.match(await raw(port, "GET /?t=%zz%%% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), /^HTTP\/1\.1 403 /);
    assert.equal((await get(reg, `/?t=${TOKEN}`)).body, "198.51.100.10:40000");
  });

  it("never logs the token, nor the guesses", () => {
    const text = log.text();
    assert.doesNotMatch(text, new RegExp(TOKEN));
    assert.doesNotMatch(text, /guess-31337/);
    assert.doesNotMatch(text, /%zz/);
    assert.ok(log.records.some((r) => r.msg === "refused a call with a wrong token" && r.api === "seed-http"));
  });
});

describe("seed HTTP watch: an unreadable interface, as the seed", () => {
  it("200 `Error: \"...\"` while the last read failed; the endpoint again after a good one", async () => {
    // Polls far apart: the test reads the interface itself, so nothing races it.
    const { reg, wg } = await registry({ address: LOOPBACK, watchPeerKey: ALICE }, { pollIntervalMs: 600_000 });
    wg.failNext(new Error("device vanished"), "getDevice");
    await reg.table.refresh(false);
    const r = await get(reg, `/?t=${TOKEN}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'Error: "cannot read WireGuard interface wg0: device vanished"');
    assert.equal((await get(reg, "/?t=nope")).status, 403, "the token is still checked first");
    await reg.table.refresh(false);
    assert.equal((await get(reg, `/?t=${TOKEN}`)).body, "198.51.100.10:40000");
  });
});

describe("seed HTTP watch: not found", () => {
  it("a watched key the interface does not have", async () => {
    const { reg, log } = await registry({ address: LOOPBACK, watchPeerKey: key(42) });
    const r = await get(reg, `/?t=${TOKEN}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, "not found");
    assert.ok(log.records.some((x) => String(x.msg).startsWith("--watch-peer-key is not a peer of the interface")));
  });

  it("the registry's own key (the seed looked among the peers only)", async () => {
    const { reg } = await registry({ address: LOOPBACK, watchPeerKey: REGISTRY });
    assert.equal((await get(reg, `/?t=${TOKEN}`)).body, "not found");
  });

  it("-A without -w: every right token gets `not found', and the log says why", async () => {
    const { reg, log } = await registry({ address: LOOPBACK, watchPeerKey: null });
    assert.equal((await get(reg, `/?t=${TOKEN}`)).body, "not found");
    assert.ok(log.records.some((x) => String(x.msg).startsWith("no --watch-peer-key")));
  });

  it("a peer that joins later is answered once the registry sees it", async () => {
    const carol = key(3);
    const { reg, wg } = await registry({ address: LOOPBACK, watchPeerKey: carol });
    assert.equal((await get(reg, `/?t=${TOKEN}`)).body, "not found");
    wg.addPeer("wg0", { publicKey: carol, endpoint: { ip: "203.0.113.3", port: 3 }, allowedIps: ["10.200.0.4/32"] });
    await waitFor("carol's endpoint", async () => (await get(reg, `/?t=${TOKEN}`)).body === "203.0.113.3:3");
  });
});

describe("seed HTTP watch: failed tokens are limited like gRPC's, in one budget", () => {
  const md = (token: string) => {
    const m = new grpc.Metadata();
    m.set("authorization", `Bearer ${token}`);
    return m;
  };
  const getPeers = (client: InstanceType<typeof v1Proto.Registry>, token: string) =>
    new Promise<grpc.ServiceError | null>((resolve) => client.GetPeers({}, md(token), (err) => resolve(err)));

  it("ten wrong tokens, then the next wrong one gets 429 with Retry-After, on HTTP and on gRPC; the right token is still served", async () => {
    const { reg, log } = await registry({ address: LOOPBACK, watchPeerKey: ALICE });
    for (let i = 0; i < 10; i++) assert.equal((await get(reg, `/?t=guess-${i}`)).status, 403, `guess ${i}`);
    const r = await get(reg, "/?t=guess-10");
    assert.equal(r.status, 429);
    assert.match(r.body, /^429 Too Many Requests: too many failed token attempts from this address; retry in [1-6]s\n$/);
    assert.match(r.headers.get("retry-after") ?? "", /^[1-6]$/);
    assert.doesNotMatch(r.body, /198\.51\.100\.10/);
    const right = await get(reg, `/?t=${TOKEN}`);
    assert.equal(right.status, 200, "a right token is never refused for others' guesses");
    assert.equal(right.body, "198.51.100.10:40000");
    const client = new v1Proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    assert.equal((await getPeers(client, "guess-grpc"))?.code, grpc.status.RESOURCE_EXHAUSTED, "the gRPC API shares the budget");
    assert.equal(log.records.filter((x) => String(x.msg).startsWith("too many failed token attempts")).length, 1, "logged once");
  });

  it("gRPC guesses use up the HTTP budget too", async () => {
    const { reg } = await registry({ address: LOOPBACK, watchPeerKey: ALICE });
    const client = new v1Proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    for (let i = 0; i < 10; i++) assert.equal((await getPeers(client, `guess-${i}`))?.code, grpc.status.PERMISSION_DENIED);
    assert.equal((await get(reg, "/?t=guess-http")).status, 429);
    assert.equal((await get(reg, `/?t=${TOKEN}`)).status, 200);
  });

  it("requests without any token (a browser's /favicon.ico) are refused but not counted", async () => {
    const { reg } = await registry({ address: LOOPBACK, watchPeerKey: ALICE });
    for (let i = 0; i < 20; i++) assert.equal((await get(reg, "/favicon.ico")).status, 403);
    const r = await get(reg, `/?t=${TOKEN}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, "198.51.100.10:40000");
  });

  it("a registry without a token answers everyone, as its gRPC API does", async () => {
    const { reg } = await registry({ address: LOOPBACK, watchPeerKey: ALICE }, { token: null });
    assert.equal((await get(reg, "/")).body, "198.51.100.10:40000");
  });
});

describe("seed HTTP watch: where it listens", () => {
  it("on [::1] when asked", async (t) => {
    if (!(await canListen("::1"))) {
      t.skip("no IPv6 loopback here");
      return;
    }
    const { reg } = await registry({ address: { host: "::1", port: 0 }, watchPeerKey: ALICE });
    const res = await fetch(`http://[::1]:${reg.seedHttpPort}/?t=${TOKEN}`);
    assert.equal(await res.text(), "198.51.100.10:40000");
  });

  it("a busy port is a start-up error naming the flag and the address", async () => {
    const { reg } = await registry({ address: LOOPBACK, watchPeerKey: ALICE });
    const busy = reg.seedHttpPort as number;
    await assert.rejects(registry({ address: { host: "127.0.0.1", port: busy }, watchPeerKey: ALICE }), new RegExp(`cannot serve the seed's HTTP watch \\(--address-http\\) on \`127\\.0\\.0\\.1:${busy}': .*EADDRINUSE`));
  });

  it("without -A or -w nothing listens on :1639 (the seed's default)", async (t) => {
    const before = { v4: await listening("127.0.0.1", 1639), v6: await listening("::1", 1639) };
    if (before.v4 || before.v6) {
      t.skip("something else listens on port 1639 here");
      return;
    }
    // The settings the CLI would hand over for `wormhole registry -i wg0 -t ...`.
    const settings = mergeRegistry([{ source: { kind: "flags" }, values: { iface: "wg0", token: TOKEN } }]);
    assert.equal(settings.seedHttp, null);
    const { reg } = await registry(settings.seedHttp);
    assert.equal(reg.seedHttpPort, null);
    assert.equal(await listening("127.0.0.1", 1639), false, "127.0.0.1:1639");
    assert.equal(await listening("::1", 1639), false, "[::1]:1639");
  });
});

function canListen(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(0, host, () => s.close(() => resolve(true)));
  });
}
