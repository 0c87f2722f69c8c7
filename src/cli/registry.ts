import { Command, Option } from "commander";
import { envNames, formatListen, ifaceValue, listenValue, publicKeyValue, seedHttpAddressValue, stunValue, mergeRegistry, registryFromEnv, type RegistryValues } from "../config/index.js";
import { IDLE_POLL_INTERVAL_MS, runRegistry } from "../registry/run.js";
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
  startUp,
  stopOnSignal,
  UsageError,
} from "./common.js";

interface RegistryFlags {
  config?: string;
}

/** Settings key → the commander attributes that give it. */
const ATTRIBUTES = {
  address: "address",
  iface: ["iface", "ifcae"],
  token: "token",
  tokenFile: "tokenFile",
  pollIntervalMs: "pollInterval",
  http: "http",
  relay: "relay",
  relayPairMbps: "relayPairLimit",
  relayMbps: "relayLimit",
  stun: "stun",
  tlsCert: "tlsCert",
  tlsKey: "tlsKey",
  addressHttp: "addressHttp",
  watchPeerKey: "watchPeerKey",
  logLevel: "logLevel",
  logFormat: "logFormat",
} as const;

export function registryCommand(): Command {
  const cmd = new Command("registry")
    .description("start a registry service: serve the endpoints its WireGuard interface sees")
    .option("-a, --address <address>", "rpc service listening address", ":1638")
    .option("-i, --iface <name>", "the wireguard interface used for registry (required)", configOption("--iface", ifaceValue))
    // The seed spelled the long flag this way; keep old command lines working.
    .addOption(new Option("--ifcae <name>").hideHelp().argParser(configOption("--ifcae", ifaceValue)))
    .option("-t, --token <token>", "token for a simple verification (visible in the process list; prefer --token-file or WORMHOLE_TOKEN)")
    .option("--token-file <path>", "read the token from this file")
    .addOption(
      new Option("--poll-interval <duration>", "how often to re-read the interface for changes")
        .argParser(durationOption("--poll-interval"))
        .default(250, "250ms"),
    )
    .addOption(
      new Option("--http <address>", "serve /metrics, /healthz and a status page on this address, such as 127.0.0.1:9638 (no authentication: keep it local)")
        .argParser(configOption("--http", listenValue))
        .default(null, "off"),
    );
  cmd
    .option("--no-relay", "do not relay between nodes that cannot reach each other directly, whatever the config file or WORMHOLE_RELAY say (relaying is on by default; it passes WireGuard's packets on, still encrypted)")
    // Relaying was opt-in before; the flag stays accepted.
    .addOption(new Option("--relay").hideHelp())
    .option("--relay-pair-limit <Mbit/s>", "relayed bandwidth per pair of nodes, both directions; 0: no limit", integerOption("--relay-pair-limit", 0, 100_000), 100)
    .option("--relay-limit <Mbit/s>", "relayed bandwidth in all; 0: no limit", integerOption("--relay-limit", 0, 1_000_000), 1000)
    .addOption(
      new Option(
        "--stun <address>",
        "answer STUN Binding requests on this UDP address and on its port + 1, so nodes (and `wormhole netcheck`) learn their public address and NAT type; off turns it off",
      )
        .argParser(configOption("--stun", stunValue))
        .default(undefined, "port 3478 of the --address host"),
    )
    .option("--tls-cert <path>", "serve the API over TLS with this certificate (PEM, leaf first); read again every minute, so renewals need no restart")
    .option("--tls-key <path>", "the certificate's private key (PEM, unencrypted; chmod 600)")
    // The seed's HTTP watch; off unless one of the two is given (the seed always listened on :1639).
    .option(
      "-A, --address-http <address>",
      "the seed's HTTP watch: answer GET /?t=TOKEN on this address with the --watch-peer-key peer's endpoint (default: off; :1639 when only -w is given)",
      configOption("--address-http", seedHttpAddressValue),
    )
    .option("-w, --watch-peer-key <key>", "the peer whose endpoint the seed's HTTP watch answers (a WireGuard public key)", configOption("--watch-peer-key", publicKeyValue));
  addConfigOption(cmd, "registry");
  addLogOptions(cmd);
  cmd.addHelpText("after", configHelp("registry", envNames("registry")));
  cmd.action(async (flags: RegistryFlags, command: Command) => {
    const file = configFileFor(flags.config, process.env);
    const layers = layersFor<RegistryValues>(
      cliValues(command, ATTRIBUTES) as RegistryValues,
      asUsage(() => registryFromEnv(process.env)),
      file,
      file?.registry ?? null,
    );
    const settings = asUsage(() => mergeRegistry(layers));
    if (!settings.iface) {
      throw new UsageError(
        "--iface is required: the WireGuard interface the nodes peer with (for example wg0); or WORMHOLE_IFACE, or iface in the config file's [registry] table",
      );
    }
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
