/**
 * The environment layer: WORMHOLE_ADDRESS, WORMHOLE_IFACE, WORMHOLE_REFRESH, ...
 * A variable that is unset or empty is not given (so `WORMHOLE_TOKEN=` turns
 * nothing on). Variables of the other role are ignored: one environment file
 * may serve both.
 */
import { KEYS, type NodeValues, type RegistryValues, type Role } from "./settings.js";

export const CONFIG_ENV = "WORMHOLE_CONFIG";

function fromEnv(role: Role, env: NodeJS.ProcessEnv, keys: readonly string[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const key of keys) {
    const spec = KEYS[role][key];
    if (spec === undefined) continue;
    const text = env[spec.env];
    if (text === undefined || text === "") continue;
    values[key] = spec.parse(spec.env, text);
  }
  return values;
}

/** The registry's settings (`keys`: some of them) from the environment; ConfigError naming the variable when one is bad. */
export function registryFromEnv(env: NodeJS.ProcessEnv, keys: readonly (keyof RegistryValues)[] = Object.keys(KEYS.registry) as (keyof RegistryValues)[]): RegistryValues {
  return fromEnv("registry", env, keys) as RegistryValues;
}

/** The node's settings (`keys`: some of them) from the environment; ConfigError naming the variable when one is bad. */
export function nodeFromEnv(env: NodeJS.ProcessEnv, keys: readonly (keyof NodeValues)[] = Object.keys(KEYS.node) as (keyof NodeValues)[]): NodeValues {
  return fromEnv("node", env, keys) as NodeValues;
}

/** The config file named by WORMHOLE_CONFIG, or null. */
export function configPathFromEnv(env: NodeJS.ProcessEnv): string | null {
  const path = env[CONFIG_ENV];
  return path === undefined || path === "" ? null : path;
}
