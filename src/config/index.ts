/**
 * Configuration: the TOML config file, WORMHOLE_* environment variables and
 * flags, merged flag > environment > file > default; and peer names.
 * This file is the module's public surface.
 */
export { ConfigError, formatListen, ifaceValue, listenValue, pinsValue, publicKeyValue, seedHttpAddressValue, stunValue, type ListenAddress } from "./values.js";
export {
  describeOrigin,
  KEYS,
  mergeNode,
  mergeRegistry,
  NODE_DEFAULTS,
  NODE_KEYS,
  REGISTRY_DEFAULTS,
  REGISTRY_KEYS,
  requiredMessage,
  settingName,
  type KeySpec,
  type Layer,
  type LayerSource,
  type NodeSettings,
  type NodeValues,
  type Origin,
  type RegistrySettings,
  type RegistryValues,
  type Role,
  type TokenChoice,
} from "./settings.js";
export { CONFIG_ENV, configPathFromEnv, nodeFromEnv, registryFromEnv } from "./env.js";
export { parseConfig, type ConfigFile } from "./file.js";
export { loadConfigFile, readTokenFile, resolveTokenChoice, secretFileWarnings } from "./load.js";
export { checkNames, NO_NAMES, parseNames, peerLabel, shortKey, type PeerNames } from "./names.js";
