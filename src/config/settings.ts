/**
 * The settings of `wormhole registry` and `wormhole node`, where each can
 * come from (flag, environment variable, config file key), their defaults,
 * and how the layers merge: flag > environment > file > default.
 */
import type { LogFormat, LogLevel } from "../util/log.js";
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
  readonly logLevel?: LogLevel;
  readonly logFormat?: LogFormat;
}

/** How one setting is spelt in each source, and how its text (or TOML integer) is checked. */
export interface KeySpec {
  /** Key in the role's table of the config file. */
  readonly file: string;
  readonly env: string;
  readonly flag: string;
  /** "integer": the file may give a TOML integer; "boolean": the file gives true or false. */
  readonly kind: "string" | "integer" | "boolean";
  /** Never quoted in messages. */
  readonly secret?: boolean;
  /** A file path: in the config file, relative to the file's directory. */
  readonly relativeToFile?: boolean;
  /** A good value as written in TOML, for messages. */
  readonly example: string;
  readonly parse: (name: string, value: string | number | boolean) => unknown;
}

const str = (check: (name: string, text: string) => unknown) => (name: string, value: string | number | boolean) => check(name, String(value));
/** true/false from the file, or its text from a flag or the environment. */
const bool = (name: string, value: string | number | boolean) => booleanValue(name, typeof value === "number" ? String(value) : value);

const COMMON = {
  address: { example: '"host:port"', file: "address", env: "WORMHOLE_ADDRESS", flag: "--address", kind: "string", parse: str(addressValue) },
  iface: { example: '"wg0"', file: "iface", env: "WORMHOLE_IFACE", flag: "--iface", kind: "string", parse: str(ifaceValue) },
  token: { example: '"…"', file: "token", env: "WORMHOLE_TOKEN", flag: "--token", kind: "string", secret: true, parse: str(tokenValue) },
  tokenFile: {
    example: '"/etc/wormhole/token"',
    file: "token_file",
    env: "WORMHOLE_TOKEN_FILE",
    flag: "--token-file",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
  },
  logLevel: { example: '"info"', file: "log_level", env: "WORMHOLE_LOG_LEVEL", flag: "--log-level", kind: "string", parse: str(logLevelValue) },
  logFormat: { example: '"text"', file: "log_format", env: "WORMHOLE_LOG_FORMAT", flag: "--log-format", kind: "string", parse: str(logFormatValue) },
} as const satisfies Record<string, KeySpec>;

export const REGISTRY_KEYS = {
  ...COMMON,
  pollIntervalMs: {
    example: '"250ms"',
    file: "poll_interval",
    env: "WORMHOLE_POLL_INTERVAL",
    flag: "--poll-interval",
    kind: "string",
    parse: str((n, t) => durationValue(n, t)),
  },
  http: { example: '"127.0.0.1:9638"', file: "http", env: "WORMHOLE_HTTP", flag: "--http", kind: "string", parse: str(listenValue) },
  relay: {
    example: "true",
    file: "relay",
    env: "WORMHOLE_RELAY",
    flag: "--relay",
    kind: "boolean",
    parse: bool,
  },
  relayPairMbps: {
    example: "100",
    file: "relay_pair_limit",
    env: "WORMHOLE_RELAY_PAIR_LIMIT",
    flag: "--relay-pair-limit",
    kind: "integer",
    parse: (n, v) => integerValue(n, typeof v === "boolean" ? String(v) : v, 0, 100_000),
  },
  relayMbps: {
    example: "1000",
    file: "relay_limit",
    env: "WORMHOLE_RELAY_LIMIT",
    flag: "--relay-limit",
    kind: "integer",
    parse: (n, v) => integerValue(n, typeof v === "boolean" ? String(v) : v, 0, 1_000_000),
  },
  stun: { example: '":3478"', file: "stun", env: "WORMHOLE_STUN", flag: "--stun", kind: "string", parse: str(stunValue) },
  tlsCert: {
    example: '"/etc/wormhole/registry.crt"',
    file: "tls_cert",
    env: "WORMHOLE_TLS_CERT",
    flag: "--tls-cert",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
  },
  tlsKey: {
    example: '"/etc/wormhole/registry.key"',
    file: "tls_key",
    env: "WORMHOLE_TLS_KEY",
    flag: "--tls-key",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
  },
  addressHttp: {
    example: '":1639"',
    file: "address_http",
    env: "WORMHOLE_ADDRESS_HTTP",
    flag: "--address-http",
    kind: "string",
    parse: str(seedHttpAddressValue),
  },
  watchPeerKey: {
    example: '"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="',
    file: "watch_peer_key",
    env: "WORMHOLE_WATCH_PEER_KEY",
    flag: "--watch-peer-key",
    kind: "string",
    parse: str(publicKeyValue),
  },
} as const satisfies Record<keyof RegistryValues, KeySpec>;

export const NODE_KEYS = {
  ...COMMON,
  address: {
    example: '"host:port" or "host1:port,host2:port"',
    file: "address",
    env: "WORMHOLE_ADDRESS",
    flag: "--address",
    kind: "string",
    parse: str(addressListValue),
  },
  autoPeers: { example: '"10.77.0.0/24"', file: "auto_peers", env: "WORMHOLE_AUTO_PEERS", flag: "--auto-peers", kind: "string", parse: str(prefixValue) },
  refreshMs: { example: '"15s"', file: "refresh", env: "WORMHOLE_REFRESH", flag: "--refresh", kind: "string", parse: str((n, t) => durationValue(n, t)) },
  keepaliveSec: {
    example: "25",
    file: "keepalive",
    env: "WORMHOLE_KEEPALIVE",
    flag: "--keepalive",
    kind: "integer",
    parse: (n, v) => integerValue(n, typeof v === "boolean" ? String(v) : v, 1, 65535),
  },
  probeIntervalMs: {
    example: '"1s"',
    file: "probe_interval",
    env: "WORMHOLE_PROBE_INTERVAL",
    flag: "--probe-interval",
    kind: "string",
    parse: str((n, t) => durationValue(n, t, { allowZero: true })),
  },
  controlSocket: {
    example: '"/run/wormhole/node.sock"',
    file: "control_socket",
    env: "WORMHOLE_CONTROL_SOCKET",
    flag: "--control-socket",
    kind: "string",
    parse: str(pathValue),
  },
  allowRelay: {
    example: "true",
    file: "allow_relay",
    env: "WORMHOLE_ALLOW_RELAY",
    flag: "--allow-relay",
    kind: "boolean",
    parse: bool,
  },
  tls: { example: "true", file: "tls", env: "WORMHOLE_TLS", flag: "--tls", kind: "boolean", parse: bool },
  tlsCa: {
    example: '"/etc/wormhole/registry-ca.crt"',
    file: "tls_ca",
    env: "WORMHOLE_TLS_CA",
    flag: "--tls-ca",
    kind: "string",
    relativeToFile: true,
    parse: str(pathValue),
  },
  tlsPin: { example: '"sha256//…"', file: "tls_pin", env: "WORMHOLE_TLS_PIN", flag: "--tls-pin", kind: "string", parse: str(pinsValue) },
} as const satisfies Record<keyof NodeValues, KeySpec>;

export const KEYS: { readonly registry: Readonly<Record<string, KeySpec>>; readonly node: Readonly<Record<string, KeySpec>> } = {
  registry: REGISTRY_KEYS,
  node: NODE_KEYS,
};

/** Every environment variable either role reads, besides WORMHOLE_CONFIG. */
export function envNames(role: Role): string[] {
  return Object.values(KEYS[role]).map((k) => k.env);
}

export const REGISTRY_DEFAULTS = {
  address: ":1638",
  pollIntervalMs: 250,
  http: null,
  relay: true,
  relayPairMbps: 100,
  relayMbps: 1000,
  logLevel: "info",
  logFormat: "text",
} as const;

export const NODE_DEFAULTS = {
  refreshMs: 15_000,
  keepaliveSec: 25,
  probeIntervalMs: 1_000,
  allowRelay: true,
  controlSocket: "/run/wormhole/node.sock",
  logLevel: "info",
  logFormat: "text",
} as const;

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
