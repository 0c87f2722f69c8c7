/**
 * src/wg against REAL wireguard-go and wg(8). Needs root, wireguard-go, wg and ip; skipped otherwise.
 *
 *   root netns (untouched)            netns wht-XXXX (ours)
 *   /var/run/wireguard/whtXXXXXX.sock <--- wireguard-go -f whtXXXXXX (interface left DOWN)
 *        ^
 *        +-- createWireGuard() / `wg` talk to the socket only
 *
 * The interface stays down and its namespace has no routes, so no packet is ever sent: peers'
 * endpoints are documentation/private addresses that are only stored, never reached.
 * Cleanup always: the daemon is killed by PID, the namespace deleted, the socket removed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { constants as fsConstants } from "node:fs";
import { createConnection } from "node:net";
import { delimiter, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ProcessGroup } from "../../src/lab/process.js";
import { generateKeyPair, makeKeyDir, startWireGuardGo } from "../../src/lab/wg.js";
import { runCommand } from "../../src/util/runner.js";
import { createWireGuard, WgError } from "../../src/wg/index.js";
import type { WgPeer } from "../../src/wg/index.js";
import { wgtoolGetDevice, wgtoolUpdatePeers } from "../../src/wg/wgtool.js";

const SOCKET_DIR = "/var/run/wireguard";

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      await access(join(dir, tool), fsConstants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

async function skipReason(): Promise<string | false> {
  if (process.platform !== "linux") return "needs Linux network namespaces";
  if (process.getuid?.() !== 0) return "needs root (network namespaces, /var/run/wireguard)";
  for (const tool of ["wireguard-go", "wg", "ip"]) if (!(await onPath(tool))) return `needs ${tool} (apt-get install --no-install-recommends wireguard-go wireguard-tools iproute2)`;
  return false;
}

const skip = await skipReason();

/** `wg show IFACE <field>` as a map from peer key to value. */
async function wgShow(iface: string, field: "endpoints" | "persistent-keepalive"): Promise<Map<string, string>> {
  const out = (await runCommand(["wg", "show", iface, field])).stdout;
  return new Map(out.split("\n").filter((l) => l !== "").map((l) => l.split("\t") as [string, string]));
}

async function publicKey(): Promise<string> {
  return (await generateKeyPair(runCommand)).publicKey;
}

/** One raw `set=1` on the control socket (test set-up only: secrets never touch argv or disk). */
function uapiSet(path: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let reply = "";
    const sock = createConnection(path, () => sock.write(`set=1\n${body}\n`));
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      reply += d;
      if (reply.endsWith("\n\n")) {
        sock.destroy();
        if (reply.trim() === "errno=0") resolve();
        else reject(new Error(`set failed: ${reply.trim()}`));
      }
    });
    sock.on("error", reject);
  });
}

describe("wg: real wireguard-go", { skip, timeout: 60_000 }, () => {
  const tag = randomBytes(3).toString("hex");
  const ns = `wht-${tag}`;
  const iface = `wht${tag}`; // 9 characters
  const socketPath = join(SOCKET_DIR, `${iface}.sock`);
  let owner: ProcessGroup | undefined;
  let keyDir: string | undefined;
  let iKeys: { priv: string; pub: string };
  let k1: string;
  let k2: string;
  let kGone: string;
  const wg = createWireGuard();

  async function cleanup(): Promise<void> {
    await owner?.teardown();
    await runCommand(["ip", "netns", "del", ns], { allowFailure: true });
    for (const dir of [keyDir, owner?.logDir]) if (dir) await rm(dir, { recursive: true, force: true });
  }

  before(async () => {
    try {
      owner = new ProcessGroup(await mkdtemp(join(tmpdir(), "wht-log-")));
      keyDir = await makeKeyDir("wht-key-", tmpdir());
      await runCommand(["ip", "netns", "add", ns]);
      const keys = await generateKeyPair(runCommand);
      iKeys = { priv: keys.privateKey.reveal(), pub: keys.publicKey };
      await startWireGuardGo(owner, runCommand, { ns, iface, name: `wireguard-go ${iface}`, logName: iface, privateKey: keys.privateKey, keyDir, listenPort: 51820 });
      [k1, k2, kGone] = (await Promise.all([publicKey(), publicKey(), publicKey()])) as [string, string, string];
      await runCommand(["ip", "netns", "exec", ns, "wg", "set", iface, "peer", k1, "endpoint", "192.168.77.2:51820", "allowed-ips", "10.77.0.2/32,fd77::2/128", "peer", k2, "allowed-ips", "10.77.0.3/32"]);

      // Safety: the interface must be down so wireguard-go sends nothing anywhere.
      const link = (await runCommand(["ip", "-n", ns, "-o", "link", "show", iface])).stdout;
      assert.match(link, /state DOWN/, `interface is not down: ${link}`);
      assert.doesNotMatch(link, /<[^>]*\bUP\b[^>]*>/, `interface is not down: ${link}`);
    } catch (err) {
      await cleanup();
      throw err;
    }
  });

  after(cleanup);

  it("lists the interface", async () => {
    assert.ok((await wg.listDevices()).includes(iface));
  });

  it("getDevice: public key as `wg pubkey` says, peers, endpoints; no private key anywhere", async () => {
    const d = await wg.getDevice(iface);
    assert.equal(d.name, iface);
    assert.equal(d.type, "userspace");
    assert.equal(d.publicKey, iKeys.pub);
    assert.equal(d.listenPort, 51820);
    const byKey = new Map(d.peers.map((p) => [p.publicKey, p]));
    assert.equal(d.peers.length, 2);
    assert.deepEqual(byKey.get(k1), {
      publicKey: k1,
      endpoint: { ip: "192.168.77.2", port: 51820 },
      lastHandshakeMs: 0,
      rxBytes: 0,
      txBytes: 0,
      allowedIps: ["10.77.0.2/32", "fd77::2/128"],
      persistentKeepaliveSec: 0,
      hasPresharedKey: false,
    } satisfies WgPeer);
    assert.equal(byKey.get(k2)?.endpoint, null);
    assert.deepEqual(byKey.get(k2)?.allowedIps, ["10.77.0.3/32"]);
    const json = JSON.stringify(d);
    assert.ok(!json.includes(iKeys.priv));
    assert.ok(!json.includes(Buffer.from(iKeys.priv, "base64").toString("hex")));
  });

  it("the `wg show dump` parser reads the same state", async () => {
    const viaSocket = await wg.getDevice(iface);
    const viaTool = await wgtoolGetDevice(iface, { runner: runCommand, timeoutMs: 5000 });
    assert.equal(viaTool.publicKey, viaSocket.publicKey);
    assert.equal(viaTool.listenPort, viaSocket.listenPort);
    const sort = (ps: readonly WgPeer[]): WgPeer[] => [...ps].sort((a, b) => a.publicKey.localeCompare(b.publicKey));
    assert.deepEqual(sort(viaTool.peers), sort(viaSocket.peers));
    assert.ok(!JSON.stringify(viaTool).includes(iKeys.priv));
  });

  it("updatePeers: endpoint and keepalive changes show in `wg show`; an unknown key creates no peer", async () => {
    await wg.updatePeers(iface, [
      { publicKey: k1, endpoint: { ip: "2001:db8::7", port: 4242 }, persistentKeepaliveSec: 25 },
      { publicKey: kGone, endpoint: { ip: "192.168.77.9", port: 1 }, persistentKeepaliveSec: 5 },
      { publicKey: k2, endpoint: { ip: "192.168.77.3", port: 51821 } },
    ]);
    const endpoints = await wgShow(iface, "endpoints");
    assert.equal(endpoints.get(k1), "[2001:db8::7]:4242");
    assert.equal(endpoints.get(k2), "192.168.77.3:51821");
    assert.equal(endpoints.has(kGone), false, "update-only: the unknown peer must not be created");
    const keepalive = await wgShow(iface, "persistent-keepalive");
    assert.equal(keepalive.get(k1), "25");
    assert.equal(keepalive.get(k2), "off");
    const d = await wg.getDevice(iface);
    assert.equal(d.peers.length, 2);
    assert.deepEqual(d.peers.find((p) => p.publicKey === k1)?.endpoint, { ip: "2001:db8::7", port: 4242 });
  });

  it("the `wg set` backend also updates without creating unknown peers", async () => {
    await wgtoolUpdatePeers(
      iface,
      [
        { publicKey: k2, persistentKeepaliveSec: 10 },
        { publicKey: kGone, endpoint: { ip: "192.168.77.10", port: 2 } },
      ],
      { runner: runCommand, timeoutMs: 5000 },
    );
    assert.equal((await wgShow(iface, "persistent-keepalive")).get(k2), "10");
    assert.equal((await wgShow(iface, "endpoints")).has(kGone), false);
  });

  it("hasPresharedKey says whether a peer has one, through both parsers, without the key", async () => {
    const psk = randomBytes(32);
    await uapiSet(socketPath, `public_key=${Buffer.from(k2, "base64").toString("hex")}\npreshared_key=${psk.toString("hex")}\n`);
    const viaSocket = await wg.getDevice(iface);
    const viaTool = await wgtoolGetDevice(iface, { runner: runCommand, timeoutMs: 5000 });
    for (const d of [viaSocket, viaTool]) {
      assert.equal(d.peers.find((p) => p.publicKey === k2)?.hasPresharedKey, true);
      assert.equal(d.peers.find((p) => p.publicKey === k1)?.hasPresharedKey, false);
      const json = JSON.stringify(d);
      assert.ok(!json.includes(psk.toString("hex")) && !json.includes(psk.toString("base64")));
    }
  });

  it("recreate: the peer comes back with its allowed IPs, the new endpoint and keepalive; no other peer changes", async () => {
    const before = await wg.getDevice(iface);
    await wg.updatePeers(iface, [
      { publicKey: k1, endpoint: { ip: "192.168.77.20", port: 40000 }, persistentKeepaliveSec: 25, recreate: { allowedIps: ["10.77.0.2/32", "fd77::2/128"] } },
    ]);
    const after1 = await wg.getDevice(iface);
    assert.equal(after1.peers.length, before.peers.length);
    const p1 = after1.peers.find((p) => p.publicKey === k1);
    assert.deepEqual(p1?.endpoint, { ip: "192.168.77.20", port: 40000 });
    assert.deepEqual(p1?.allowedIps, ["10.77.0.2/32", "fd77::2/128"]);
    assert.equal(p1?.persistentKeepaliveSec, 25);
    assert.deepEqual(after1.peers.find((p) => p.publicKey === k2), before.peers.find((p) => p.publicKey === k2));

    await wgtoolUpdatePeers(iface, [{ publicKey: k1, endpoint: { ip: "192.168.77.21", port: 40001 }, persistentKeepaliveSec: 7, recreate: { allowedIps: ["10.77.0.2/32"] } }], {
      runner: runCommand,
      timeoutMs: 5000,
    });
    const p2 = (await wg.getDevice(iface)).peers.find((p) => p.publicKey === k1);
    assert.deepEqual(p2?.endpoint, { ip: "192.168.77.21", port: 40001 });
    assert.deepEqual(p2?.allowedIps, ["10.77.0.2/32"]);
    assert.equal(p2?.persistentKeepaliveSec, 7);
  });

  it("an interface that does not exist: not-found, listing ours", async () => {
    await assert.rejects(wg.getDevice(`${iface}x`), (e: unknown) => {
      assert.ok(e instanceof WgError);
      assert.equal(e.code, "not-found");
      assert.match(e.message, new RegExp(`^WireGuard interface \`${iface}x' not found \\(existing: .*\\b${iface}\\b`));
      return true;
    });
  });
});
