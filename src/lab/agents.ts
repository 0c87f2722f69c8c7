/**
 * Who hands the registry-observed endpoints to the nodes: pluggable.
 *
 * - {@link wormholeAgents}: the real product, `wormhole registry` and
 *   `wormhole node` processes started inside the lab's namespaces.
 * - {@link manualAgents}: a stand-in that does by hand what a node agent does
 *   (read the registry's `wg show IFACE endpoints`, `wg set` them on each node),
 *   to prove the topology independently of the product.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Lab } from "./lab.js";
import type { LabProcess } from "./process.js";
import { tailFile } from "./process.js";
import { pollUntil } from "./wait.js";
import { formatEndpoint } from "../wg/endpoint.js";
import { inNs, readEndpoints } from "./wg.js";

export interface AgentDriver {
  /** "wormhole" or "manual", for logs and reports. */
  readonly name: string;
  startRegistry(lab: Lab): Promise<void>;
  /** Stops the registry agent; `signal` SIGKILL simulates a crash. */
  stopRegistry(lab: Lab, signal?: NodeJS.Signals): Promise<void>;
  startNode(lab: Lab, node: string): Promise<void>;
  /** Stops everything this driver started (the lab's teardown also kills its processes). */
  stopAll(lab: Lab): Promise<void>;
}

/** Starts the registry, then every node's agent (or only `nodes`). */
export async function startAgents(lab: Lab, driver: AgentDriver, nodes: readonly string[] = lab.plan.nodes.map((n) => n.name)): Promise<void> {
  await driver.startRegistry(lab);
  for (const n of nodes) await driver.startNode(lab, n);
}

// ---- the real wormhole ---------------------------------------------------------

/** Where a lab node's agent answers `wormhole status` (per node: they share the file system). */
export function controlSocketOf(lab: Lab, name: string): string {
  return join(lab.tmpDir, `ctl-${name}.sock`);
}

export interface WormholeAgentsOptions {
  /** argv prefix of the wormhole CLI. Default {@link defaultWormholeCommand}(). */
  readonly command?: readonly string[];
  /**
   * `wormhole node -r`: how often a node re-checks on its own. Default "60s":
   * longer than any wait in the lab, so what the lab sees arrived by push
   * (Watch) and the agent's own timers, never by a refresh tick.
   */
  readonly refresh?: string;
  /** More arguments for `wormhole registry` (e.g. ["--http", "127.0.0.1:9638"]). */
  readonly registryArgs?: readonly string[];
  /** More arguments for every `wormhole node` (e.g. ["--tls-pin", "sha256//..."]). */
  readonly nodeArgs?: readonly string[];
  /** Bound for the registry to listen. Default 15 000. */
  readonly readyTimeoutMs?: number;
  /**
   * Which of the registry's addresses nodes are given: its public address
   * (the seed's command line; nodes find the tunnel address themselves), or
   * its tunnel address. Default "public".
   */
  readonly apiVia?: "tunnel" | "public";
  /** false: the registry and the nodes run with --no-relay. Default true (no flag: relaying is on by default). */
  readonly relay?: boolean;
}

/**
 * The running CLI when this code runs inside dist/wormhole.cjs (`wormhole lab`),
 * else `<cwd>/dist/wormhole.cjs`; always run with this Node.
 */
export function defaultWormholeCommand(): string[] {
  const self = process.argv[1];
  if (self && /wormhole(\.c?js)?$/.test(self)) return [process.execPath, self];
  return [process.execPath, resolve(process.cwd(), "dist/wormhole.cjs")];
}

/** The real agents, which can also stop one node's agent (`signal` SIGKILL simulates a crash). */
export interface WormholeDriver extends AgentDriver {
  stopNode(lab: Lab, node: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts one registry's agent ("reg" or "reg2"); startRegistry starts every registry of the lab. */
  startRegistryHost(lab: Lab, name: string): Promise<void>;
  /** Stops one registry's agent; `signal` SIGKILL simulates a crash. */
  stopRegistryHost(lab: Lab, name: string, signal?: NodeJS.Signals): Promise<void>;
}

export function wormholeAgents(options: WormholeAgentsOptions = {}): WormholeDriver {
  const command = options.command ?? defaultWormholeCommand();
  const refresh = options.refresh ?? "60s";
  const apiVia = options.apiVia ?? "public";
  const relay = options.relay ?? true;
  /** The registries' processes, by lab host name. */
  const registries = new Map<string, LabProcess>();
  const registryPlans = (lab: Lab) => [lab.plan.registry, ...(lab.plan.registry2 ? [lab.plan.registry2] : [])];
  const nodes = new Map<string, LabProcess>();
  let starts = 0;

  const checkCommand = (): void => {
    // The script (argv[1] of `node script`) must exist; a bare binary is found by spawn itself.
    const script = command.length > 1 ? command[1] : undefined;
    if (script && !existsSync(script)) {
      throw new Error(`wormhole agents: \`${script}' does not exist; run \`npm run build' first (or set the lab's wormhole command)`);
    }
  };

  const driver: WormholeDriver = {
    name: "wormhole",
    async startRegistry(lab) {
      for (const r of registryPlans(lab)) await driver.startRegistryHost(lab, r.name);
    },
    async startRegistryHost(lab, name) {
      checkCommand();
      const reg = registryPlans(lab).find((r) => r.name === name);
      if (!reg) throw new Error(`lab has no registry \`${name}'`);
      // Every address in its namespace: the public one and the tunnel one.
      const listen = `:${reg.grpcPort}`;
      // The first registry keeps the name its logs are found by ("wormhole registry").
      const proc = await lab.spawn(name === lab.plan.registry.name ? "wormhole registry" : `wormhole registry ${name}`, reg.ns, [...command, "registry", "-i", reg.iface, "-a", listen, "--token-file", lab.tokenFile, ...(relay ? [] : ["--no-relay"]), ...(options.registryArgs ?? [])], {
        logName: `${name}.wormhole.${++starts}`,
      });
      registries.set(name, proc);
      await pollUntil(
        `wormhole registry to listen on ${listen}`,
        async () => {
          const st = proc.exitStatus();
          if (st) throw new Error(`wormhole registry exited (${st.signal ?? `code ${st.code}`}) before listening:\n${await tailFile(proc.logFile, 20)}`);
          const r = await lab.run(inNs(reg.ns, ["ss", "-Hltn", `sport = :${reg.grpcPort}`]), { allowFailure: true });
          return r.stdout.trim() ? true : undefined;
        },
        { timeoutMs: options.readyTimeoutMs ?? 15_000, intervalMs: 100, check: () => lab.checkOpen() },
      ).catch(async (err: Error) => {
        if (proc.exitStatus()) throw err;
        throw new Error(`${err.message}\n${await tailFile(proc.logFile, 20)}`, { cause: err });
      });
    },
    async stopRegistry(lab, signal) {
      for (const name of [...registries.keys()]) await driver.stopRegistryHost(lab, name, signal);
    },
    async stopRegistryHost(lab, name, signal) {
      const proc = registries.get(name);
      if (proc) await lab.stopProcess(proc, signal ? { signal } : {});
      registries.delete(name);
    },
    async startNode(lab, name) {
      checkCommand();
      const n = lab.node(name);
      const reg = lab.plan.registry;
      // An IPv6-only node dials the registry's IPv6 address (the seed's form for it: [addr]:port).
      const host = apiVia === "tunnel" ? reg.tunnelIp : n.ipv6 === "only" && reg.ip6 ? `[${reg.ip6}]` : reg.ip;
      const reg2 = lab.plan.registry2;
      // A second registry: the node is given both, as a user would (`-a` twice).
      const apis = [`${host}:${reg.grpcPort}`, ...(reg2 ? [`${apiVia === "tunnel" ? reg2.tunnelIp : reg2.ip}:${reg2.grpcPort}`] : [])];
      const proc = await lab.spawn(`wormhole node ${name}`, n.ns, [...command, "node", ...apis.flatMap((a) => ["-a", a]), "--token-file", lab.tokenFile, "-i", n.iface, "-r", refresh, "--control-socket", controlSocketOf(lab, name), ...(relay ? [] : ["--no-relay"]), ...(options.nodeArgs ?? [])], {
        logName: `${name}.wormhole.${++starts}`,
      });
      nodes.set(name, proc);
    },
    async stopNode(lab, name, signal) {
      const proc = nodes.get(name);
      if (proc) await lab.stopProcess(proc, signal ? { signal } : {});
      nodes.delete(name);
    },
    async stopAll(lab) {
      await Promise.allSettled([...nodes.values()].map((p) => lab.stopProcess(p)));
      nodes.clear();
      await driver.stopRegistry(lab);
    },
  };
  return driver;
}

// ---- the manual stand-in -------------------------------------------------------

export interface ManualAgentsOptions {
  /** How often the stand-in reads the registry and updates nodes. Default 1 000. */
  readonly intervalMs?: number;
}

/**
 * Does what a node agent does, without the product: every interval, read the
 * registry's `wg show IFACE endpoints`; for each started node, `wg set` the
 * endpoint of each other node's peer when the registry's view of that peer
 * changed since it was last applied (first sight included). A peer whose
 * endpoint WireGuard roamed away from an unchanged registry view is left alone.
 * "Registry down" = it stops reading.
 */
export function manualAgents(options: ManualAgentsOptions = {}): AgentDriver {
  const intervalMs = options.intervalMs ?? 1_000;
  const started = new Set<string>();
  /** `${node} ${peerKey}` → the registry endpoint last applied. */
  const applied = new Map<string, string>();
  let registryUp = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();

  const round = async (lab: Lab): Promise<void> => {
    if (!registryUp || lab.closed) return;
    const reg = lab.plan.registry;
    const seen = await readEndpoints(lab.run, reg.ns, reg.iface);
    await Promise.all(
      [...started].map(async (name) => {
        try {
          const peers = await lab.readPeers(name);
          const updates = peers.flatMap((p) => {
            const want = seen.get(p.publicKey);
            if (!want) return [];
            const endpoint = formatEndpoint(want);
            if (applied.get(`${name} ${p.publicKey}`) === endpoint) return [];
            return [{ publicKey: p.publicKey, endpoint }];
          });
          if (updates.length) {
            lab.log(`manual agent ${name}: ${updates.map((u) => `${lab.hostOfKey(u.publicKey) ?? "?"} -> ${u.endpoint}`).join(", ")}`);
            await lab.setPeers(name, updates);
            for (const u of updates) applied.set(`${name} ${u.publicKey}`, u.endpoint);
          }
        } catch (err) {
          if (!lab.closed) lab.log(`manual agent ${name}: ${(err as Error).message}`);
        }
      }),
    );
  };

  const ensureLoop = (lab: Lab): void => {
    if (timer) return;
    const tick = (): void => {
      running = round(lab)
        .catch((err: Error) => {
          if (!lab.closed) lab.log(`manual agents: ${err.message}`);
        })
        .finally(() => {
          if (timer && !lab.closed) timer = setTimeout(tick, intervalMs);
        });
    };
    timer = setTimeout(tick, 0);
  };

  return {
    name: "manual",
    async startRegistry(lab) {
      registryUp = true;
      ensureLoop(lab);
    },
    async stopRegistry() {
      registryUp = false;
    },
    async startNode(lab, name) {
      lab.node(name);
      started.add(name);
      ensureLoop(lab);
    },
    async stopAll() {
      if (timer) clearTimeout(timer);
      timer = null;
      registryUp = false;
      started.clear();
      await running;
    },
  };
}
