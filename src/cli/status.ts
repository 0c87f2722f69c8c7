import { Command } from "commander";
import { NO_NAMES } from "../config/names.js";
import { NODE_DEFAULTS, nodeFromEnv, type NodeValues } from "../config/index.js";
import { askAgent } from "../node/control.js";
import { interfaceStatus, renderStatus, statusJson, type NodeStatus } from "../node/status.js";
import { createWireGuard } from "../wg/index.js";
import { addConfigOption, addSettingOptions, asUsage, configFileFor, flagValues } from "./common.js";

interface StatusFlags {
  json?: boolean;
  iface?: string;
  config?: string;
}

/** The one node setting status reads: where the agent listens. */
const KEYS = ["controlSocket"] as const;

export function statusCommand(): Command {
  const cmd = new Command("status")
    .description("show each peer's endpoint, path and last handshake, from the running node agent (or from WireGuard when none runs)")
    .option("--json", "print JSON: each peer keyed by its public key, the path a lowercase word")
    .option("-i, --iface <name>", "only this WireGuard interface");
  addSettingOptions(cmd, "node", KEYS, { controlSocket: "where the node agent listens (as the node: also WORMHOLE_CONTROL_SOCKET or control_socket in the config file)" });
  addConfigOption(cmd, "node");
  cmd.action(async (flags: StatusFlags, command: Command) => {
    const file = configFileFor(flags.config, process.env);
    const names = file?.names ?? NO_NAMES;
    // As the node takes it: the flag, else WORMHOLE_CONTROL_SOCKET, else the config file's [node] control_socket, else the default.
    const given = [flagValues(command, "node", KEYS) as NodeValues, asUsage(() => nodeFromEnv(process.env, KEYS)), file?.node ?? {}];
    const socket = given.find((v) => v.controlSocket !== undefined)?.controlSocket ?? NODE_DEFAULTS.controlSocket;
    let status: NodeStatus | null = await askAgent(socket);
    if (status === null) {
      const wg = createWireGuard();
      const ifaces = flags.iface ? [flags.iface] : await wg.listDevices();
      const now = Date.now();
      const interfaces = [];
      for (const iface of ifaces) interfaces.push(interfaceStatus(await wg.getDevice(iface), null, new Set(), names, now));
      status = { source: "wireguard", atMs: now, interfaces };
    }
    const shown: NodeStatus = {
      ...status,
      interfaces: status.interfaces
        .filter((i) => !flags.iface || i.iface === flags.iface)
        .map((i) => ({ ...i, peers: i.peers.map((p) => ({ ...p, name: names.get(p.publicKey) ?? p.name })) })),
    };
    process.stdout.write(flags.json ? `${JSON.stringify(statusJson(shown), null, 2)}\n` : renderStatus(shown, names));
  });
  return cmd;
}
