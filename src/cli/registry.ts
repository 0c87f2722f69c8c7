import { Command } from "commander";
import { formatListen, mergeRegistry, registryFromEnv, requiredMessage, type RegistryValues } from "../config/index.js";
import { IDLE_POLL_INTERVAL_MS, runRegistry } from "../registry/run.js";
import { createWireGuard } from "../wg/index.js";
import { addConfigOption, addSettingOptions, asUsage, configFileFor, configHelp, flagValues, layersFor, startUp, stopOnSignal, UsageError } from "./common.js";

interface RegistryFlags {
  config?: string;
}

export function registryCommand(): Command {
  const cmd = new Command("registry").description("start a registry service: serve the endpoints its WireGuard interface sees");
  addSettingOptions(cmd, "registry");
  addConfigOption(cmd, "registry");
  cmd.addHelpText("after", configHelp("registry"));
  cmd.action(async (flags: RegistryFlags, command: Command) => {
    const file = configFileFor(flags.config, process.env);
    const layers = layersFor<RegistryValues>(
      flagValues(command, "registry") as RegistryValues,
      asUsage(() => registryFromEnv(process.env)),
      file,
      file?.registry ?? null,
    );
    const settings = asUsage(() => mergeRegistry(layers));
    if (!settings.iface) throw new UsageError(requiredMessage("registry", "iface"));
    const { token, logger } = startUp("registry", settings, file);
    if (settings.http && settings.http.host !== "127.0.0.1" && settings.http.host !== "::1" && settings.http.host !== "localhost") {
      logger.warn(
        { http: formatListen(settings.http) },
        "the HTTP status page and metrics have no authentication and the page shows every peer's endpoint; serve them on a loopback address or behind a proxy that checks who asks",
      );
    }
    const registry = await runRegistry(
      {
        address: settings.address,
        iface: settings.iface,
        token,
        pollIntervalMs: settings.pollIntervalMs,
        idlePollIntervalMs: IDLE_POLL_INTERVAL_MS,
        http: settings.http,
        relay: settings.relay,
        relayPairMbps: settings.relayPairMbps,
        relayMbps: settings.relayMbps,
        stun: settings.stun && {
          host: settings.stun.host,
          port: settings.stun.port,
          altPort: settings.stun.port === 0 ? 0 : settings.stun.port + 1,
          optional: layers.every((l) => l.values.stun === undefined),
        },
        tls: settings.tls,
        seedHttp: settings.seedHttp,
        names: file?.names,
      },
      { wg: createWireGuard(), logger },
    );
    stopOnSignal(logger, () => registry.stop());
  });
  return cmd;
}
