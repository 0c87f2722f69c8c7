/**
 * PeerTable while nobody watches (issue 12: the registry polled its interface
 * at 15 % of a core with no client at all): with idlePollIntervalMs it reads
 * the interface that rarely on its own, on demand for callers (fresh()), and
 * at the usual interval again as soon as someone subscribes. The polling test
 * drives setTimeout with node:test's mock timers, so "no read yet" is exact.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import { PeerTable } from "../../src/registry/table.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { captureLogger } from "../support/logs.js";
import { key } from "../support/keys.js";

function countingTable(options: { pollIntervalMs: number; idlePollIntervalMs?: number }) {
  const wg = new FakeWireGuard([{ name: "wg0", publicKey: key(9), peers: [{ publicKey: key(1), allowedIps: ["10.0.0.1/32"] }] }]);
  let reads = 0;
  const getDevice = wg.getDevice.bind(wg);
  wg.getDevice = (name: string) => {
    reads++;
    return getDevice(name);
  };
  // pollCostFactor 0: the interval does not stretch with the (real) time a read takes.
  const table = new PeerTable({ wg, iface: "wg0", logger: captureLogger().logger, pollCostFactor: 0, ...options });
  return { table, reads: () => reads, wg };
}

/** Lets the promise chains that timers started run to their end. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => mock.timers.reset());

describe("PeerTable while nobody watches", () => {
  it("reads every idlePollIntervalMs alone, and at the usual interval from the moment someone subscribes", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    const { table, reads } = countingTable({ pollIntervalMs: 20, idlePollIntervalMs: 60_000 });
    await table.start();
    try {
      assert.equal(reads(), 1, "the first read");
      mock.timers.tick(59_000);
      await settle();
      assert.equal(reads(), 1, "no read within the idle interval");
      mock.timers.tick(1_000);
      await settle();
      assert.equal(reads(), 2, "one read when it has passed");

      const unsubscribe = table.subscribe(() => {});
      mock.timers.tick(0);
      await settle();
      assert.equal(reads(), 3, "a first subscriber: read at once");
      for (let i = 0; i < 3; i++) {
        mock.timers.tick(20);
        await settle();
      }
      assert.equal(reads(), 6, "then every pollIntervalMs");

      unsubscribe();
      mock.timers.tick(20); // the read already scheduled
      await settle();
      assert.equal(reads(), 7);
      mock.timers.tick(59_000);
      await settle();
      assert.equal(reads(), 7, "idle again");
    } finally {
      table.stop();
    }
  });

  it("without idlePollIntervalMs, polls as before", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    const { table, reads } = countingTable({ pollIntervalMs: 20 });
    await table.start();
    try {
      for (let i = 0; i < 3; i++) {
        mock.timers.tick(20);
        await settle();
      }
      assert.equal(reads(), 4);
    } finally {
      table.stop();
    }
  });

  it("fresh() reads when the last read is older than the poll interval, once for callers at the same time, and not again while fresh", async () => {
    const { table, reads } = countingTable({ pollIntervalMs: 200, idlePollIntervalMs: 60_000 });
    await table.start();
    try {
      await table.fresh();
      assert.equal(reads(), 1, "fresh after start: no read");
      await new Promise((resolve) => setTimeout(resolve, 250)); // the last read is now older than 200 ms
      await Promise.all(Array.from({ length: 5 }, () => table.fresh()));
      assert.equal(reads(), 2, "one read for five callers");
      await table.fresh();
      assert.equal(reads(), 2, "fresh again");
    } finally {
      table.stop();
    }
  });

  it("fresh() while a read is under way waits for that read instead of starting a second", async () => {
    const { table, reads, wg } = countingTable({ pollIntervalMs: 20, idlePollIntervalMs: 60_000 });
    await table.start();
    try {
      let release: () => void = () => {};
      const getDevice = wg.getDevice;
      wg.getDevice = (name: string) => {
        const result = getDevice(name);
        return new Promise((resolve) => (release = () => resolve(result)));
      };
      await new Promise((resolve) => setTimeout(resolve, 30)); // the first read is now older than 20 ms
      const polled = table.refresh(); // as the timer would, held until release()
      let done = false;
      const waiting = table.fresh().then(() => (done = true));
      assert.equal(reads(), 2, "one read under way, none beside it");
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(done, false, "fresh() waits for it");
      release();
      await Promise.all([polled, waiting]);
      assert.equal(reads(), 2);
    } finally {
      table.stop();
    }
  });
});

