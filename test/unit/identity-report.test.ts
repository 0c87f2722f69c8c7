import assert from "node:assert/strict";
import type { NetworkInterfaceInfo } from "node:os";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { hasGlobalIpv6, isGlobalIpv6, localCandidates, MAX_LOCAL_CANDIDATES } from "../../src/node/candidates.js";
import { callerIp, IdentityIndex } from "../../src/registry/identity.js";
import { candidateLeftOut, checkReport } from "../../src/registry/report.js";
import { nextPeerMap } from "../../src/registry/view.js";
import type { WgDevice, WgPeer } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

function peer(n: number, allowedIps: string[]): WgPeer {
  return { publicKey: key(n), endpoint: null, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0, allowedIps, persistentKeepaliveSec: 0, hasPresharedKey: false };
}
const index = new IdentityIndex(
  nextPeerMap(new Map(), [peer(1, ["10.200.0.2/32", "192.168.50.0/24"]), peer(2, ["10.200.0.3/32", "fd00::3/128"]), peer(3, ["0.0.0.0/0"])]),
);

describe("callerIp", () => {
  const cases: Array<[string, string | null]> = [
    ["ipv4:10.200.0.2:41234", "10.200.0.2"],
    ["ipv6:[fd00::3]:41234", "fd00::3"],
    ["ipv6:[::ffff:10.200.0.2]:1", "10.200.0.2"],
    ["10.200.0.2:1", "10.200.0.2"],
    ["::ffff:10.200.0.11:60328", "10.200.0.11"],
    ["fd00::3:443", "fd00::3"],
    ["unix:/tmp/x", null],
    ["ipv4:nonsense:1", null],
    ["", null],
  ];
  for (const [text, ip] of cases) it(`${JSON.stringify(text)} -> ${ip}`, () => assert.equal(callerIp(text), ip));
  it("never throws", () => fc.assert(fc.property(fc.string(), (s) => void callerIp(s))));
});

describe("IdentityIndex", () => {
  it("names a caller only by a single-host allowed IP", () => {
    assert.equal(index.keyOf("10.200.0.2"), key(1));
    assert.equal(index.keyOf("fd00::3"), key(2));
    assert.equal(index.keyOf("192.168.50.7"), null, "a routed LAN behind a peer is not that peer");
    assert.equal(index.keyOf("198.51.100.9"), null, "0.0.0.0/0 never names anyone");
  });
  it("knows the tunnel's ranges, wide ones included", () => {
    assert.equal(index.inTunnel("192.168.50.7"), true);
    assert.equal(new IdentityIndex(nextPeerMap(new Map(), [peer(1, ["10.200.0.2/32"])])).inTunnel("10.200.0.9"), false);
  });
});

describe("checkReport", () => {
  const ok = (req: object, caller: string | null = key(1)) =>
    checkReport({ publicKey: "", candidates: [], paths: [], ...req } as never, caller, new IdentityIndex(nextPeerMap(new Map(), [peer(1, ["10.200.0.2/32"])])), 1_000);
  it("accepts NAT64 and 6to4 forms of public addresses", () => {
    assert.ok(ok({ candidates: [{ ip: "64:ff9b::c633:6401", port: 1 }, { ip: "2002:c633:6401::1", port: 1 }] }).ok);
  });
  it("accepts a node's own candidates and paths", () => {
    const v = ok({ publicKey: key(1), candidates: [{ ip: "192.168.1.10", port: 51820 }], paths: [{ peerPublicKey: key(2), kind: "PATH_KIND_LAN", sinceUnixMs: 500, endpoint: { ip: "192.168.1.11", port: 51820 }, rttMs: 0 }] });
    assert.ok(v.ok);
    assert.deepEqual(v.report.candidates, [{ ip: "192.168.1.10", port: 51820 }]);
    assert.deepEqual(v.report.paths, [{ peerPublicKey: key(2), kind: "lan", sinceMs: 500, endpoint: { ip: "192.168.1.11", port: 51820 } }]);
  });
  it("leaves out paths to keys that are not peers of the registry, whatever their kind, and keeps the rest", () => {
    const path = (n: number, kind: string) => ({ peerPublicKey: key(n), kind, sinceUnixMs: 500, endpoint: null, rttMs: 0 });
    const req = { publicKey: key(1), candidates: [], paths: [path(2, "PATH_KIND_RELAYED"), path(3, "PATH_KIND_RELAYED"), path(3, "PATH_KIND_DOWN"), path(2, "PATH_KIND_DIRECT"), path(3, "PATH_KIND_DIRECT")] };
    const index = new IdentityIndex(nextPeerMap(new Map(), [peer(1, ["10.200.0.2/32"])]));
    const v = checkReport(req as never, key(1), index, 1_000, (k) => k === key(1) || k === key(2));
    assert.ok(v.ok);
    assert.deepEqual(
      v.report.paths.map((p) => [p.peerPublicKey, p.kind]),
      [
        [key(2), "relayed"],
        [key(2), "direct"],
      ],
    );
  });
  const refusals: Array<[string, object, string | null, grpc.status, RegExp]> = [
    ["an unidentified caller", {}, null, grpc.status.PERMISSION_DENIED, /tunnel address/],
    ["a report for another key", { publicKey: key(2) }, key(1), grpc.status.PERMISSION_DENIED, /cannot report for/],
    ["a loopback candidate", { candidates: [{ ip: "127.0.0.1", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /`127.0.0.1' is a loopback/],
    ["an unspecified candidate", { candidates: [{ ip: "0.0.0.0", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /unspecified/],
    ["a multicast candidate", { candidates: [{ ip: "ff02::1", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /multicast/],
    ["a zoned candidate", { candidates: [{ ip: "2001:db8::1%eth0", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /IPv6 zone/],
    ["a NAT64 form of loopback", { candidates: [{ ip: "64:ff9b::7f00:1", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /NAT64 for 127.0.0.1, a loopback address/],
    ["a 6to4 form of loopback", { candidates: [{ ip: "2002:7f00:1::1", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /6to4 for 127.0.0.1, a loopback address/],
    ["a candidate inside the tunnel", { candidates: [{ ip: "10.200.0.2", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /inside the tunnel/],
    ["a port out of range", { candidates: [{ ip: "192.168.1.1", port: 70000 }] }, key(1), grpc.status.INVALID_ARGUMENT, /port is not in 1-65535: `70000'/],
    ["a bad address", { candidates: [{ ip: "192.168.1", port: 1 }] }, key(1), grpc.status.INVALID_ARGUMENT, /`192.168.1'/],
    ["too many candidates", { candidates: Array.from({ length: 17 }, (_, i) => ({ ip: `192.168.1.${i + 1}`, port: 1 })) }, key(1), grpc.status.INVALID_ARGUMENT, /at most 16/],
    ["a path to a bad key", { paths: [{ peerPublicKey: "nope", kind: "PATH_KIND_LAN", sinceUnixMs: 0, endpoint: null, rttMs: 0 }] }, key(1), grpc.status.INVALID_ARGUMENT, /not a WireGuard key: `nope'/],
    ["a path of unknown kind", { paths: [{ peerPublicKey: key(2), kind: "PATH_KIND_UNSPECIFIED", sinceUnixMs: 0, endpoint: null, rttMs: 0 }] }, key(1), grpc.status.INVALID_ARGUMENT, /path kind/],
  ];
  it("leaves ULA and site-local IPv6 candidates out, and takes the rest of the report", () => {
    const v = ok({
      candidates: [
        { ip: "fd12:3456::10", port: 51820 },
        { ip: "192.168.1.10", port: 51820 },
        { ip: "FC00::1", port: 51820 },
        { ip: "fec0::1", port: 51820 },
        { ip: "2001:db8:1:1::10", port: 51820 },
      ],
      paths: [{ peerPublicKey: key(2), kind: "PATH_KIND_DIRECT", sinceUnixMs: 500, endpoint: null, rttMs: 0 }],
    });
    assert.ok(v.ok);
    assert.deepEqual(v.report.candidates, [
      { ip: "192.168.1.10", port: 51820 },
      { ip: "2001:db8:1:1::10", port: 51820 },
    ]);
    assert.equal(v.report.paths.length, 1);
  });
  it("says why a ULA candidate is left out", () => {
    assert.match(candidateLeftOut({ ip: "fd00::1", port: 1 }) ?? "", /`fd00::1' is a unique local \(ULA\) IPv6 address/);
    assert.equal(candidateLeftOut({ ip: "2001:db8::1", port: 1 }), null);
    assert.equal(candidateLeftOut({ ip: "192.168.1.1", port: 1 }), null);
  });
  for (const [name, req, caller, code, says] of refusals) {
    it(`refuses ${name}`, () => {
      const v = ok(req, caller);
      assert.equal(v.ok, false);
      if (!v.ok) {
        assert.equal(v.code, code);
        assert.match(v.details, says);
      }
    });
  }
});

describe("localCandidates", () => {
  const device: WgDevice = { name: "wg0", type: "userspace", publicKey: key(1), listenPort: 51820, peers: [peer(2, ["10.200.0.0/24"])] };
  const info = (address: string, internal = false): NetworkInterfaceInfo =>
    address.includes(":")
      ? { address, netmask: "", family: "IPv6", mac: "", internal, cidr: null, scopeid: 0 }
      : { address, netmask: "", family: "IPv4", mac: "", internal, cidr: null };
  it("offers LAN addresses with the listen port; never loopback, link-local, WireGuard interfaces or tunnel ranges", () => {
    const got = localCandidates(
      {
        lo: [info("127.0.0.1", true), info("::1", true)],
        eth0: [info("192.168.1.10"), info("fe80::1"), info("2001:db8::10"), info("169.254.1.1")],
        wg0: [info("10.200.0.5")],
        docker0: [info("10.200.0.77")],
      },
      new Set(["wg0"]),
      device,
    );
    assert.deepEqual(got, [
      { ip: "192.168.1.10", port: 51820 },
      { ip: "2001:db8::10", port: 51820 },
    ]);
  });
  it("offers global IPv6 addresses; never ULA, site-local, link-local, IPv4-mapped or inside the tunnel", () => {
    const withV6Tunnel: WgDevice = { ...device, peers: [peer(2, ["10.200.0.0/24", "2001:db8:ffff::/48"])] };
    const got = localCandidates(
      {
        eth0: [info("fd12:3456::10"), info("fec0::1"), info("fe80::1"), info("2001:db8:1:1::10"), info("::ffff:192.0.2.1"), info("2001:db8:ffff::5"), info("ff02::1")],
        eth1: [info("2001:db8:2:1::10")],
      },
      new Set(["wg0"]),
      withV6Tunnel,
    );
    assert.deepEqual(got, [
      { ip: "192.0.2.1", port: 51820 },
      { ip: "2001:db8:1:1::10", port: 51820 },
      { ip: "2001:db8:2:1::10", port: 51820 },
    ]);
    assert.equal(hasGlobalIpv6(got), true);
  });
  it("at most two IPv6 addresses, after the IPv4 ones, eight in all", () => {
    const v4 = Array.from({ length: 10 }, (_, i) => info(`192.168.${i}.10`));
    const v6 = Array.from({ length: 4 }, (_, i) => info(`2001:db8:${i + 1}::10`));
    const got = localCandidates({ eth0: [...v6, ...v4] }, new Set(), device);
    assert.equal(got.length, MAX_LOCAL_CANDIDATES);
    assert.deepEqual(got.slice(-2).map((c) => c.ip), ["2001:db8:1::10", "2001:db8:2::10"]);
    assert.ok(got.slice(0, -2).every((c) => !c.ip.includes(":")));
  });
  it("a node with only ULA has no global IPv6", () => {
    const got = localCandidates({ eth0: [info("192.168.1.10"), info("fd00::10")] }, new Set(), device);
    assert.deepEqual(got, [{ ip: "192.168.1.10", port: 51820 }]);
    assert.equal(hasGlobalIpv6(got), false);
  });
  it("isGlobalIpv6", () => {
    const cases: Array<[string, boolean]> = [
      ["2001:db8::1", true],
      ["2a00:1450::1", true],
      ["fd00::1", false],
      ["fc00::1", false],
      ["fe80::1", false],
      ["fec0::1", false],
      ["::1", false],
      ["::", false],
      ["ff02::1", false],
      ["::ffff:192.0.2.1", false],
      ["64:ff9b::c000:201", false],
      ["192.0.2.1", false],
      ["nonsense", false],
    ];
    for (const [ip, want] of cases) assert.equal(isGlobalIpv6(ip), want, ip);
  });
  it("nothing without a listen port", () => {
    assert.deepEqual(localCandidates({ eth0: [info("192.168.1.10")] }, new Set(), { ...device, listenPort: 0 }), []);
  });
});
