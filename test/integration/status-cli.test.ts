/** `wormhole status` finds the agent where the config file says the node listens. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { startControl, stopControl } from "../../src/node/control.js";
import type { NodeStatus } from "../../src/node/status.js";
import { captureLogger } from "../support/logs.js";

const BIN = fileURLToPath(new URL("../../dist/wormhole.cjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "wormhole-status-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("wormhole status -c FILE", () => {
  it("asks the agent at the config file's [node] control_socket", async () => {
    const socket = join(dir, "run", "agent.sock");
    const answer: NodeStatus = { source: "agent", atMs: 1, interfaces: [] };
    const server = await startControl(socket, async () => answer, captureLogger().logger);
    try {
      const config = join(dir, "node.toml");
      writeFileSync(config, `[node]\ncontrol_socket = "${socket}"\n`, { mode: 0o600 });
      const env = { ...process.env };
      delete env.WORMHOLE_CONTROL_SOCKET;
      const { stdout } = await promisify(execFile)(process.execPath, [BIN, "status", "--json", "-c", config], { env, timeout: 15_000 });
      assert.equal(JSON.parse(stdout).source, "agent", "it asked the agent, not WireGuard");
    } finally {
      await stopControl(server, socket);
    }
  });
});
