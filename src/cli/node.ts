import { Command, Option } from "commander";
import { mergeNode, nodeFromEnv, requiredMessage, type NodeValues } from "../config/index.js";
import { readCaFile } from "../tls/client.js";
import { runNode } from "../node/run.js";
import { systemClock } from "../util/clock.js";
import { createWireGuard } from "../wg/index.js";
import { addConfigOption, addSettingOptions, asUsage, configFileFor, configHelp, flagValues, layersFor, startUp, stopOnSignal, UsageError } from "./common.js";

interface NodeFlags {
  config?: string;
}

export function nodeCommand(): Command {
  const cmd = new Command("node").description("start a node service: point the local WireGuard peers at the endpoints the registry sees");
  addSettingOptions(cmd, "node");
  // An earlier version's flag: say why it is refused rather than "unknown option".
  cmd.addOption(
    new Option("--state-dir <path>").hideHelp().argParser(() => {
      throw new UsageError("--state-dir is no longer used: the relay keeps no state on disk any more; remove it");
    }),
  );
  addConfigOption(cmd, "node");
  cmd.addHelpText("after", configHelp("node"));
  cmd.action(async (flags: NodeFlags, command: Command) => {
    const file = configFileFor(flags.config, process.env);
    const layers = layersFor<NodeValues>(flagValues(command, "node") as NodeValues, asUsage(() => nodeFromEnv(process.env)), file, file?.node ?? null);
    const settings = asUsage(() => mergeNode(layers));
    if (settings.addresses.length === 0) throw new UsageError(requiredMessage("node", "address"));
    const { token, logger } = startUp("node", settings, file);
    const agent = await runNode(
      {
        addresses: settings.addresses,
        autoPeers: settings.autoPeers,
        autoPeersGraceMs: settings.autoPeersGraceMs,
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
