import { Command, Option } from "commander";
import { envNames, ifaceValue, mergeNode, nodeFromEnv, pinsValue, type NodeValues } from "../config/index.js";
import { addressListValue, prefixValue } from "../config/values.js";
import { readCaFile } from "../tls/client.js";
import { runNode } from "../node/run.js";
import { systemClock } from "../util/clock.js";
import { createWireGuard } from "../wg/index.js";
import {
  addConfigOption,
  addLogOptions,
  asUsage,
  cliValues,
  configFileFor,
  configHelp,
  configOption,
  durationOption,
  integerOption,
  layersFor,
  listOption,
  startUp,
  stopOnSignal,
  UsageError,
} from "./common.js";

interface NodeFlags {
  config?: string;
  /** Hidden, for tests: how long an auto peer may be missing before it is removed. */
  autoPeersGrace?: number;
}

/** Settings key → the commander attribute that gives it. */
const ATTRIBUTES = {
  address: "address",
  iface: "iface",
  token: "token",
  tokenFile: "tokenFile",
  refreshMs: "refresh",
  keepaliveSec: "keepalive",
  probeIntervalMs: "probeInterval",
  allowRelay: ["allowRelay", "relay"],
  controlSocket: "controlSocket",
  tls: "tls",
  tlsCa: "tlsCa",
  tlsPin: "tlsPin",
  autoPeers: "autoPeers",
  logLevel: "logLevel",
  logFormat: "logFormat",
} as const;

export function nodeCommand(): Command {
  const cmd = new Command("node")
    .description("start a node service: point the local WireGuard peers at the endpoints the registry sees")
    .option(
      "-a, --address <address>",
      "remote rpc address of registry (host:port, required); give it again (or a comma-separated list) to watch several registries",
      listOption("--address", addressListValue),
    )
    .option(
      "-i, --iface <name>",
      "the wireguard interface used for this node [optional: every WireGuard interface when omitted]",
      configOption("--iface", ifaceValue),
    )
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
    .option("--keepalive <seconds>", "persistent keepalive given to peers it points at, unless they have one", integerOption("--keepalive", 1, 65535), 25)
    .option("--no-relay", "never relay through the registry, whatever the config file or WORMHOLE_ALLOW_RELAY say (relaying is on by default, end to end encrypted)")
    // Earlier versions' spellings: relaying was opt-in.
    .addOption(new Option("--allow-relay").hideHelp())
    .addOption(new Option("--no-allow-relay").hideHelp())
    .addOption(
      new Option("--state-dir <path>").hideHelp().argParser(() => {
        throw new UsageError("--state-dir is no longer used: the relay keeps no state on disk any more; remove it");
      }),
    )
    .option("--tls", "reach the registry over TLS, verifying its certificate with the system's CAs and the host name dialled")
    .option("--tls-ca <path>", "reach the registry over TLS, verifying its certificate with these CA certificates (PEM; may be the registry's own certificate)")
    .option(
      "--tls-pin <pins>",
      "reach the registry over TLS and accept only these public keys (sha256//BASE64, comma-separated; the registry logs its own); alone, no CA or name is checked",
      configOption("--tls-pin", pinsValue),
    )
    .option(
      "--auto-peers <prefix>",
      "add every peer of the registries whose tunnel address (a /32 or /128 allowed IP) lies inside this prefix, such as 10.77.0.0/24, and remove those it added when they leave (off by default: it trusts the registries to introduce keys)",
      configOption("--auto-peers", prefixValue),
    )
    .addOption(new Option("--auto-peers-grace <duration>").hideHelp().argParser(durationOption("--auto-peers-grace")))
    .addOption(new Option("--control-socket <path>", "where `wormhole status` asks this agent (root only)").default("/run/wormhole/node.sock"));
  addConfigOption(cmd, "node");
  addLogOptions(cmd);
  cmd.addHelpText("after", configHelp("node", envNames("node")));
  cmd.action(async (flags: NodeFlags, command: Command) => {
    const file = configFileFor(flags.config, process.env);
    const layers = layersFor<NodeValues>(cliValues(command, ATTRIBUTES) as NodeValues, asUsage(() => nodeFromEnv(process.env)), file, file?.node ?? null);
    const settings = asUsage(() => mergeNode(layers));
    if (settings.addresses.length === 0) {
      throw new UsageError(
        "--address is required: the registry's host:port (for example 203.0.113.1:1638); or WORMHOLE_ADDRESS, or address in the config file's [node] table",
      );
    }
    const { token, logger } = startUp("node", settings, file);
    const agent = await runNode(
      {
        addresses: settings.addresses,
        autoPeers: settings.autoPeers,
        ...(flags.autoPeersGrace !== undefined ? { autoPeersGraceMs: flags.autoPeersGrace } : {}),
        token: token ?? "",
        iface: settings.iface,
        refreshMs: settings.refreshMs,
        keepaliveSec: settings.keepaliveSec,
        probeIntervalMs: settings.probeIntervalMs,
        allowRelay: settings.allowRelay,
        controlSocket: settings.controlSocket,
        tls: settings.tls && { ca: caCertificates(settings.tls.caFile), pins: settings.tls.pins },
      },
      { wg: createWireGuard(), logger, clock: systemClock },
    );
    stopOnSignal(logger, () => agent.stop());
  });
  return cmd;
}

/** The CA file's certificates (null: none given); a UsageError when it cannot be read or is not PEM. */
function caCertificates(path: string | null): Buffer | null {
  if (path === null) return null;
  try {
    return readCaFile("--tls-ca", path);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
