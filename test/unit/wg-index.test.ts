import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import type { RunOptions, RunResult } from "../../src/util/runner.js";
import { createWireGuard, keyFromHex, WgError } from "../../src/wg/index.js";
import type { WireGuard } from "../../src/wg/index.js";
import { uapiSocketPath } from "../../src/wg/uapi.js";
import { makeStaleSocket, startFakeDaemon, tempDir } from "./wg-fake-daemon.js";
import type { FakeDaemon } from "./wg-fake-daemon.js";

const H1 = randomBytes(32).toString("hex");
const KPRIV = randomBytes(32).toString("base64");
const KPUB = randomBytes(32).toString("base64");
const KPEER = randomBytes(32).toString("base64");
const DUMP = `${KPRIV}\t${KPUB}\t51821\toff\n${KPEER}\t(none)\t10.9.0.2:51820\t10.9.0.2/32\t0\t0\t0\toff\n`;

describe("createWireGuard: backend per interface, listing", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let daemon: FakeDaemon;
  let wg: WireGuard;
  const calls: (readonly string[])[] = [];

  before(async () => {
    tmp = await tempDir();
    const socketDir = join(tmp.dir, "run");
    const sys = join(tmp.dir, "sys");
    await mkdir(socketDir);
    for (const [name, uevent] of [
      ["wgk0", "DEVTYPE=wireguard\nINTERFACE=wgk0\nIFINDEX=5\n"],
      ["eth0", "INTERFACE=eth0\nIFINDEX=2\n"],
      ["lo", "INTERFACE=lo\nIFINDEX=1\n"],
    ] as const) {
      await mkdir(join(sys, name), { recursive: true });
      await writeFile(join(sys, name, "uevent"), uevent);
    }
    daemon = await startFakeDaemon(uapiSocketPath(socketDir, "wgt0"), {
      privateKeyHex: randomBytes(32).toString("hex"),
      listenPort: 51820,
      peers: new Map([[H1, { endpoint: null, keepalive: 0, allowedIps: [], presharedHex: "0".repeat(64), handshakeSec: 0 }]]),
    });
    await makeStaleSocket(uapiSocketPath(socketDir, "wgdead"));
    await writeFile(join(socketDir, "notasocket.sock"), "");
    await writeFile(join(socketDir, "wgt0.name"), "utun3");
    const runner = async (argv: readonly string[], _options?: RunOptions): Promise<RunResult> => {
      calls.push(argv);
      if (argv.join(" ") === "wg show wgk0 dump") return { stdout: DUMP, stderr: "", code: 0 };
      if (argv.join(" ") === "wg show wgk0 peers") return { stdout: `${KPEER}\n`, stderr: "", code: 0 };
      if (argv[1] === "set") return { stdout: "", stderr: "", code: 0 };
      return { stdout: "", stderr: "Unable to access interface: No such device\n", code: 1 };
    };
    wg = createWireGuard({ socketDir, sysClassNet: sys, runner, timeoutMs: 1000 });
  });
  after(async () => {
    await daemon.close();
    await tmp.remove();
  });
  beforeEach(() => {
    calls.length = 0;
    daemon.requests.length = 0;
  });

  it("lists live sockets and kernel WireGuard interfaces, sorted; skips stale, non-socket and non-WireGuard", async () => {
    assert.deepEqual(await wg.listDevices(), ["wgk0", "wgt0"]);
    assert.deepEqual(calls, [], "listing needs no `wg`");
  });

  it("uses the socket for a userspace interface", async () => {
    const d = await wg.getDevice("wgt0");
    assert.equal(d.type, "userspace");
    assert.deepEqual(daemon.requests, ["get=1\n\n"]);
    assert.deepEqual(calls, []);
  });

  it("uses `wg` for a kernel interface", async () => {
    const d = await wg.getDevice("wgk0");
    assert.equal(d.type, "kernel");
    assert.equal(d.publicKey, KPUB);
    assert.equal(d.listenPort, 51821);
    assert.deepEqual(calls, [["wg", "show", "wgk0", "dump"]]);
    assert.ok(!JSON.stringify(d).includes(KPRIV));
  });

  it("updatePeers goes to the right backend", async () => {
    await wg.updatePeers("wgt0", [{ publicKey: keyFromHex(H1), endpoint: { ip: "10.1.2.3", port: 5 } }]);
    assert.deepEqual(daemon.requests, [`set=1\npublic_key=${H1}\nupdate_only=true\nendpoint=10.1.2.3:5\n\n`]);
    assert.deepEqual(calls, []);
    await wg.updatePeers("wgk0", [{ publicKey: KPEER, persistentKeepaliveSec: 25 }]);
    assert.deepEqual(calls, [
      ["wg", "show", "wgk0", "peers"],
      ["wg", "set", "wgk0", "peer", KPEER, "persistent-keepalive", "25"],
    ]);
  });

  const missing: { name: string; message: string }[] = [
    { name: "wg9", message: "WireGuard interface `wg9' not found (existing: wgk0, wgt0)" },
    { name: "eth0", message: "WireGuard interface `eth0' not found (existing: wgk0, wgt0)" },
    { name: "wgdead", message: "WireGuard interface `wgdead' not found (existing: wgk0, wgt0)" },
    { name: "../../etc/x", message: "`../../etc/x' is not a valid interface name (1-15 characters, no '/', ':', '%' or spaces)" },
    { name: "a-very-long-interface-name", message: "`a-very-long-interface-name' is not a valid interface name (1-15 characters, no '/', ':', '%' or spaces)" },
    { name: "", message: "`' is not a valid interface name (1-15 characters, no '/', ':', '%' or spaces)" },
  ];
  for (const m of missing) {
    it(`not-found for ${JSON.stringify(m.name)}, listing what exists`, async () => {
      await assert.rejects(wg.getDevice(m.name), (e: unknown) => {
        assert.ok(e instanceof WgError);
        assert.equal(e.code, "not-found");
        assert.equal(e.message, m.message);
        return true;
      });
      await assert.rejects(wg.updatePeers(m.name, [{ publicKey: KPEER, persistentKeepaliveSec: 1 }]), { code: "not-found" });
      assert.deepEqual(calls, [], "no `wg` run for an interface that is not there");
    });
  }

  it("updatePeers validates before touching any backend", async () => {
    await assert.rejects(wg.updatePeers("wgt0", [{ publicKey: "bad" }]), TypeError);
    assert.deepEqual(daemon.requests, []);
  });
});

describe("createWireGuard: empty machine", () => {
  it("lists nothing when neither directory exists, and not-found says so", async () => {
    const tmp = await tempDir();
    try {
      const sys = join(tmp.dir, "sys");
      await mkdir(sys);
      const wg = createWireGuard({ socketDir: join(tmp.dir, "none"), sysClassNet: sys, runner: async () => assert.fail("no command expected") });
      assert.deepEqual(await wg.listDevices(), []);
      await assert.rejects(wg.getDevice("wg0"), { code: "not-found", message: "WireGuard interface `wg0' not found (existing: none)" });
    } finally {
      await tmp.remove();
    }
  });

  it("without sysfs, leaves the answer to `wg`, and a missing `wg` says how to get it", async () => {
    const tmp = await tempDir();
    try {
      const { CommandError } = await import("../../src/util/runner.js");
      const wg = createWireGuard({
        socketDir: join(tmp.dir, "none"),
        sysClassNet: join(tmp.dir, "nosys"),
        runner: async (argv) => {
          throw new CommandError(argv, null, "wg: command not found", { cause: Object.assign(new Error("spawn wg ENOENT"), { code: "ENOENT" }) });
        },
      });
      await assert.rejects(wg.getDevice("wg0"), {
        code: "tool-missing",
        message: "`wg' (wireguard-tools) is needed for kernel interface `wg0' but was not found; install wireguard-tools",
      });
    } finally {
      await tmp.remove();
    }
  });
});
