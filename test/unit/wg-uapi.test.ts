import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { keyFromHex, publicKeyFromPrivate } from "../../src/wg/keys.js";
import { WgError } from "../../src/wg/types.js";
import { mapSocketError, uapiExchange, uapiGetDevice, uapiProbe, uapiSocketPath, uapiUpdatePeers } from "../../src/wg/uapi.js";
import type { UapiOptions } from "../../src/wg/uapi.js";
import { makeStaleSocket, startFakeDaemon, tempDir } from "./wg-fake-daemon.js";
import type { FakeDaemon, FakeDaemonState } from "./wg-fake-daemon.js";

const PRIV = randomBytes(32).toString("hex");
const PSK = randomBytes(32).toString("hex");
const H1 = randomBytes(32).toString("hex");
const H2 = randomBytes(32).toString("hex");
const HGONE = randomBytes(32).toString("hex");

function freshState(): FakeDaemonState {
  return {
    privateKeyHex: PRIV,
    listenPort: 51820,
    peers: new Map([
      [H1, { endpoint: "192.168.5.1:51820", keepalive: 0, allowedIps: ["10.5.0.1/32"], presharedHex: PSK, handshakeSec: 1700000000 }],
      [H2, { endpoint: null, keepalive: 0, allowedIps: [], presharedHex: PSK, handshakeSec: 0 }],
    ]),
  };
}

describe("uapi: backend against a fake daemon", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let daemon: FakeDaemon;
  let options: UapiOptions;

  before(async () => {
    tmp = await tempDir();
    options = { socketDir: tmp.dir, timeoutMs: 500, maxReplyBytes: 1 << 20 };
    daemon = await startFakeDaemon(uapiSocketPath(tmp.dir, "wgt0"), freshState());
  });
  after(async () => {
    await daemon.close();
    await tmp.remove();
  });
  beforeEach(() => {
    daemon.mode = { kind: "normal" };
    daemon.requests.length = 0;
    const s = freshState();
    daemon.state.peers = s.peers;
  });

  it("get: sends get=1 and parses the reply", async () => {
    const d = await uapiGetDevice("wgt0", options);
    assert.deepEqual(daemon.requests, ["get=1\n\n"]);
    assert.equal(d.type, "userspace");
    assert.equal(d.publicKey, publicKeyFromPrivate(Buffer.from(PRIV, "hex")));
    assert.deepEqual(
      d.peers.map((p) => [p.publicKey, p.endpoint, p.lastHandshakeMs]),
      [
        [keyFromHex(H1), { ip: "192.168.5.1", port: 51820 }, 1_700_000_000_000],
        [keyFromHex(H2), null, 0],
      ],
    );
    const json = JSON.stringify(d);
    for (const secret of [PRIV, PSK, keyFromHex(PRIV), keyFromHex(PSK)]) assert.ok(!json.includes(secret));
  });

  it("set: sends exactly one update_only block per peer; a gone peer is not created", async () => {
    await uapiUpdatePeers(
      "wgt0",
      [
        { publicKey: keyFromHex(H1), endpoint: { ip: "203.0.113.1", port: 40000 }, persistentKeepaliveSec: 25 },
        { publicKey: keyFromHex(HGONE), endpoint: { ip: "203.0.113.2", port: 40001 } },
      ],
      options,
    );
    assert.deepEqual(daemon.requests, [
      `set=1\npublic_key=${H1}\nupdate_only=true\nendpoint=203.0.113.1:40000\npersistent_keepalive_interval=25\n` +
        `public_key=${HGONE}\nupdate_only=true\nendpoint=203.0.113.2:40001\n\n`,
    ]);
    assert.equal(daemon.state.peers.get(H1)?.endpoint, "203.0.113.1:40000");
    assert.equal(daemon.state.peers.get(H1)?.keepalive, 25);
    assert.equal(daemon.state.peers.has(HGONE), false);
    const d = await uapiGetDevice("wgt0", options);
    assert.deepEqual(d.peers[0]?.endpoint, { ip: "203.0.113.1", port: 40000 });
    assert.equal(d.peers.length, 2);
  });

  it("add: reads the device first, creates only the peer it lacks (no update_only), leaves an existing one untouched", async () => {
    const HNEW = randomBytes(32).toString("hex");
    await uapiUpdatePeers(
      "wgt0",
      [
        { publicKey: keyFromHex(HNEW), persistentKeepaliveSec: 25, endpoint: { ip: "203.0.113.9", port: 51820 }, add: { allowedIps: ["10.5.0.9/32"] } },
        { publicKey: keyFromHex(H1), persistentKeepaliveSec: 25, add: { allowedIps: ["10.5.0.99/32"] } }, // the user's: left alone
      ],
      options,
    );
    assert.deepEqual(daemon.requests, [
      "get=1\n\n",
      `set=1\npublic_key=${HNEW}\nendpoint=203.0.113.9:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.5.0.9/32\n\n`,
    ]);
    assert.deepEqual(daemon.state.peers.get(HNEW)?.allowedIps, ["10.5.0.9/32"]);
    assert.deepEqual(daemon.state.peers.get(H1)?.allowedIps, ["10.5.0.1/32"]);
    assert.equal(daemon.state.peers.get(H1)?.keepalive, 0);
  });

  it("remove: update_only then remove=true; a peer that is gone is not created", async () => {
    await uapiUpdatePeers("wgt0", [{ publicKey: keyFromHex(H2), remove: true }, { publicKey: keyFromHex(HGONE), remove: true }], options);
    assert.deepEqual(daemon.requests, [`set=1\npublic_key=${H2}\nupdate_only=true\nremove=true\npublic_key=${HGONE}\nupdate_only=true\nremove=true\n\n`]);
    assert.deepEqual([...daemon.state.peers.keys()], [H1]);
  });

  it("set: nothing to change means no connection at all", async () => {
    await uapiUpdatePeers("wgt0", [], options);
    await uapiUpdatePeers("wgt0", [{ publicKey: keyFromHex(H1) }], options);
    assert.deepEqual(daemon.requests, []);
  });

  it("set: errno from the daemon is a `failed' WgError", async () => {
    daemon.mode = { kind: "reply", chunks: ["errno=-22\n\n"] };
    await assert.rejects(uapiUpdatePeers("wgt0", [{ publicKey: keyFromHex(H1), persistentKeepaliveSec: 1 }], options), {
      name: "WgError",
      code: "failed",
      message: "WireGuard interface `wgt0' refused the peer update: errno 22 (EINVAL)",
    });
  });

  it("a reply split across many writes is put back together", async () => {
    const reply = `private_key=${PRIV}\nlisten_port=7\npublic_key=${H1}\nendpoint=[2001:db8::7]:7\nerrno=0\n\n`;
    const chunks: string[] = [];
    for (let i = 0; i < reply.length; i += 7) chunks.push(reply.slice(i, i + 7));
    // Split right between the two final newlines, too.
    daemon.mode = { kind: "reply", chunks: [reply.slice(0, -1), "\n"] };
    assert.equal((await uapiGetDevice("wgt0", options)).listenPort, 7);
    daemon.mode = { kind: "reply", chunks };
    const d = await uapiGetDevice("wgt0", options);
    assert.deepEqual(d.peers[0]?.endpoint, { ip: "2001:db8::7", port: 7 });
  });

  it("times out with a clear error when the daemon never answers", async () => {
    daemon.mode = { kind: "hang" };
    const t0 = Date.now();
    await assert.rejects(uapiGetDevice("wgt0", { ...options, timeoutMs: 150 }), (e: unknown) => {
      assert.ok(e instanceof WgError);
      assert.equal(e.code, "failed");
      assert.equal(e.message, `WireGuard interface \`wgt0' did not answer on ${uapiSocketPath(tmp.dir, "wgt0")} within 150 ms`);
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took >= 140 && took < 2000, `took ${took} ms`);
  });

  it("a daemon that hangs up without answering, or in the middle, is a protocol error", async () => {
    daemon.mode = { kind: "close" };
    await assert.rejects(uapiGetDevice("wgt0", options), { code: "protocol", message: /closed the connection without answering/ });
    daemon.mode = { kind: "reply", chunks: [`private_key=${PRIV}\nlisten_po`] };
    await assert.rejects(uapiGetDevice("wgt0", options), (e: unknown) => {
      assert.ok(e instanceof WgError && e.code === "protocol" && /in the middle of its reply/.test(e.message));
      assert.ok(!e.message.includes(PRIV.slice(0, 16)));
      return true;
    });
  });

  it("refuses a reply over the size limit", async () => {
    daemon.mode = { kind: "reply", chunks: [`${"x=".padEnd(4000, "y")}\n`, `${"x=".padEnd(4000, "y")}\n`, "errno=0\n\n"] };
    await assert.rejects(uapiGetDevice("wgt0", { ...options, maxReplyBytes: 5000 }), {
      code: "protocol",
      message: "reply from WireGuard interface `wgt0' is larger than 5000 bytes; refused",
    });
    // Just under the limit is fine.
    daemon.mode = { kind: "reply", chunks: [`${"x=".padEnd(4000, "y")}\n`, "errno=0\n\n"] };
    await uapiGetDevice("wgt0", { ...options, maxReplyBytes: 5000 });
  });
});

describe("uapi: socket errors", () => {
  it("no socket: not-found", async () => {
    const tmp = await tempDir();
    try {
      await assert.rejects(uapiExchange("wg9", join(tmp.dir, "wg9.sock"), "get=1\n\n", { timeoutMs: 500, maxReplyBytes: 100 }), {
        code: "not-found",
        message: `WireGuard interface \`wg9' not found (no ${join(tmp.dir, "wg9.sock")})`,
      });
      assert.equal(await uapiProbe(join(tmp.dir, "wg9.sock"), 500), false);
    } finally {
      await tmp.remove();
    }
  });

  it("a stale socket file (its daemon killed): not-found, and the probe says dead", async () => {
    const tmp = await tempDir();
    const path = join(tmp.dir, "wgs.sock");
    try {
      await makeStaleSocket(path);
      assert.ok((await stat(path)).isSocket());
      await assert.rejects(uapiExchange("wgs", path, "get=1\n\n", { timeoutMs: 500, maxReplyBytes: 100 }), {
        code: "not-found",
        message: `WireGuard interface \`wgs' not found (${path} is stale: nothing listens on it)`,
      });
      assert.equal(await uapiProbe(path, 500), false);
    } finally {
      await tmp.remove();
    }
  });

  it("EACCES/EPERM map to permission with the hint", () => {
    for (const code of ["EACCES", "EPERM"]) {
      const e = mapSocketError("wg0", "/var/run/wireguard/wg0.sock", Object.assign(new Error("denied"), { code }));
      assert.equal(e.code, "permission");
      assert.equal(e.message, "no permission to control WireGuard interface `wg0': run as root or give access to /var/run/wireguard/wg0.sock");
    }
    const other = mapSocketError("wg0", "/x.sock", Object.assign(new Error("weird"), { code: "EIO" }));
    assert.equal(other.code, "failed");
    assert.match(other.message, /\/x\.sock: weird/);
  });
});
