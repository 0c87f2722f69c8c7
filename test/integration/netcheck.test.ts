/**
 * `wormhole netcheck` (the built CLI) against a registry on loopback, and the
 * probe against STUN servers that misbehave: silent, answering with another
 * transaction id, answering from another address. Every case ends with a
 * verdict, never a hang.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { probeNetwork } from "../../src/netcheck/probe.js";
import { verdict } from "../../src/netcheck/verdict.js";
import { runRegistry } from "../../src/registry/run.js";
import { encodeAddress, encodeStun, parseStun, ATTR, BINDING_SUCCESS } from "../../src/stun/codec.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

const BIN = fileURLToPath(new URL("../../dist/wormhole.cjs", import.meta.url));
const TOKEN = "netcheck-token";
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function udp(port = 0): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(port, "127.0.0.1", () => {
      cleanups.push(() => {
        try {
          s.close();
        } catch {
          /* closed by the test */
        }
      });
      resolve(s);
    });
  });
}

/** Two consecutive free UDP ports on 127.0.0.1 (the CLI's alternate port is its STUN port + 1). */
async function portPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const a = await udp();
    const p = a.address().port;
    if (p >= 65535) continue;
    try {
      const b = await udp(p + 1);
      await new Promise<void>((r) => a.close(() => r()));
      await new Promise<void>((r) => b.close(() => r()));
      return p;
    } catch {
      /* taken: try another */
    }
  }
  throw new Error("no two consecutive free UDP ports");
}

function cli(args: readonly string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "" } });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("close", (code) => resolve({ code, out, err }));
  });
}

describe("wormhole netcheck", () => {
  it("against a registry on loopback: no NAT, the API accepts the token, --json has the documented keys", async () => {
    const stunPort = await portPair();
    const wg = new FakeWireGuard([{ name: "wg0", type: "kernel", publicKey: key(9), peers: [] }]);
    const reg = await runRegistry(
      { address: "127.0.0.1:0", iface: "wg0", token: TOKEN, pollIntervalMs: 50, stun: { host: "127.0.0.1", port: stunPort, altPort: stunPort + 1 } },
      { wg, logger: captureLogger().logger },
    );
    cleanups.push(() => reg.stop());
    const r = await cli(["netcheck", "-a", `127.0.0.1:${reg.port}`, "--token", TOKEN, "--stun-port", String(stunPort), "--json"]);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    assert.equal(j.mapping, "none");
    assert.equal(j.portPreserved, true);
    assert.equal(j.hairpin, true);
    assert.equal(j.filtering, "unknown", "one loopback address: endpoint-independent and address-dependent cannot be told apart");
    assert.ok(["none", "native", "unknown"].includes(j.ipv6 as string), String(j.ipv6));
    assert.deepEqual(j.api && (j.api as { ok: boolean }).ok, true);

    const bad = await cli(["netcheck", "-a", `127.0.0.1:${reg.port}`, "--token", "wrong", "--stun-port", String(stunPort)]);
    assert.equal(bad.code, 0, bad.err);
    assert.match(bad.out, /registry API: unknown: the registry refuses the token/);
    assert.match(bad.out, /IPv4 mapping: {3}none/);
  });

  it("a registry that answers no STUN: unknown, saying why", async () => {
    const silent = await udp(); // bound, never answers: like a network that drops UDP to the probe port
    const r = await cli(["netcheck", "-a", "127.0.0.1:1", "--stun-port", String(silent.address().port), "--json"]);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { mapping: string; why: Record<string, string>; api: { ok: boolean } };
    assert.equal(j.mapping, "unknown");
    assert.match(j.why.mapping ?? "", /no STUN reply from the registry at 127\.0\.0\.1:\d+ .*UDP to the probe port is dropped/);
    assert.equal(j.api.ok, false);
  });

  it("an address that is not host:port is a usage error quoting it", async () => {
    const r = await cli(["netcheck", "-a", "registry"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /--address `registry' is not host:port/);
  });
});

describe("netcheck probe against misbehaving STUN servers", () => {
  /** A server answering every Binding request with `reply(tid, source)`, sent from `from` (default: itself). */
  async function fakeServer(reply: (tid: Uint8Array, source: { ip: string; port: number }) => Uint8Array, from?: Socket): Promise<Socket> {
    const s = await udp();
    s.on("message", (msg, rinfo) => {
      const m = parseStun(msg);
      if (typeof m === "string") return;
      (from ?? s).send(reply(m.transactionId, { ip: rinfo.address, port: rinfo.port }), rinfo.port, rinfo.address);
    });
    return s;
  }
  const success = (tid: Uint8Array, source: { ip: string; port: number }) =>
    encodeStun(BINDING_SUCCESS, tid, [{ type: ATTR.XOR_MAPPED_ADDRESS, value: encodeAddress(source, tid, true) }]);

  it("replies with another transaction id are ignored: no answer, unknown", async () => {
    const s = await fakeServer((_tid, source) => success(new Uint8Array(12).fill(7), source));
    const v = verdict(await probeNetwork({ host: "127.0.0.1", port: s.address().port, altPort: 1, timeoutMs: 400 }));
    assert.equal(v.mapping, "unknown");
    assert.match(v.ipv4Detail.why.mapping ?? "", /other datagram\(s\) ignored/);
  });

  it("a reply from another address than the one asked: unknown, naming both", async () => {
    const other = await udp();
    const s = await fakeServer(success, other);
    const v = verdict(await probeNetwork({ host: "127.0.0.1", port: s.address().port, altPort: 1, timeoutMs: 400 }));
    assert.equal(v.mapping, "unknown");
    assert.match(v.ipv4Detail.why.mapping ?? "", new RegExp(`came from 127\\.0\\.0\\.1:${other.address().port}, not from 127\\.0\\.0\\.1:${s.address().port}`));
  });
});
