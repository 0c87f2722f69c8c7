/** Shared by the lab tests: when to skip, where the built CLI is, leftover checks. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { AgentDriver, WormholeDriver } from "../../src/lab/index.js";
import { findLeftovers, isEmpty, manualAgents, whyLabCannotRun, wormholeAgents } from "../../src/lab/index.js";

/** Why the lab tests cannot run on this machine (not root, tools missing), or false. */
export const SKIP: string | false = whyLabCannotRun() ?? false;

/** The built CLI: $WORMHOLE_BIN, else dist/wormhole.cjs. */
export const WORMHOLE_CJS = process.env.WORMHOLE_BIN ?? fileURLToPath(new URL("../../dist/wormhole.cjs", import.meta.url));
export const WORMHOLE_COMMAND = [process.execPath, WORMHOLE_CJS];

/** The real agents; fails (does not skip) when the CLI has not been built. */
export function realAgents(): WormholeDriver {
  assert.ok(existsSync(WORMHOLE_CJS), `${WORMHOLE_CJS} is missing: run \`npm run build' before the lab tests`);
  return wormholeAgents({ command: WORMHOLE_COMMAND });
}

/** WORMHOLE_LAB_AGENTS=manual runs the matrix with the stand-in instead of the product. */
export function matrixAgents(): AgentDriver {
  return process.env.WORMHOLE_LAB_AGENTS === "manual" ? manualAgents() : realAgents();
}

export async function assertNoLeftovers(runId: string): Promise<void> {
  const left = await findLeftovers(runId);
  assert.ok(isEmpty(left), `lab run ${runId} left things behind: ${JSON.stringify(left)}`);
}
