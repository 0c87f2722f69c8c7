import * as grpc from "@grpc/grpc-js";
import { Command, Option } from "commander";
import { addressHost, integerValue } from "../config/values.js";
import { mergeNode, nodeFromEnv, requiredMessage, type NodeValues } from "../config/index.js";
import { stunTargetFor, type StunTarget } from "../netcheck/target.js";
import { showEndpoint } from "../stun/client.js";
import { createWireGuard } from "../wg/index.js";
import type { WgDevice } from "../wg/types.js";
import { probeNetwork } from "../netcheck/probe.js";
import { verdict, type FamilyVerdict, type Verdict } from "../netcheck/verdict.js";
import { seedProto, type SeedClient } from "../rpc/proto.js";
import { DEFAULT_STUN_PORT } from "../config/settings.js";
import { channelCredentials, readCaFile } from "../tls/client.js";
import { addConfigOption, addSettingOptions, asUsage, configFileFor, configHelp, configOption, flagValues, layersFor, tokenFor, UsageError } from "./common.js";

interface NetcheckFlags {
  config?: string;
  json?: boolean;
  stunPort: number;
  stunHost?: string;
}

/** The node's settings netcheck takes (so the node's config file and environment work), with its own help where it uses them differently. */
const KEYS = ["address", "iface", "token", "tokenFile", "tls", "tlsCa", "tlsPin"] as const;
const HELP: Readonly<Record<(typeof KEYS)[number], string>> = {
  address: "the registry's rpc address (host:port, as the node's; of several, the first); STUN goes to the same host",
  iface: "the node's WireGuard interface: when --address is inside a peer's allowed IPs, STUN goes to that peer's endpoint",
  token: "token for the registry's API (prefer --token-file or WORMHOLE_TOKEN); STUN itself needs none",
  tokenFile: "read the token from this file",
  tls: "reach the registry's API over TLS (as the node)",
  tlsCa: "CA certificates for the registry's API (as the node)",
  tlsPin: "public-key pins for the registry's API (as the node)",
};

/** The registry's API, asked once with the token: reachable, token accepted, how long a call takes. */
export type ApiCheck = { readonly ok: true; readonly rttMs: number } | { readonly ok: false; readonly why: string };

export function netcheckCommand(): Command {
  const cmd = new Command("netcheck").description(
    "tell what this network does to UDP (NAT mapping, filtering, hairpinning, IPv6), asking the registry's STUN responder, and what that means for pairs",
  );
  addSettingOptions(cmd, "node", KEYS, HELP);
  cmd
    .option("--stun-host <host>", "send STUN here instead (default: the registry's host, or the endpoint of the WireGuard peer that routes it)")
    .addOption(
      new Option("--stun-port <port>", "the registry's STUN port; the next one is its alternate")
        .argParser(configOption("--stun-port", (name, text) => integerValue(name, text, 1, 65534)))
        .default(DEFAULT_STUN_PORT),
    )
    .option("--json", "print JSON: mapping, filtering, hairpin, ipv6, portPreserved, and the details");
  addConfigOption(cmd, "node");
  cmd.addHelpText("after", configHelp("node", KEYS));
  cmd.action(async (flags: NetcheckFlags, command: Command) => {
    const file = configFileFor(flags.config, process.env);
    const layers = layersFor<NodeValues>(flagValues(command, "node", KEYS) as NodeValues, asUsage(() => nodeFromEnv(process.env)), file, file?.node ?? null);
    const settings = asUsage(() => mergeNode(layers));
    // With several registries (a list in the file or environment), the first is asked.
    const address = settings.addresses[0];
    if (address === undefined) throw new UsageError(requiredMessage("node", "address"));
    const host = addressHost(address);
    if (host === null) throw new UsageError(`--address \`${address}' is not host:port or [IPv6]:port`);
    const token = tokenFor(settings.token);
    const tls = settings.tls && { ca: settings.tls.caFile === null ? null : asUsage(() => readCaFile("--tls-ca", settings.tls?.caFile as string)), pins: settings.tls.pins };
    const target: StunTarget = flags.stunHost ? { host: flags.stunHost, via: "--stun-host" } : stunTargetFor(host, await wireGuardDevices(settings.iface));
    const [obs, api] = await Promise.all([
      probeNetwork({ host: target.host, port: flags.stunPort, altPort: flags.stunPort + 1 }),
      checkApi(address, token ?? "", channelCredentials(tls)),
    ]);
    const v = verdict(obs);
    const stun = showEndpoint({ ip: target.host, port: flags.stunPort });
    process.stdout.write(flags.json ? `${JSON.stringify({ ...netcheckJson(v, api), stun, stunVia: target.via }, null, 2)}\n` : renderNetcheck(v, api, stun, target.via));
  });
  return cmd;
}

/** The local WireGuard devices (only `iface` when given); none when they cannot be read (not root, no WireGuard). */
async function wireGuardDevices(iface: string | null): Promise<WgDevice[]> {
  const wg = createWireGuard();
  try {
    const names = iface ? [iface] : await wg.listDevices();
    return await Promise.all(names.map((n) => wg.getDevice(n)));
  } catch {
    return [];
  }
}

/** The seed's GetEndpoint (every registry has it), with the token, 5 s bound. */
function checkApi(address: string, token: string, credentials: grpc.ChannelCredentials): Promise<ApiCheck> {
  const Client = seedProto.Registry as unknown as new (address: string, creds: grpc.ChannelCredentials) => SeedClient;
  const client = new Client(address, credentials);
  const started = Date.now();
  return new Promise<ApiCheck>((resolve) => {
    client.GetEndpoint({ token }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err) => {
      client.close();
      if (!err) resolve({ ok: true, rttMs: Date.now() - started });
      else if (err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNAUTHENTICATED) resolve({ ok: false, why: "the registry refuses the token" });
      else resolve({ ok: false, why: `${grpc.status[err.code] ?? err.code}: ${err.details}` });
    });
  });
}

function familyJson(f: FamilyVerdict) {
  return { mapping: f.mapping, filtering: f.filtering, hairpin: f.hairpin, portPreserved: f.portPreserved, mapped: f.mapped, rttMs: f.rttMs, why: f.why };
}

/** What --json prints. Pure. */
export function netcheckJson(v: Verdict, api: ApiCheck) {
  return {
    mapping: v.mapping,
    filtering: v.filtering,
    hairpin: v.hairpin,
    ipv6: v.ipv6,
    portPreserved: v.portPreserved,
    rttMs: { ipv4: v.ipv4Detail.rttMs, ipv6: v.ipv6Detail.rttMs },
    api,
    why: { ...v.ipv4Detail.why, ...(v.ipv6Why ? { ipv6: v.ipv6Why } : {}) },
    ipv4Detail: familyJson(v.ipv4Detail),
    ipv6Detail: familyJson(v.ipv6Detail),
    pairs: v.pairs,
  };
}

/** The text report. Pure. */
export function renderNetcheck(v: Verdict, api: ApiCheck, stun: string, via: string | null = null): string {
  const said = (value: string, why: string | undefined): string => (value === "unknown" && why ? `unknown: ${why}` : value);
  const yesNo = (b: boolean | null, why: string | undefined): string => (b === null ? `unknown: ${why ?? "not tested"}` : b ? "yes" : "no");
  const rtt = (ms: number | null): string => (ms === null ? "-" : `${ms} ms`);
  const d4 = v.ipv4Detail;
  const d6 = v.ipv6Detail;
  const ep = (e: { ip: string; port: number } | null): string => (e === null ? "" : ` (seen as ${showEndpoint(e)})`);
  const lines = [
    `registry STUN ${stun}${via ? ` (${via})` : ""}: RTT ${rtt(d4.rttMs)} over IPv4, ${rtt(d6.rttMs)} over IPv6`,
    `registry API: ${api.ok ? `token accepted, RTT ${api.rttMs} ms` : `unknown: ${api.why}`}`,
    `IPv4 mapping:   ${said(v.mapping, d4.why.mapping)}${ep(d4.mapped)}`,
    `IPv4 filtering: ${said(v.filtering, d4.why.filtering)}`,
    `port preserved: ${yesNo(v.portPreserved, d4.why.portPreserved)}`,
    `hairpinning:    ${yesNo(v.hairpin, d4.why.hairpin)}`,
    `IPv6:           ${v.ipv6 === "native" || v.ipv6 === "nat" ? `${v.ipv6}${ep(d6.mapped)}, filtering ${said(d6.filtering, d6.why.filtering)}` : `${v.ipv6}${v.ipv6Why ? `: ${v.ipv6Why}` : ""}`}`,
    "for pairs:",
    ...v.pairs.map((p) => `  - ${p}`),
  ];
  return `${lines.join("\n")}\n`;
}
