/**
 * The registry's operations surface, in process with a fake WireGuard:
 * HTTP /healthz, /metrics and the status page, and on the gRPC port the
 * standard health service (driven by grpc-health-check's own client
 * definition) and server reflection (driven by @grpc/reflection's own .proto).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthServiceFromPackage } from "grpc-health-check";
import protobuf from "protobufjs";
import descriptorExt from "protobufjs/ext/descriptor/index.js";
import { runRegistry, type RunningRegistry } from "../../src/registry/run.js";
import { METRIC_NAMES } from "../../src/registry/metrics.js";
import { v1Proto } from "../../src/rpc/proto.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "tok-8675309-secret";
const ALICE = key(1);
const BOB = key(2);
const REGISTRY = key(9);
const require = createRequire(import.meta.url);

function registryWg(): FakeWireGuard {
  return new FakeWireGuard([
    {
      name: "wg0",
      publicKey: REGISTRY,
      listenPort: 51820,
      peers: [
        { publicKey: ALICE, endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"], lastHandshakeMs: Date.now() - 42_000 },
        { publicKey: BOB, endpoint: null, allowedIps: ["10.200.0.3/32"] },
      ],
    },
  ]);
}

async function get(port: number, path: string, method = "GET") {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** The value of an unlabelled metric in Prometheus text, or undefined. */
function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

describe("registry HTTP: /healthz, /metrics, status page", () => {
  let reg: RunningRegistry;
  let wg: FakeWireGuard;
  const log = captureLogger();
  before(async () => {
    wg = registryWg();
    reg = await runRegistry(
      {
        address: "127.0.0.1:0",
        iface: "wg0",
        token: TOKEN,
        pollIntervalMs: 20,
        http: { host: "127.0.0.1", port: 0 },
        names: new Map([[ALICE, "alice"]]),
      },
      { wg, logger: log.logger },
    );
  });
  after(() => reg.stop());

  it("serves on the port it reports", () => {
    assert.ok(reg.httpPort !== null && reg.httpPort > 0);
  });

  it("/healthz is 200 while the interface reads, 503 with the reason when it cannot, 200 again after", async () => {
    const ok = await get(reg.httpPort as number, "/healthz");
    assert.equal(ok.status, 200);
    assert.match(ok.body, /^ok: 2 peers on wg0$/m);
    wg.removeDevice("wg0");
    const down = await waitFor("503", async () => {
      const r = await get(reg.httpPort as number, "/healthz");
      return r.status === 503 ? r : null;
    });
    assert.ok(down);
    assert.match(down.body, /^unavailable: cannot read WireGuard interface wg0: .*wg0.*not found/m);
    const bad = await get(reg.httpPort as number, "/metrics");
    assert.equal(metric(bad.body, METRIC_NAMES.interfaceReadable), 0);
    wg.addDevice({ name: "wg0", publicKey: REGISTRY, peers: [{ publicKey: ALICE, endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"] }, { publicKey: BOB, allowedIps: ["10.200.0.3/32"] }] });
    await waitFor("200 again", async () => (await get(reg.httpPort as number, "/healthz")).status === 200);
  });

  it("/metrics has the registry's metrics with HELP, and process metrics", async () => {
    const r = await get(reg.httpPort as number, "/metrics");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.equal(metric(r.body, METRIC_NAMES.peers), 2);
    assert.equal(metric(r.body, METRIC_NAMES.relayedPairs), 0);
    assert.equal(metric(r.body, METRIC_NAMES.interfaceReadable), 1);
    // The certificate's expiry is there only when the API serves TLS (test/integration/tls.test.ts).
    assert.doesNotMatch(r.body, new RegExp(METRIC_NAMES.tlsNotAfter));
    for (const name of Object.values(METRIC_NAMES).filter((n) => n !== METRIC_NAMES.tlsNotAfter)) {
      assert.match(r.body, new RegExp(`^# TYPE ${name} (gauge|counter)$`, "m"), name);
    }
    assert.match(r.body, /^process_cpu_user_seconds_total \d/m);
    assert.match(r.body, /^nodejs_eventloop_lag_seconds \d/m);
  });

  it("counts endpoint changes, auth failures and Watch streams", async () => {
    const port = reg.httpPort as number;
    const before = (await get(port, "/metrics")).body;
    const changes0 = metric(before, METRIC_NAMES.endpointChanges) ?? NaN;
    const failures0 = metric(before, METRIC_NAMES.authFailures) ?? NaN;
    assert.equal(metric(before, METRIC_NAMES.watchers), 0);

    wg.setPeerEndpoint("wg0", ALICE, { ip: "198.51.100.10", port: 40999 });
    wg.setPeerEndpoint("wg0", BOB, { ip: "203.0.113.20", port: 50000 });
    await waitFor("two endpoint changes", async () => metric((await get(port, "/metrics")).body, METRIC_NAMES.endpointChanges) === changes0 + 2);

    const client = new v1Proto.Registry(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
    try {
      const wrong = new grpc.Metadata();
      wrong.set("authorization", "Bearer nope");
      await new Promise<void>((resolve) => client.GetPeers({}, wrong, () => resolve()));
      await new Promise<void>((resolve) => client.GetPeers({}, new grpc.Metadata(), () => resolve()));
      assert.equal(metric((await get(port, "/metrics")).body, METRIC_NAMES.authFailures), failures0 + 2);

      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${TOKEN}`);
      const streams = [client.Watch({}, md), client.Watch({}, md)];
      for (const s of streams) s.on("error", () => {});
      await waitFor("two watchers", async () => metric((await get(port, "/metrics")).body, METRIC_NAMES.watchers) === 2);
      streams[0]?.cancel();
      await waitFor("one watcher", async () => metric((await get(port, "/metrics")).body, METRIC_NAMES.watchers) === 1);
      streams[1]?.cancel();
      await waitFor("no watcher", async () => metric((await get(port, "/metrics")).body, METRIC_NAMES.watchers) === 0);
    } finally {
      client.close();
    }
  });

  it("the status page lists the peers by name or short key, with endpoint and handshake age", async () => {
    const r = await get(reg.httpPort as number, "/");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/html; charset=utf-8/);
    assert.match(r.headers.get("content-security-policy") ?? "", /default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(r.body, /<meta http-equiv="refresh" content="5">/);
    assert.match(r.body, new RegExp(`<tr data-key="${ALICE}"><td class="peer" title="${ALICE}">alice</td>`));
    assert.match(r.body, new RegExp(`<tr data-key="${BOB}"><td class="peer mono" title="${BOB}">AgICAgIC…</td>`));
  });

  it("nothing served holds the token", async () => {
    for (const path of ["/", "/metrics", "/healthz"]) assert.ok(!(await get(reg.httpPort as number, path)).body.includes(TOKEN), path);
    assert.ok(!log.text().includes(TOKEN));
  });

  it("unknown paths are 404, other methods 405, HEAD has no body", async () => {
    assert.equal((await get(reg.httpPort as number, "/admin")).status, 404);
    const post = await get(reg.httpPort as number, "/metrics", "POST");
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    const head = await get(reg.httpPort as number, "/healthz", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
  });
});

describe("registry HTTP is off unless asked for", () => {
  it("no HTTP port without --http", async () => {
    const reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: null, pollIntervalMs: 50 }, { wg: registryWg(), logger: captureLogger().logger });
    try {
      assert.equal(reg.httpPort, null);
    } finally {
      await reg.stop();
    }
  });

  it("a busy HTTP port fails start-up with the address in the message, and releases the gRPC port", async () => {
    const first = await runRegistry(
      { address: "127.0.0.1:0", iface: "wg0", token: null, pollIntervalMs: 50, http: { host: "127.0.0.1", port: 0 } },
      { wg: registryWg(), logger: captureLogger().logger },
    );
    try {
      const busy = first.httpPort as number;
      await assert.rejects(
        runRegistry(
          { address: "127.0.0.1:0", iface: "wg0", token: null, pollIntervalMs: 50, http: { host: "127.0.0.1", port: busy } },
          { wg: registryWg(), logger: captureLogger().logger },
        ),
        new RegExp(`cannot serve HTTP on \`127\\.0\\.0\\.1:${busy}': .*EADDRINUSE`),
      );
    } finally {
      await first.stop();
    }
  });
});

// ------------------------------------------------------------- gRPC health and reflection

type HealthClient = grpc.Client & {
  check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
  list(req: object, cb: (err: grpc.ServiceError | null, res?: { statuses: Record<string, { status: string }> }) => void): void;
};

const REFLECTION_PROTO_DIR = join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");
const HEALTH_PROTO_DIR = join(dirname(require.resolve("grpc-health-check/package.json")), "proto");

describe("standard gRPC health service", () => {
  let reg: RunningRegistry;
  let wg: FakeWireGuard;
  let client: HealthClient;
  before(async () => {
    wg = registryWg();
    reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 20 }, { wg, logger: captureLogger().logger });
    // The client definition grpc-health-check builds from its own health.proto.
    const Health = grpc.makeGenericClientConstructor(healthServiceFromPackage as unknown as grpc.ServiceDefinition, "Health");
    client = new Health(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  });
  after(async () => {
    client.close();
    await reg.stop();
  });

  const check = (service: string) =>
    new Promise<{ err: grpc.ServiceError | null; status?: string }>((resolve) =>
      client.check({ service }, (err, res) => resolve({ err, ...(res ? { status: res.status } : {}) })),
    );

  it("Check says SERVING for the server and both APIs, without a token", async () => {
    for (const service of ["", "wormhole.v1.Registry", "wgSvc.proto.Registry"]) {
      const r = await check(service);
      assert.equal(r.err, null, service);
      assert.equal(r.status, "SERVING", service);
    }
  });

  it("Check of an unknown service is NOT_FOUND", async () => {
    const r = await check("no.such.Service");
    assert.equal(r.err?.code, grpc.status.NOT_FOUND);
  });

  it("List names every service", async () => {
    const statuses = await new Promise<Record<string, { status: string }>>((resolve, reject) =>
      client.list({}, (err, res) => (err ? reject(err) : resolve(res?.statuses ?? {}))),
    );
    assert.deepEqual(Object.keys(statuses).sort(), ["", "wgSvc.proto.Registry", "wormhole.v1.Registry"]);
  });

  it("Watch hears NOT_SERVING when the interface cannot be read, and SERVING when it can again", async () => {
    const seen: string[] = [];
    const stream = client.watch({ service: "" });
    stream.on("data", (m: { status: string }) => seen.push(m.status));
    stream.on("error", () => {});
    try {
      await waitFor("first status", () => seen.length >= 1);
      assert.equal(seen[0], "SERVING");
      wg.removeDevice("wg0");
      await waitFor("NOT_SERVING", () => seen.includes("NOT_SERVING"));
      assert.equal((await check("wormhole.v1.Registry")).status, "NOT_SERVING");
      wg.addDevice({ name: "wg0", publicKey: REGISTRY });
      await waitFor("SERVING again", () => seen.lastIndexOf("SERVING") > seen.indexOf("NOT_SERVING"));
      assert.deepEqual(seen, ["SERVING", "NOT_SERVING", "SERVING"], "each change once");
    } finally {
      stream.cancel();
    }
    await waitFor("watcher gone", () => reg.health.watcherCount === 0);
  });

  it("stop() tells watchers NOT_SERVING before closing", async () => {
    const own = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: null, pollIntervalMs: 20 }, { wg: registryWg(), logger: captureLogger().logger });
    const Health = grpc.makeGenericClientConstructor(healthServiceFromPackage as unknown as grpc.ServiceDefinition, "Health");
    const c = new Health(`127.0.0.1:${own.port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
    const seen: string[] = [];
    const stream = c.watch({ service: "" });
    stream.on("data", (m: { status: string }) => seen.push(m.status));
    stream.on("error", () => {});
    await waitFor("SERVING", () => seen[0] === "SERVING");
    await own.stop();
    await waitFor("NOT_SERVING", () => seen.includes("NOT_SERVING"));
    c.close();
  });
});

describe("gRPC server reflection", () => {
  let reg: RunningRegistry;
  before(async () => {
    reg = await runRegistry({ address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50 }, { wg: registryWg(), logger: captureLogger().logger });
  });
  after(() => reg.stop());

  for (const version of ["v1", "v1alpha"] as const) {
    /** One request on a ServerReflectionInfo stream, with a client from @grpc/reflection's own .proto. */
    async function ask(request: Record<string, unknown>): Promise<Record<string, unknown>> {
      const def = loadSync(join(REFLECTION_PROTO_DIR, `grpc/reflection/${version}/reflection.proto`), {
        longs: String,
        enums: String,
        bytes: Array,
        defaults: true,
        oneofs: true,
      });
      const pkg = grpc.loadPackageDefinition(def) as unknown as {
        grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
      };
      const Ctor = pkg.grpc.reflection[version]?.ServerReflection as grpc.ServiceClientConstructor;
      const client = new Ctor(`127.0.0.1:${reg.port}`, grpc.credentials.createInsecure());
      try {
        const stream = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, Record<string, unknown>> }).ServerReflectionInfo();
        const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
          stream.once("data", resolve);
          stream.once("error", reject);
        });
        stream.write(request);
        stream.end();
        return await reply;
      } finally {
        client.close();
      }
    }

    it(`${version}: lists wormhole's services and the standard ones`, async () => {
      const reply = await ask({ listServices: "*" });
      const names = ((reply.listServicesResponse as { service: Array<{ name: string }> }).service ?? []).map((s) => s.name).sort();
      for (const want of ["wgSvc.proto.Registry", "wormhole.v1.Registry", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]) {
        assert.ok(names.includes(want), `${want} missing from ${names.join(", ")}`);
      }
    });

    it(`${version}: describes wormhole.v1.Registry with its methods`, async () => {
      const reply = await ask({ fileContainingSymbol: "wormhole.v1.Registry" });
      const files = (reply.fileDescriptorResponse as { fileDescriptorProto: number[][] }).fileDescriptorProto;
      assert.ok(files.length >= 1);
      const decoded = files.map((bytes) => descriptorExt.FileDescriptorProto.decode(Buffer.from(bytes)) as unknown as { package: string; service: Array<{ name: string; method: Array<{ name: string }> }> });
      const file = decoded.find((f) => f.package === "wormhole.v1");
      const service = file?.service.find((s) => s.name === "Registry");
      assert.deepEqual(service?.method.map((m) => m.name).sort(), ["GetPeers", "Report", "Watch"]);
    });

    it(`${version}: an unknown symbol is an error response, not a crash`, async () => {
      const reply = await ask({ fileContainingSymbol: "no.such.Symbol" });
      assert.equal((reply.errorResponse as { errorCode: number }).errorCode, grpc.status.NOT_FOUND);
    });
  }
});

describe("src/registry/grpc-standard.json", () => {
  /** The descriptor of the packages' own .proto files, as src/registry/grpc-standard.ts embeds it. */
  function expected(): string {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith("health/") ? join(HEALTH_PROTO_DIR, target) : join(REFLECTION_PROTO_DIR, target));
    root.loadSync(["health/v1/health.proto", "grpc/reflection/v1/reflection.proto", "grpc/reflection/v1alpha/reflection.proto"], { keepCase: false });
    return `${JSON.stringify(root.toJSON(), null, 2)}\n`;
  }
  const path = new URL("../../src/registry/grpc-standard.json", import.meta.url);

  it("matches the .proto files grpc-health-check and @grpc/reflection ship (WORMHOLE_WRITE_DESCRIPTOR=1 rewrites it)", () => {
    if (process.env.WORMHOLE_WRITE_DESCRIPTOR === "1") writeFileSync(path, expected());
    assert.equal(readFileSync(path, "utf8"), expected());
  });
});
