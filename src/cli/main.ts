#!/usr/bin/env node
/** `wormhole`: a table of subcommands; each lives in its own file. */
import { Command, CommanderError } from "commander";
import { CommandError } from "../util/runner.js";
import { WgError } from "../wg/types.js";
import { UsageError } from "./common.js";
import { nodeCommand } from "./node.js";
import { labCommand } from "./lab.js";
import { netcheckCommand } from "./netcheck.js";
import { registryCommand } from "./registry.js";
import { statusCommand } from "./status.js";

export const VERSION = "0.1.0";

export function buildProgram(): Command {
  const program = new Command("wormhole")
    .description("WireGuard hole punching: a registry that sees where peers are, and nodes that tell WireGuard")
    .version(VERSION)
    .showHelpAfterError("(add -h for help)")
    .exitOverride();
  for (const sub of [registryCommand(), nodeCommand(), statusCommand(), netcheckCommand(), labCommand()]) {
    sub.exitOverride().showHelpAfterError("(add -h for help)");
    program.addCommand(sub);
  }
  return program;
}

/** Exit status for an error that reached the top: 2 for usage, 1 otherwise. */
export function describeFatal(err: unknown): { message: string; status: number } {
  if (err instanceof UsageError) return { message: err.message, status: 2 };
  if (err instanceof WgError || err instanceof CommandError) return { message: err.message, status: 1 };
  if (err instanceof Error) return { message: err.message, status: 1 };
  return { message: String(err), status: 1 };
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed its message (or the help) already.
      process.exitCode = err.exitCode;
      return;
    }
    const { message, status } = describeFatal(err);
    process.stderr.write(`wormhole: ${message}\n`);
    process.exitCode = status;
  }
}

process.on("uncaughtException", (err) => {
  // A bug, not bad input: say so plainly; the stack only on request.
  const detail = process.env.WORMHOLE_DEBUG ? (err instanceof Error ? err.stack : String(err)) : describeFatal(err).message;
  process.stderr.write(`wormhole: internal error (please report it; WORMHOLE_DEBUG=1 shows where): ${detail}\n`);
  process.exit(70);
});

void main(process.argv);
