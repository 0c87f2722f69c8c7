/**
 * The settings of `wormhole registry` and `wormhole node`, where each can
 * come from (flag, environment variable, config file key), their defaults,
 * and how the layers merge: flag > environment > file > default.
 */
import { LOG_LEVELS, type LogFormat, type LogLevel } from "../util/log.js";
import {
  addressHost,
  addressListValue,
  addressValue,
  booleanValue,
  ConfigError,
  durationValue,
  ifaceValue,
  integerValue,
  listenValue,
  LOG_FORMATS,
  logFormatValue,
  logLevelValue,
  pathValue,
  pinsValue,
  prefixValue,
  publicKeyValue,
  seedHttpAddressValue,
  stunValue,
  tokenValue,
  type ListenAddress,
} from "./values.js";

export type Role = "registry" | "node";

/** The registry answers STUN here unless told otherwise (and on the next port, for RFC 5780 tests). */
export const DEFAULT_STUN_PORT = 3478;

/** The seed's HTTP watch listens here when only the watched peer key is given (the seed's default `-A :1639`). */
export const DEFAULT_SEED_HTTP_PORT = 1639;

/** What one layer (flags, environment, file) says about the registry; unset keys are absent. */
export interface RegistryValues {
  readonly address?: string;
  readonly iface?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly pollIntervalMs?: number;
  /** null: "off". */
  readonly http?: ListenAddress | null;
  readonly relay?: boolean;
  readonly relayPairMbps?: number;
  readonly relayMbps?: number;
  /** Where to answer STUN; null: "off". */
  readonly stun?: ListenAddress | null;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** The seed's HTTP watch (`-A`, `-w`). */
  readonly addressHttp?: ListenAddress;
  readonly watchPeerKey?: string;
  readonly logLevel?: LogLevel;
  readonly logFormat?: LogFormat;
}

/** What one layer says about a node; unset keys are absent. */
export interface NodeValues {
  /** The registries' addresses (one or more). */
  readonly address?: readonly string[];
  readonly iface?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly refreshMs?: number;
  readonly keepaliveSec?: number;
  readonly probeIntervalMs?: number;
  readonly allowRelay?: boolean;
  readonly controlSocket?: string;
  readonly tls?: boolean;
  readonly tlsCa?: string;
  /** Public-key pins, sha256//... */
  readonly tlsPin?: readonly string[];
  /** Add the registry's peers whose tunnel address lies inside this prefix. */
  readonly autoPeers?: string;
  /** How long a peer added by --auto-peers may be missing from every registry before it is removed. */
  readonly autoPeersGraceMs?: number;
  readonly logLevel?: LogLevel;
  readonly logFormat?: LogFormat;
}

/**
 * One setting: how it is spelt in each source (file key, environment
 * variable, flags), how its text (or TOML integer) is checked, its default,
 * and what it means. `wormhole registry/node/netcheck --help`, the
 * environment and file readers, the merge's defaults and docs/config.md all
 * come from these tables, so a setting is described once.
 */
export interface KeySpec<T = unknown> {
  /** Key in the role's table of the config file. */
  readonly file: string;
  readonly env: string;
  /** The long flag: the setting's name on the command line and in messages. */
  readonly flag: string;
  /** "integer": the file may give a TOML integer; "boolean": the file gives true or false. */
  readonly kind: "string" | "integer" | "boolean";
  /** Never quoted in messages. */
  readonly secret?: boolean;
  /** A file path: in the config file, relative to the file's directory. */
  readonly relativeToFile?: boolean;
  /** A good value as written in TOML, for messages. */
  readonly example: string;
  /** Checks a value (the same check for a flag, a variable, a file key and the default), naming it as given. */
  readonly parse: (name: string, value: string | number | boolean) => T;
  /** What it does, for --help and docs/config.md. */
  readonly help: string;
  /** The short flag, such as "-a" (the seed's spellings). */
  readonly short?: string;
  /** The argument's name in --help (`<address>`); none for a boolean. */
  readonly arg?: string;
  /** The default, as a user would write it; read with `parse` like any other value. */
  readonly default?: string;
  /** With no default value: what happens when it is not given, for --help and the docs ("every WireGuard interface"). */
  readonly unset?: string;
  /** Required: what to give, for the message when it is missing ("the registry's host:port (for example …)"). */
  readonly required?: string;
  /** The flag may be given several times, each a value or a comma-separated list; the lists are joined in order. */
  readonly repeats?: boolean;
  /** The values allowed (the command line checks them with commander, which lists them in --help). */
  readonly choices?: readonly string[];
  /** A boolean's flag as --help shows it, when it is not `flag`: "--no-relay" (relaying is on by default). */
  readonly shown?: string;
  /** Other spellings the command line accepts without showing them: the seed's typo, earlier versions' flags. */
  readonly hidden?: readonly string[];
}

const str =
  <T>(check: (name: string, text: string) => T) =>
  (name: string, value: string | number | boolean): T =>
    check(name, String(value));
/** true/false from the file, or its text from a flag or the environment. */
const bool = (name: string, value: string | number | boolean): boolean => booleanValue(name, typeof value === "number" ? String(value) : value);
/** A whole number from `min` to `max`: a TOML integer, or digits from a flag or the environment. */
const int =
  (min: number, max: number) =>
  (name: string, value: string | number | boolean): number =>
    integerValue(name, typeof value === "boolean" ? String(value) : value, min, max);

const TOKEN_HELP = "token for a simple verification (visible in the process list; prefer --token-file or WORMHOLE_TOKEN)";

/** Both roles' token and token file. */
const TOKEN = {
  token: { example: '"…"', file: "token", env: "WORMHOLE_TOKEN", flag: "--token", short: "-t", arg: "token", kind: "string", secret: true, parse: str(tokenValue), help: TOKEN_HELP },
  tokenFile: {
    example: '"/etc/wormhole/token"',
    file: "token_file",
    env: "WORMHOLE_TOKEN_FILE",
    flag: "--token-file",
    arg: "path",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
    help: "read the token from this file (one line)",
  },
} as const satisfies Record<string, KeySpec>;

/** Both roles' log settings: last in --help. */
const LOG = {
  logLevel: {
    example: '"info"',
    file: "log_level",
    env: "WORMHOLE_LOG_LEVEL",
    flag: "--log-level",
    arg: "level",
    kind: "string",
    parse: str(logLevelValue),
    choices: LOG_LEVELS,
    default: "info",
    help: "log level",
  },
  logFormat: {
    example: '"text"',
    file: "log_format",
    env: "WORMHOLE_LOG_FORMAT",
    flag: "--log-format",
    arg: "format",
    kind: "string",
    parse: str(logFormatValue),
    choices: LOG_FORMATS,
    default: "text",
    help: "log format",
  },
} as const satisfies Record<string, KeySpec>;

export const REGISTRY_KEYS = {
  address: {
    example: '"host:port"',
    file: "address",
    env: "WORMHOLE_ADDRESS",
    flag: "--address",
    short: "-a",
    arg: "address",
    kind: "string",
    parse: str(addressValue),
    default: ":1638",
    help: "rpc service listening address: :PORT and 0.0.0.0:PORT are every address, IPv4 and IPv6; the relay listens on the same port, UDP",
  },
  iface: {
    example: '"wg0"',
    file: "iface",
    env: "WORMHOLE_IFACE",
    flag: "--iface",
    short: "-i",
    arg: "name",
    kind: "string",
    parse: str(ifaceValue),
    required: "the WireGuard interface the nodes peer with (for example wg0)",
    help: "the wireguard interface used for registry",
    // The seed spelled the long flag this way; old command lines keep working.
    hidden: ["--ifcae"],
  },
  ...TOKEN,
  pollIntervalMs: {
    example: '"250ms"',
    file: "poll_interval",
    env: "WORMHOLE_POLL_INTERVAL",
    flag: "--poll-interval",
    arg: "duration",
    kind: "string",
    parse: str((n, t) => durationValue(n, t)),
    default: "250ms",
    help: "how often to re-read the interface for changes while a node watches",
  },
  http: {
    example: '"127.0.0.1:9638"',
    file: "http",
    env: "WORMHOLE_HTTP",
    flag: "--http",
    arg: "address",
    kind: "string",
    parse: str(listenValue),
    default: "off",
    help: "serve /metrics, /healthz and a status page on this address, such as 127.0.0.1:9638 (no authentication: keep it local)",
  },
  relay: {
    example: "true",
    file: "relay",
    env: "WORMHOLE_RELAY",
    flag: "--relay",
    shown: "--no-relay",
    // Relaying was opt-in before; the flag stays accepted.
    hidden: ["--relay"],
    kind: "boolean",
    parse: bool,
    default: "true",
    help: "do not relay between nodes that cannot reach each other directly, whatever the config file or WORMHOLE_RELAY say (relaying is on by default; it passes WireGuard's packets on, still encrypted)",
  },
  relayPairMbps: {
    example: "100",
    file: "relay_pair_limit",
    env: "WORMHOLE_RELAY_PAIR_LIMIT",
    flag: "--relay-pair-limit",
    arg: "Mbit/s",
    kind: "integer",
    parse: int(0, 100_000),
    default: "100",
    help: "relayed bandwidth per pair of nodes, both directions; 0: no limit",
  },
  relayMbps: {
    example: "1000",
    file: "relay_limit",
    env: "WORMHOLE_RELAY_LIMIT",
    flag: "--relay-limit",
    arg: "Mbit/s",
    kind: "integer",
    parse: int(0, 1_000_000),
    default: "1000",
    help: "relayed bandwidth in all; 0: no limit",
  },
  stun: {
    example: '":3478"',
    file: "stun",
    env: "WORMHOLE_STUN",
    flag: "--stun",
    arg: "address",
    kind: "string",
    parse: str(stunValue),
    unset: `port ${DEFAULT_STUN_PORT} of the --address host`,
    help: "answer STUN Binding requests on this UDP address and on its port + 1, so nodes (and `wormhole netcheck`) learn their public address and NAT type; off turns it off",
  },
  tlsCert: {
    example: '"/etc/wormhole/registry.crt"',
    file: "tls_cert",
    env: "WORMHOLE_TLS_CERT",
    flag: "--tls-cert",
    arg: "path",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
    unset: "off",
    help: "serve the API over TLS with this certificate (PEM, leaf first); read again every minute, so renewals need no restart",
  },
  tlsKey: {
    example: '"/etc/wormhole/registry.key"',
    file: "tls_key",
    env: "WORMHOLE_TLS_KEY",
    flag: "--tls-key",
    arg: "path",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
    unset: "off",
    help: "the certificate's private key (PEM, unencrypted; chmod 600)",
  },
  // The seed's HTTP watch; off unless one of the two is given (the seed always listened on :1639).
  addressHttp: {
    example: '":1639"',
    file: "address_http",
    env: "WORMHOLE_ADDRESS_HTTP",
    flag: "--address-http",
    short: "-A",
    arg: "address",
    kind: "string",
    parse: str(seedHttpAddressValue),
    unset: `off; :${DEFAULT_SEED_HTTP_PORT} when only -w is given`,
    help: "the seed's HTTP watch: answer GET /?t=TOKEN on this address with the --watch-peer-key peer's endpoint",
  },
  watchPeerKey: {
    example: '"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="',
    file: "watch_peer_key",
    env: "WORMHOLE_WATCH_PEER_KEY",
    flag: "--watch-peer-key",
    short: "-w",
    arg: "key",
    kind: "string",
    parse: str(publicKeyValue),
    help: "the peer whose endpoint the seed's HTTP watch answers (a WireGuard public key)",
  },
  ...LOG,
} as const satisfies Record<keyof RegistryValues, KeySpec>;

export const NODE_KEYS = {
  address: {
    example: '"host:port" or "host1:port,host2:port"',
    file: "address",
    env: "WORMHOLE_ADDRESS",
    flag: "--address",
    short: "-a",
    arg: "address",
    kind: "string",
    parse: str(addressListValue),
    repeats: true,
    required: "the registry's host:port (for example 203.0.113.1:1638)",
    help: "remote rpc address of registry (host:port); give it again (or a comma-separated list) to watch several registries",
  },
  iface: {
    example: '"wg0"',
    file: "iface",
    env: "WORMHOLE_IFACE",
    flag: "--iface",
    short: "-i",
    arg: "name",
    kind: "string",
    parse: str(ifaceValue),
    unset: "every WireGuard interface",
    help: "the wireguard interface used for this node",
  },
  ...TOKEN,
  refreshMs: {
    example: '"15s"',
    file: "refresh",
    env: "WORMHOLE_REFRESH",
    flag: "--refresh",
    short: "-r",
    arg: "duration",
    kind: "string",
    parse: str((n, t) => durationValue(n, t)),
    default: "15s",
    help: "refresh interval for the peers, such as 15s, 1m, 1m30s (and the poll interval against a seed registry)",
  },
  probeIntervalMs: {
    example: '"1s"',
    file: "probe_interval",
    env: "WORMHOLE_PROBE_INTERVAL",
    flag: "--probe-interval",
    arg: "duration",
    kind: "string",
    parse: str((n, t) => durationValue(n, t, { allowZero: true })),
    default: "1s",
    help: "send a datagram through the tunnel to the registry this often, so it sees a new NAT mapping of ours at once; 0 turns it off (and then nothing is relayed)",
  },
  keepaliveSec: {
    example: "25",
    file: "keepalive",
    env: "WORMHOLE_KEEPALIVE",
    flag: "--keepalive",
    arg: "seconds",
    kind: "integer",
    parse: int(1, 65535),
    default: "25",
    help: "persistent keepalive given to peers it points at, unless they have one",
  },
  allowRelay: {
    example: "true",
    file: "allow_relay",
    env: "WORMHOLE_ALLOW_RELAY",
    flag: "--allow-relay",
    shown: "--no-relay",
    // Earlier versions' spellings: relaying was opt-in.
    hidden: ["--allow-relay", "--no-allow-relay"],
    kind: "boolean",
    parse: bool,
    default: "true",
    help: "never relay through the registry, whatever the config file or WORMHOLE_ALLOW_RELAY say (relaying is on by default, end to end encrypted)",
  },
  tls: {
    example: "true",
    file: "tls",
    env: "WORMHOLE_TLS",
    flag: "--tls",
    kind: "boolean",
    parse: bool,
    unset: "off, unless --tls-ca or --tls-pin is given",
    help: "reach the registry over TLS, verifying its certificate with the system's CAs and the host name dialled",
  },
  tlsCa: {
    example: '"/etc/wormhole/registry-ca.crt"',
    file: "tls_ca",
    env: "WORMHOLE_TLS_CA",
    flag: "--tls-ca",
    arg: "path",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
    help: "reach the registry over TLS, verifying its certificate with these CA certificates (PEM; may be the registry's own certificate)",
  },
  tlsPin: {
    example: '"sha256//…"',
    file: "tls_pin",
    env: "WORMHOLE_TLS_PIN",
    flag: "--tls-pin",
    arg: "pins",
    kind: "string",
    parse: str(pinsValue),
    help: "reach the registry over TLS and accept only these public keys (sha256//BASE64, comma-separated; the registry logs its own); alone, no CA or name is checked",
  },
  autoPeers: {
    example: '"10.77.0.0/24"',
    file: "auto_peers",
    env: "WORMHOLE_AUTO_PEERS",
    flag: "--auto-peers",
    arg: "prefix",
    kind: "string",
    parse: str(prefixValue),
    unset: "off",
    help: "add every peer of the registries whose tunnel address (a /32 or /128 allowed IP) lies inside this prefix, such as 10.77.0.0/24, and remove those it added when they leave (it trusts the registries to introduce keys)",
  },
  autoPeersGraceMs: {
    example: '"5m"',
    file: "auto_peers_grace",
    env: "WORMHOLE_AUTO_PEERS_GRACE",
    flag: "--auto-peers-grace",
    arg: "duration",
    kind: "string",
    parse: str((n, t) => durationValue(n, t)),
    default: "5m",
    help: "with --auto-peers: how long a peer it added may be missing from every connected registry before it is removed (a registry restarting removes nothing)",
  },
  controlSocket: {
    example: '"/run/wormhole/node.sock"',
    file: "control_socket",
    env: "WORMHOLE_CONTROL_SOCKET",
    flag: "--control-socket",
    arg: "path",
    kind: "string",
    parse: str(pathValue),
    default: "/run/wormhole/node.sock",
    help: "where `wormhole status` asks this agent (root only)",
  },
  ...LOG,
} as const satisfies Record<keyof NodeValues, KeySpec>;

export const KEYS: { readonly registry: Readonly<Record<string, KeySpec>>; readonly node: Readonly<Record<string, KeySpec>> } = {
  registry: REGISTRY_KEYS,
  node: NODE_KEYS,
};

/** The value a spec's `parse` gives. */
type Parsed<S> = S extends { readonly parse: (name: string, value: string | number | boolean) => infer T } ? T : never;

/** The settings of a table that have a default, each with its parsed default value. */
export type Defaults<T> = { readonly [K in keyof T as T[K] extends { readonly default: string } ? K : never]: Parsed<T[K]> };

/** The defaults of a table, read from their text with each setting's own check (a bad default fails at load, naming it). */
export function defaultsOf<T extends Readonly<Record<string, KeySpec>>>(keys: T): Defaults<T> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(keys)) {
    if (spec.default !== undefined) out[key] = spec.parse(`the default of ${spec.flag}`, spec.default);
  }
  return out as Defaults<T>;
}

export const REGISTRY_DEFAULTS = defaultsOf(REGISTRY_KEYS);

export const NODE_DEFAULTS = defaultsOf(NODE_KEYS);

/** "--iface is required: the WireGuard interface …; or WORMHOLE_IFACE, or iface in the config file's [registry] table". */
export function requiredMessage(role: Role, key: string): string {
  const spec = KEYS[role][key];
  if (spec === undefined) return `${key} is required`;
  return `${spec.flag} is required: ${spec.required ?? "give it"}; or ${spec.env}, or ${spec.file} in the config file's [${role}] table`;
}

export type LayerSource = { readonly kind: "flags" } | { readonly kind: "env" } | { readonly kind: "file"; readonly path: string };

export interface Layer<V> {
  readonly source: LayerSource;
  readonly values: V;
}

/** How the user spelt a setting in a layer: `--token-file`, `WORMHOLE_TOKEN_FILE`, `node.token_file`. */
export function settingName(role: Role, key: string, source: LayerSource): string {
  const spec = KEYS[role][key];
  if (spec === undefined) return key;
  switch (source.kind) {
    case "flags":
      return spec.flag;
    case "env":
      return spec.env;
    case "file":
      return `${role}.${spec.file}`;
  }
}

/** Where a setting was given, for messages and logs. */
export interface Origin {
  /** As the user spelt it: `--token-file`, `WORMHOLE_TOKEN_FILE`, `node.token_file`. */
  readonly name: string;
  /** The config file, when it came from one. */
  readonly config: string | null;
}

/** Where `key` was given in a layer: its name there, and the config file when it is one. */
function originOf(role: Role, key: string, source: LayerSource): Origin {
  return { name: settingName(role, key, source), config: source.kind === "file" ? source.path : null };
}

/** "node.token_file in config /etc/wormhole/node.toml", "--token-file", ... */
export function describeOrigin(origin: Origin): string {
  return origin.config === null ? origin.name : `${origin.name} in config ${origin.config}`;
}

/** Where the token comes from: at most one source, the highest layer that gives one. */
export type TokenChoice =
  | { readonly kind: "none" }
  | { readonly kind: "value"; readonly token: string; readonly origin: Origin }
  | { readonly kind: "file"; readonly path: string; readonly origin: Origin };

export function chooseToken(role: Role, layers: readonly Layer<{ readonly token?: string; readonly tokenFile?: string }>[]): TokenChoice {
  for (const { source, values } of layers) {
    const { token, tokenFile } = values;
    const origin = (key: string): Origin => originOf(role, key, source);
    if (token !== undefined && tokenFile !== undefined) {
      const prefix = source.kind === "file" ? `config ${source.path}: ` : "";
      throw new ConfigError(`${prefix}give the token with only one of ${origin("token").name} and ${origin("tokenFile").name}`);
    }
    if (token !== undefined) return { kind: "value", token, origin: origin("token") };
    if (tokenFile !== undefined) return { kind: "file", path: tokenFile, origin: origin("tokenFile") };
  }
  return { kind: "none" };
}

function pick<V, K extends keyof V>(layers: readonly Layer<V>[], key: K): V[K] | undefined {
  for (const layer of layers) {
    const v = layer.values[key];
    if (v !== undefined) return v;
  }
  return undefined;
}

export interface RegistrySettings {
  readonly address: string;
  /** null: not given anywhere (required: the caller says so). */
  readonly iface: string | null;
  readonly token: TokenChoice;
  readonly pollIntervalMs: number;
  readonly http: ListenAddress | null;
  /** Relay (end to end encrypted) between peers that cannot reach each other directly; `--no-relay` turns it off. */
  readonly relay: boolean;
  /** Relayed Mbit/s per pair (both directions), and in all; 0: no limit. */
  readonly relayPairMbps: number;
  readonly relayMbps: number;
  /**
   * Where STUN Binding requests are answered (and on port + 1); null: off.
   * Default: port 3478 of the host the API listens on.
   */
  readonly stun: ListenAddress | null;
  /** Serve the API over TLS; null: plaintext. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  /**
   * The seed's HTTP watch: answer `GET /?t=TOKEN` with the watched peer's
   * endpoint. null (the default): nothing listens. Given by `-A` or `-w`;
   * `-w` alone listens on the seed's default, :1639. watchPeerKey null:
   * every answer is "not found", as the seed's without -w.
   */
  readonly seedHttp: { readonly address: ListenAddress; readonly watchPeerKey: string | null } | null;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

export interface NodeSettings {
  /** The registries, in the order given; empty: not given anywhere (required: the caller says so). */
  readonly addresses: readonly string[];
  /** null: every WireGuard interface. */
  readonly iface: string | null;
  readonly token: TokenChoice;
  readonly refreshMs: number;
  readonly keepaliveSec: number;
  readonly probeIntervalMs: number;
  /** Relay a peer through the registry (end to end encrypted) when nothing else works; `--no-relay` turns it off. */
  readonly allowRelay: boolean;
  /** Where `wormhole status` finds the running agent. */
  readonly controlSocket: string;
  /** Reach the registry over TLS; null: plaintext. caFile null: the system's CAs, or pins alone. */
  readonly tls: { readonly caFile: string | null; readonly pins: readonly string[] } | null;
  /** Add the registry's peers inside this prefix to the interface (a self-assembling mesh); null: off. */
  readonly autoPeers: string | null;
  readonly autoPeersGraceMs: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

/** Merges layers given highest first (flags, environment, file); defaults fill the rest. */
export function mergeRegistry(layers: readonly Layer<RegistryValues>[]): RegistrySettings {
  const d = REGISTRY_DEFAULTS;
  const address = pick(layers, "address") ?? d.address;
  return {
    address,
    iface: pick(layers, "iface") ?? null,
    token: chooseToken("registry", layers),
    pollIntervalMs: pick(layers, "pollIntervalMs") ?? d.pollIntervalMs,
    http: pick(layers, "http") ?? d.http,
    relay: pick(layers, "relay") ?? d.relay,
    relayPairMbps: pick(layers, "relayPairMbps") ?? d.relayPairMbps,
    relayMbps: pick(layers, "relayMbps") ?? d.relayMbps,
    stun: stunSetting(layers, address),
    tls: registryTls(layers),
    seedHttp: seedHttpSetting(layers),
    logLevel: pick(layers, "logLevel") ?? d.logLevel,
    logFormat: pick(layers, "logFormat") ?? d.logFormat,
  };
}

/** Merges layers given highest first (flags, environment, file); defaults fill the rest. */
export function mergeNode(layers: readonly Layer<NodeValues>[]): NodeSettings {
  const d = NODE_DEFAULTS;
  return {
    addresses: pick(layers, "address") ?? [],
    iface: pick(layers, "iface") ?? null,
    token: chooseToken("node", layers),
    refreshMs: pick(layers, "refreshMs") ?? d.refreshMs,
    keepaliveSec: pick(layers, "keepaliveSec") ?? d.keepaliveSec,
    probeIntervalMs: pick(layers, "probeIntervalMs") ?? d.probeIntervalMs,
    allowRelay: pick(layers, "allowRelay") ?? d.allowRelay,
    controlSocket: pick(layers, "controlSocket") ?? d.controlSocket,
    tls: nodeTls(layers),
    autoPeers: pick(layers, "autoPeers") ?? null,
    autoPeersGraceMs: pick(layers, "autoPeersGraceMs") ?? d.autoPeersGraceMs,
    logLevel: pick(layers, "logLevel") ?? d.logLevel,
    logFormat: pick(layers, "logFormat") ?? d.logFormat,
  };
}

/** The given name of `key` in the highest layer that sets it. */
function givenName<V>(role: Role, layers: readonly Layer<V>[], key: keyof V & string): string {
  const layer = layers.find((l) => l.values[key] !== undefined);
  return layer ? describeOrigin(originOf(role, key, layer.source)) : key;
}

/** The STUN address given, else port 3478 of the API's host (every address when the API listens on every address). */
function stunSetting(layers: readonly Layer<RegistryValues>[], address: string): ListenAddress | null {
  const given = pick(layers, "stun");
  if (given !== undefined) return given;
  const host = addressHost(address.trim());
  return { host: host === null || host === "0.0.0.0" || host === "::" ? null : host, port: DEFAULT_STUN_PORT };
}

/** The seed's HTTP watch: off unless the address or the watched key is given (unlike the seed, which always listened). */
function seedHttpSetting(layers: readonly Layer<RegistryValues>[]): RegistrySettings["seedHttp"] {
  const address = pick(layers, "addressHttp");
  const watchPeerKey = pick(layers, "watchPeerKey");
  if (address === undefined && watchPeerKey === undefined) return null;
  return { address: address ?? { host: null, port: DEFAULT_SEED_HTTP_PORT }, watchPeerKey: watchPeerKey ?? null };
}

/** TLS needs both the certificate and its key; either alone is a mistake, not plaintext. */
function registryTls(layers: readonly Layer<RegistryValues>[]): RegistrySettings["tls"] {
  const certFile = pick(layers, "tlsCert");
  const keyFile = pick(layers, "tlsKey");
  if (certFile === undefined && keyFile === undefined) return null;
  if (certFile === undefined) throw new ConfigError(`${givenName("registry", layers, "tlsKey")} is given without --tls-cert: TLS needs both the certificate and its key`);
  if (keyFile === undefined) throw new ConfigError(`${givenName("registry", layers, "tlsCert")} is given without --tls-key: TLS needs both the certificate and its key`);
  return { certFile, keyFile };
}

/** A CA file or pins turn TLS on; `tls = false` with either of them is a contradiction. */
function nodeTls(layers: readonly Layer<NodeValues>[]): NodeSettings["tls"] {
  const on = pick(layers, "tls");
  const caFile = pick(layers, "tlsCa") ?? null;
  const pins = pick(layers, "tlsPin") ?? [];
  if (on === false && (caFile !== null || pins.length > 0)) {
    const what = caFile !== null ? givenName("node", layers, "tlsCa") : givenName("node", layers, "tlsPin");
    throw new ConfigError(`${givenName("node", layers, "tls")} turns TLS off, but ${what} is given`);
  }
  if (on !== true && caFile === null && pins.length === 0) return null;
  return { caFile, pins };
}
