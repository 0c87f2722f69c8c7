/**
 * The lab leaves nothing behind (no namespace with the run's prefix, no
 * process, no control socket, no temp dir): after success, after a build
 * that fails midway, after SIGINT mid-build and SIGTERM mid-run; and what a
 * SIGKILLed run leaves, the sweep removes. Needs root.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { createLab, findLeftovers, isEmpty, sweepLeftovers } from "../../src/lab/index.js";
import { newRunId } from "../../src/lab/names.js";
import { isAlive } from "../../src/lab/process.js";
import { SKIP, assertNoLeftovers } from "./helpers.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const CHILD = fileURLToPath(new URL("./fixtures/lab-child.ts", import.meta.url));

const SITES = [
  { name: "home1", nat: "home", nodes: ["home1"] },
  { name: "sym1", nat: "symmetric", nodes: ["sym1"] },
] as const;

interface Child {
  readonly proc: ChildProcess;
  readonly output: () => string;
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<void>;
  waitForExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(runId: string, env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD], {
    cwd: REPO,
    env: { ...process.env, WHL_RUN_ID: runId, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  const exited = once(proc, "exit").then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return {
    proc,
    output: () => out,
    waitForLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`child did not print ${pattern} within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
        const check = () => {
          if (pattern.test(out)) done();
        };
        const done = (err?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve();
        };
        void exited.then((st) => done(pattern.test(out) ? undefined : new Error(`child exited (${st.signal ?? st.code}) before printing ${pattern}; output:\n${out}`)));
        listeners.add(check);
        check();
      });
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`child did not exit within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

describe("NAT lab cleanup", { skip: SKIP }, () => {
  it("a successful run leaves nothing behind, and its processes are dead", async () => {
    const runId = newRunId();
    const lab = await createLab({ runId, sites: SITES });
    const pids = lab.processes().map((p) => p.pid);
    assert.equal(pids.length, 3, "wireguard-go for the registry and two nodes");
    const during = await findLeftovers(runId);
    assert.ok(during.namespaces.length >= 6 && during.sockets.length === 3, `the lab exists while it runs: ${JSON.stringify(during)}`);
    assert.deepEqual(await lab.destroy(), []);
    for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid}`);
    await assertNoLeftovers(runId);
  });

  for (const step of ["link ", "wireguard-go ", "configure peers"]) {
    it(`a build that fails at \`${step.trim()}' cleans up what it made`, async () => {
      const runId = newRunId();
      await assert.rejects(
        createLab({
          runId,
          sites: SITES,
          onStep: (name) => {
            if (name.startsWith(step)) throw new Error(`injected failure at ${name}`);
          },
        }),
        /injected failure at/,
      );
      await assertNoLeftovers(runId);
    });
  }

  it("SIGINT in the middle of the build: the child cleans up and dies by SIGINT", async () => {
    const runId = newRunId();
    const child = startChild(runId, { WHL_PAUSE_AT: "configure peers" });
    await child.waitForLine(/^PAUSED configure peers/m, 30_000);
    const during = await findLeftovers(runId);
    assert.ok(during.processes.length === 3 && during.namespaces.length > 0, `the half-built lab exists: ${JSON.stringify(during)}`);
    child.proc.kill("SIGINT");
    const st = await child.waitForExit(30_000);
    assert.equal(st.signal, "SIGINT", child.output());
    await assertNoLeftovers(runId);
  });

  it("SIGTERM while running with agents: the child cleans up and dies by SIGTERM", async () => {
    const runId = newRunId();
    const child = startChild(runId);
    await child.waitForLine(/^READY$/m, 30_000);
    child.proc.kill("SIGTERM");
    const st = await child.waitForExit(30_000);
    assert.equal(st.signal, "SIGTERM", child.output());
    await assertNoLeftovers(runId);
  });

  it("a run killed with SIGKILL leaves its lab; the sweep removes all of it", async () => {
    const runId = newRunId();
    const child = startChild(runId);
    await child.waitForLine(/^READY$/m, 30_000);
    child.proc.kill("SIGKILL");
    await child.waitForExit(10_000);
    const left = await findLeftovers(runId);
    assert.ok(!isEmpty(left) && left.processes.length === 3 && left.sockets.length === 3, `a killed run cannot clean up: ${JSON.stringify(left)}`);
    const report = await sweepLeftovers();
    assert.ok(!report.skippedLive.includes(runId), "its owner is dead: not treated as live");
    assert.deepEqual(report.problems, []);
    assert.ok(report.namespaces.some((n) => n.startsWith(`whl-${runId}-`)), JSON.stringify(report));
    await assertNoLeftovers(runId);
  });

  it("the sweep leaves a live run alone", async () => {
    const runId = newRunId();
    const lab = await createLab({ runId, sites: SITES.slice(0, 1) });
    try {
      const report = await sweepLeftovers();
      assert.ok(report.skippedLive.includes(runId), JSON.stringify(report));
      const still = await findLeftovers(runId);
      assert.ok(still.namespaces.length > 0 && still.processes.length === 2, JSON.stringify(still));
    } finally {
      assert.deepEqual(await lab.destroy(), []);
    }
    await assertNoLeftovers(runId);
  });
});
