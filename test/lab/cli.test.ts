/** `wormhole lab` as a user runs it: the built CLI (dist/wormhole.cjs, or $WORMHOLE_BIN). Needs root. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { SKIP, WORMHOLE_CJS, assertNoLeftovers, realAgents } from "./helpers.js";

function wormhole(args: readonly string[], timeoutMs: number) {
  realAgents(); // asserts the CLI is built
  const r = spawnSync(process.execPath, [WORMHOLE_CJS, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

function assertLabRegistered(): void {
  const help = wormhole(["lab", "-h"], 15_000);
  assert.equal(help.status, 0, `${WORMHOLE_CJS} has no \`lab' command: register labCommand() from src/cli/lab.ts in src/cli/main.ts and rebuild\n${help.err}`);
}

describe("wormhole lab", { skip: SKIP }, () => {
  it("--nat with an unknown behaviour: exit 2, the flag and the value named, the valid ones listed", () => {
    assertLabRegistered();
    const r = wormhole(["lab", "--nat", "home,moon"], 15_000);
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /--nat `home,moon': unknown NAT behaviour `moon' \(valid: public, home, bare, symmetric, cgnat, samelan\)/);
  });

  it("--nat home,cgnat --duration 8: a live table that reaches direct, then nothing left", (t) => {
    assertLabRegistered();
    const r = wormhole(["lab", "--nat", "home,cgnat", "--duration", "8"], 60_000);
    assert.equal(r.status, 0, `${r.err}\n${r.out}`);
    const runId = /^wormhole lab ([0-9a-f]{4}):/m.exec(r.out)?.[1];
    assert.ok(runId, `the table names its run:\n${r.out}`);
    const last = r.out.slice(r.out.lastIndexOf("peer  "));
    for (const line of last.trim().split("\n")) t.diagnostic(line);
    assert.match(last, /^alice -> bob\s+203\.0\.113\.\d+:\d+\s+direct\s+\d+s ago\s+[\d.]+ ms$/m);
    assert.match(last, /^bob -> alice\s+203\.0\.113\.\d+:\d+\s+direct\s+\d+s ago\s+[\d.]+ ms$/m);
    assert.match(r.out, /first ping: alice->bob \d+\.\ds, bob->alice \d+\.\ds/);
    return assertNoLeftovers(runId);
  });
});
