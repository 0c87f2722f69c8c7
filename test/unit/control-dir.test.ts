import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { secureDirectory } from "../../src/node/control.js";
import { captureLogger } from "../support/logs.js";

const root = mkdtempSync(join(tmpdir(), "wormhole-ctl-"));
after(() => rmSync(root, { recursive: true, force: true }));
const modeOf = (dir: string) => statSync(dir).mode & 0o7777;

describe("the control socket's directory", () => {
  it("is made 0700 when missing", async () => {
    const dir = join(root, "new", "run");
    await secureDirectory(dir, captureLogger().logger);
    assert.equal(modeOf(dir), 0o700);
  });
  it("is tightened to 0700 when it exists, is ours alone and others may write to it", async () => {
    const dir = join(root, "lax");
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const log = captureLogger();
    await secureDirectory(dir, log.logger);
    assert.equal(modeOf(dir), 0o700);
    assert.ok(log.records.some((r) => String(r.msg).startsWith("tightened the control socket's directory") && r.was === "777"));
  });
  it("is left alone, with a warning, when it is shared (sticky, like /tmp)", async () => {
    const dir = join(root, "shared");
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    const log = captureLogger();
    await secureDirectory(dir, log.logger);
    assert.equal(modeOf(dir), 0o1777);
    assert.ok(log.records.some((r) => String(r.msg).startsWith("the control socket's directory is writable by others")));
  });
  it("is left alone, silently, when only its owner may write to it", async () => {
    const dir = join(root, "tight");
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const log = captureLogger();
    await secureDirectory(dir, log.logger);
    assert.equal(modeOf(dir), 0o755);
    assert.equal(log.records.length, 0);
  });
});
