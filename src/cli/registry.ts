import { Command, Option } from "commander";
import { runRegistry } from "../registry/run.js";
import { createWireGuard } from "../wg/index.js";
import { addLogOptions, durationOption, loggerFor, resolveToken, stopOnSignal, tokenFileWarnings, UsageError, type LogFlags } from "./common.js";

interface RegistryFlags extends LogFlags {
  address: string;
  iface?: string;
  ifcae?: string;
  token?: string;
  tokenFile?: string;
  pollInterval: number;
}

export function registryCommand(): Command {
  const cmd = new Command("registry")
    .description("start a registry service: serve the endpoints its WireGuard interface sees")
    .option("-a, --address <address>", "rpc service listening address", ":1638")
    .option("-i, --iface <name>", "the wireguard interface used for registry (required)")
    // The seed spelled the long flag this way; keep old command lines working.
    .addOption(new Option("--ifcae <name>").hideHelp())
    .option("-t, --token <token>", "token for a simple verification (visible in the process list; prefer --token-file or WORMHOLE_TOKEN)")
    .option("--token-file <path>", "read the token from this file")
    .addOption(
      new Option("--poll-interval <duration>", "how often to re-read the interface for changes")
        .argParser(durationOption("--poll-interval"))
        .default(250, "250ms"),
    );
  addLogOptions(cmd);
  cmd.action(async (flags: RegistryFlags) => {
    const iface = flags.iface ?? flags.ifcae;
    if (!iface) throw new UsageError("--iface is required: the WireGuard interface the nodes peer with (for example wg0)");
    const { token } = resolveToken(flags);
    const logger = loggerFor(flags);
    for (const w of tokenFileWarnings(flags.tokenFile)) logger.warn(w);
    if (flags.token !== undefined) logger.warn("--token is visible to every user in the process list; prefer --token-file or WORMHOLE_TOKEN");
    const registry = await runRegistry(
      { address: flags.address, iface, token, pollIntervalMs: flags.pollInterval },
      { wg: createWireGuard(), logger },
    );
    stopOnSignal(logger, () => registry.stop());
  });
  return cmd;
}
