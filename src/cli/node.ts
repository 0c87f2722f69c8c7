import { Command, Option } from "commander";
import { runNode } from "../node/run.js";
import { systemClock } from "../util/clock.js";
import { createWireGuard } from "../wg/index.js";
import {
  addLogOptions,
  durationOption,
  integerOption,
  loggerFor,
  resolveToken,
  stopOnSignal,
  tokenFileWarnings,
  UsageError,
  type LogFlags,
} from "./common.js";

interface NodeFlags extends LogFlags {
  address?: string;
  iface?: string;
  token?: string;
  tokenFile?: string;
  refresh: number;
  keepalive: number;
  probeInterval: number;
}

export function nodeCommand(): Command {
  const cmd = new Command("node")
    .description("start a node service: point the local WireGuard peers at the endpoints the registry sees")
    .option("-a, --address <address>", "remote rpc address of registry (host:port, required)")
    .option("-i, --iface <name>", "the wireguard interface used for this node [optional: every WireGuard interface when omitted]")
    .option("-t, --token <token>", "token for a simple verification (visible in the process list; prefer --token-file or WORMHOLE_TOKEN)")
    .option("--token-file <path>", "read the token from this file")
    .addOption(
      new Option("-r, --refresh <duration>", "refresh interval for the peers, such as 15s, 1m, 1m30s")
        .argParser(durationOption("--refresh"))
        .default(15_000, "15s"),
    )
    .addOption(
      new Option(
        "--probe-interval <duration>",
        "send a datagram through the tunnel to the registry this often, so it sees a new NAT mapping of ours at once; 0 turns it off",
      )
        .argParser(durationOption("--probe-interval", { allowZero: true }))
        .default(1_000, "1s"),
    )
    .option("--keepalive <seconds>", "persistent keepalive given to peers it points at, unless they have one", integerOption("--keepalive", 1, 65535), 25);
  addLogOptions(cmd);
  cmd.action(async (flags: NodeFlags) => {
    if (!flags.address) throw new UsageError("--address is required: the registry's host:port (for example 203.0.113.1:1638)");
    const { token } = resolveToken(flags);
    const logger = loggerFor(flags);
    for (const w of tokenFileWarnings(flags.tokenFile)) logger.warn(w);
    if (flags.token !== undefined) logger.warn("--token is visible to every user in the process list; prefer --token-file or WORMHOLE_TOKEN");
    const agent = await runNode(
      { address: flags.address, token: token ?? "", iface: flags.iface ?? null, refreshMs: flags.refresh, keepaliveSec: flags.keepalive, probeIntervalMs: flags.probeInterval },
      { wg: createWireGuard(), logger, clock: systemClock },
    );
    stopOnSignal(logger, () => agent.stop());
  });
  return cmd;
}
