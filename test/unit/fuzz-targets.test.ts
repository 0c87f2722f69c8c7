/**
 * Every fuzz target in fuzz/ (one per parser), run in process with a few
 * hundred cases each, so that `npm test` checks every parser's properties;
 * `node --import tsx fuzz/run-all.ts` runs them at 100,000 cases each. A
 * failure names the seed and the command that replays it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { target as callerIp } from "../../fuzz/caller-ip.js";
import { target as configFile } from "../../fuzz/config-file.js";
import { target as duration } from "../../fuzz/duration.js";
import { target as endpoint } from "../../fuzz/endpoint.js";
import { target as grpcDecode } from "../../fuzz/grpc-decode.js";
import { formatReport, runInline, type FuzzTarget } from "../../fuzz/lib.js";
import { target as reportCheck } from "../../fuzz/report-check.js";
import { target as stun } from "../../fuzz/stun.js";
import { target as uapiGet } from "../../fuzz/uapi-get.js";
import { target as watchEvent } from "../../fuzz/watch-event.js";
import { target as wgDump } from "../../fuzz/wg-dump.js";
import { durationValue } from "../../src/config/values.js";
import { parseDuration } from "../../src/util/duration.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** One test running `t` in process. */
function fuzzes<T>(t: FuzzTarget<T>): void {
  it(`${t.name}: ${t.about}`, async () => {
    let cases = 0;
    const report = await runInline(t, { runs: RUNS }, () => cases++);
    assert.equal(report.failure, null, formatReport(report, `fuzz/${t.name}.ts`));
    assert.equal(cases, RUNS, "every case ran");
  });
}

describe(`fuzz targets, ${RUNS} cases each`, () => {
  fuzzes(uapiGet);
  fuzzes(wgDump);
  fuzzes(endpoint);
  fuzzes(duration);
  fuzzes(configFile);
  fuzzes(watchEvent);
  fuzzes(reportCheck);
  fuzzes(callerIp);
  fuzzes(grpcDecode);
  fuzzes(stun);
});

describe("durations the timers can wait", () => {
  it(
    "a duration longer than setTimeout can wait (2^31 - 1 ms, about 24.8 days) is refused",
    () => {
      assert.throws(() => durationValue("node.refresh", "600h"));
      assert.throws(() => parseDuration("9999999h"));
    },
  );
});
