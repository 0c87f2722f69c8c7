/**
 * The NAT lab: real wireguard-go behind real nftables NATs, each host in its
 * own network namespace (whl-ID-*). Nothing is added to the root namespace.
 *
 *   +--------------------------- whl-ID-inet ----------------------------+
 *   |     bridge "inet" = the internet, 203.0.113.0/24, nothing routed   |
 *   +----+-------------+---------------+-------------------+-------------+
 *        |             |               |                   |
 *   +----+-------+ +---+--------+ +----+-----------+ +-----+----------------+
 *   | reg        | | n-pub1     | | r-home1        | | c-cgn1               |
 *   | .1         | | .10        | | wan .101       | | wan .151             |
 *   | wg 10.200. | | public:    | | home, bare or  | | carrier NAT: EIM,    |
 *   |   0.1      | | no NAT,    | | symmetric NAT  | | stateful firewall    |
 *   | wormhole   | | no fw      | | lan 192.168.1.1| | lan 100.64.N.1       |
 *   |  registry  | | wormhole   | +----+-----------+ +-----+----------------+
 *   |  :1638     | |  node      |      |                   |
 *   +------------+ +------------+ +----+-----------+ +-----+----------------+
 *                                 | n-home1        | | r-cgn1  home router  |
 *                                 | 192.168.1.10   | | wan 100.64.N.2       |
 *                                 | wg, wormhole   | | lan 192.168.N.1      |
 *                                 |  node          | +-----+----------------+
 *                                 +----------------+       |
 *                                                    +-----+----------------+
 *   samelan: one router r-lan whose "lan" bridge     | n-cgn1 192.168.N.10  |
 *   holds two nodes, n-lan1 .10 and n-lan2 .11.      +----------------------+
 *
 *   Tunnel addresses: registry 10.200.0.1, nodes 10.200.0.10 and up.
 *   NAT behaviours and their nftables rules: nat.ts. Addresses: topology.ts.
 *
 * Every node's WireGuard, configured as a user would: a peer for the registry
 * (endpoint 203.0.113.1:51820, allowed-ips 10.200.0.1/32, keepalive 25) and a
 * peer for each other node (allowed-ips its /32, no endpoint). The registry's
 * WireGuard has every node as a peer (allowed-ips /32, no endpoint) and so
 * learns their NAT-mapped endpoints. Agents (agents.ts) then hand those
 * endpoints to the nodes.
 *
 * Lifetime: `createLab` builds (and on any failure tears down what it made);
 * `lab.destroy()` stops processes by PID, deletes namespaces and sockets, and
 * is registered for SIGINT/SIGTERM/exit until it has run. `sweepLeftovers`
 * (sweep.ts) clears what a killed run left behind.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Runner } from "../util/runner.js";
import { runCommand } from "../util/runner.js";
import type { WgPeer } from "../wg/types.js";
import type { NatProfile } from "./nat.js";
import { firewall6Ruleset, natRuleset, remapRuleset } from "./nat.js";
import { checkRunId, newRunId } from "./names.js";
import type { LabProcess } from "./process.js";
import { spawnInNamespace, stopProcess, tailFile } from "./process.js";
import { registerTeardown, unregisterTeardown } from "./signals.js";
import type { LabPlan, NodePlan, SitePlan, SiteSpec, WgHostPlan } from "./topology.js";
import { TUNNEL_PREFIX_LEN, planLab } from "./topology.js";
import { LabTimeoutError, allSettledOrThrow, pollUntil } from "./wait.js";
import type { KeyPair, PeerConfig } from "./wg.js";
import { generateKeyPair, inNs, makeKeyDir, readPeers, setPeers, startWireGuardGo } from "./wg.js";

export interface LabOptions {
  readonly sites: readonly SiteSpec[];
  /** Runs every ip/nft/wg/ping command. Default: the real runner. */
  readonly runner?: Runner;
  /** 4 hex digits; default random (retried if a namespace with that prefix exists). */
  readonly runId?: string;
  /** Receives a line per step (verbose mode). Default: silent. */
  readonly log?: (line: string) => void;
  /** Called before each build step with its name; throwing aborts the build (tests use it to fail midway). */
  readonly onStep?: (step: string) => void | Promise<void>;
  /** Parent of the per-run temp dir. Default os.tmpdir(). */
  readonly tmpRoot?: string;
  /** Tear down on SIGINT/SIGTERM/exit. Default true. */
  readonly handleSignals?: boolean;
  /** wireguard-go's LOG_LEVEL. Default "debug" (the logs are shown on failure). */
  readonly wgLogLevel?: "debug" | "verbose" | "error" | "silent";
  /** Bound for each host's WireGuard to come up and for every node's handshake with the registry. Default 20 000. */
  readonly readyTimeoutMs?: number;
  /** Give the registry a second address per family (STUN's RFC 5780 alternate). Default false. */
  readonly registryAlternates?: boolean;
  /** A second registry ("reg2"), which every node peers with too. Default false. */
  readonly secondRegistry?: boolean;
}

export interface PingResult {
  readonly ok: boolean;
  readonly rttMs: number | null;
}

export class LabClosedError extends Error {
  constructor(step: string) {
    super(`lab is being torn down; step \`${step}' not run`);
    this.name = "LabClosedError";
  }
}

const REGISTRY_KEEPALIVE_SEC = 25;

export class Lab {
  readonly plan: LabPlan;
  readonly runId: string;
  readonly run: Runner;
  /** Per-run temp dir: logs, token, owner.pid. */
  tmpDir = "";
  /** The token file (mode 0600) agents are started with. */
  tokenFile = "";
  /** 0700 dir (on /dev/shm when possible) for the moment a private key is handed to `wg`. */
  #keyDir = "";

  readonly #log: (line: string) => void;
  readonly #onStep: LabOptions["onStep"];
  readonly #opts: LabOptions;
  readonly #keys = new Map<string, KeyPair>();
  /** What teardown removes; each recorded as soon as it exists (sockets: before the daemon starts). */
  readonly #namespaces: string[] = [];
  readonly #sockets: string[] = [];
  readonly #processes: LabProcess[] = [];
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #nat = new Map<string, NatProfile>();
  #closed = false;
  #destroyed: Promise<string[]> | null = null;
  readonly #teardown = { destroy: () => this.destroy(), destroySync: () => this.#destroySync() };

  constructor(plan: LabPlan, options: LabOptions) {
    this.plan = plan;
    this.runId = plan.runId;
    this.run = options.runner ?? runCommand;
    this.#log = options.log ?? (() => {});
    this.#onStep = options.onStep;
    this.#opts = options;
    for (const n of plan.namespaces) if (n.nat) this.#nat.set(n.name, n.nat);
  }

  log(line: string): void {
    this.#log(line);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws LabClosedError when the lab is being torn down (long waits call it each round). */
  checkOpen(what = "wait"): void {
    if (this.#closed) throw new LabClosedError(what);
  }

  /** Runs one named step: logged, offered to onStep, tracked so teardown waits for it. */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.checkOpen(name);
    this.#log(`step: ${name}`);
    await this.#onStep?.(name);
    this.checkOpen(name);
    return this.#track(fn());
  }

  /** Teardown waits for tracked work before it stops processes and deletes namespaces. */
  async #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    try {
      return await p;
    } finally {
      this.#inflight.delete(p);
    }
  }

  node(name: string): NodePlan {
    const n = this.plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`lab has no node \`${name}' (nodes: ${this.plan.nodes.map((x) => x.name).join(", ")})`);
    return n;
  }

  site(name: string): SitePlan {
    const s = this.plan.sites.find((x) => x.name === name);
    if (!s) throw new Error(`lab has no site \`${name}' (sites: ${this.plan.sites.map((x) => x.name).join(", ")})`);
    return s;
  }

  host(name: string): WgHostPlan {
    if (name === this.plan.registry.name) return this.plan.registry;
    if (name === this.plan.registry2?.name) return this.plan.registry2;
    return this.node(name);
  }

  publicKey(host: string): string {
    const k = this.#keys.get(host);
    if (!k) throw new Error(`lab host \`${host}' has no key yet`);
    return k.publicKey;
  }

  /** Which host a public key belongs to (undefined when none). */
  hostOfKey(publicKey: string): string | undefined {
    for (const [name, k] of this.#keys) if (k.publicKey === publicKey) return name;
    return undefined;
  }

  async readPeers(host: string): Promise<readonly WgPeer[]> {
    const h = this.host(host);
    return readPeers(this.run, h.ns, h.iface);
  }

  async setPeers(host: string, peers: readonly PeerConfig[]): Promise<void> {
    const h = this.host(host);
    await setPeers(this.run, h.ns, h.iface, peers);
  }

  /** One ping over the tunnel, `from` → `to`'s tunnel address (1 s bound). */
  async ping(from: string, to: string): Promise<PingResult> {
    const a = this.host(from);
    const b = this.host(to);
    const r = await this.run(inNs(a.ns, ["ping", "-n", "-c", "1", "-W", "1", b.tunnelIp]), { allowFailure: true, timeoutMs: 4_000 });
    if (r.code !== 0) return { ok: false, rttMs: null };
    const m = /time=([\d.]+) ms/.exec(r.stdout);
    return { ok: true, rttMs: m ? Number(m[1]) : null };
  }

  /** Starts a tracked process in a namespace; its output goes to `<tmpDir>/<logName>.log`. */
  async spawn(name: string, ns: string, argv: readonly string[], options: { logName: string; env?: Record<string, string> }): Promise<LabProcess> {
    this.checkOpen(`start ${name}`);
    const logFile = join(this.tmpDir, `${options.logName}.log`);
    const started = spawnInNamespace(name, ns, argv, { logFile, ...(options.env ? { env: options.env } : {}) }).then((p) => {
      this.#processes.push(p); // before teardown can see the spawn finished
      return p;
    });
    const p = await this.#track(started);
    this.#log(`started ${name} (pid ${p.pid}) in ${ns}`);
    return p;
  }

  async stopProcess(p: LabProcess, options: { signal?: NodeJS.Signals } = {}): Promise<void> {
    if (p.exitStatus()) return;
    this.#log(`stopping ${p.name} (pid ${p.pid})${options.signal ? ` with ${options.signal}` : ""}`);
    await stopProcess(p, options);
  }

  processes(): readonly LabProcess[] {
    return this.#processes;
  }

  /**
   * The site's internet-facing NAT loses every mapping and comes back on other
   * ports: its masquerade is limited to `portRange`, then its conntrack table
   * is flushed. For `cgnat` this is the carrier NAT.
   */
  async rebind(siteName: string, portRange: readonly [number, number]): Promise<void> {
    const site = this.site(siteName);
    if (!site.edgeNs) throw new Error(`site \`${siteName}' is public: it has no NAT to rebind`);
    const ns = site.edgeNs;
    const old = this.#nat.get(ns);
    if (!old) throw new Error(`no NAT profile recorded for ${ns}`);
    const profile: NatProfile = { ...old, portRange };
    await this.step(`rebind ${siteName}: masquerade to :${portRange[0]}-${portRange[1]}, flush conntrack`, async () => {
      await this.run(inNs(ns, ["nft", "-f", "-"]), { input: remapRuleset(profile) });
      await this.run(inNs(ns, ["conntrack", "-F"]));
      this.#nat.set(ns, profile);
    });
  }

  /** Tails of every process log, for failure reports. */
  async logTails(lines = 25): Promise<string> {
    const parts: string[] = [];
    for (const p of this.#processes) {
      const st = p.exitStatus();
      const state = st ? `exited ${st.signal ?? `code ${st.code}`}` : "running";
      parts.push(`--- ${p.name} (pid ${p.pid}, ${state}) ${p.logFile}\n${await tailFile(p.logFile, lines)}`);
    }
    return parts.join("\n");
  }

  /**
   * Tears everything down: processes (agents first, then wireguard-go) by PID,
   * namespaces, control sockets, temp dir. Every step is tried even when an
   * earlier one fails. Never throws; returns the problems met ([] when clean).
   * Safe to call more than once (later calls return the first result).
   */
  destroy(options: { keepTmpDir?: boolean } = {}): Promise<string[]> {
    this.#destroyed ??= this.#destroy(options);
    return this.#destroyed;
  }

  async #destroy(options: { keepTmpDir?: boolean }): Promise<string[]> {
    this.#closed = true;
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    };
    this.#log("teardown: waiting for steps in flight");
    await attempt("waiting for steps in flight", () =>
      Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise((_, reject) => setTimeout(() => reject(new LabTimeoutError("steps still running after 20 s")), 20_000).unref()),
      ]),
    );
    const wg = this.#processes.filter((p) => p.name.startsWith("wireguard-go"));
    const others = this.#processes.filter((p) => !wg.includes(p));
    for (const group of [others, wg]) {
      await Promise.all(group.map((p) => attempt(`stopping ${p.name} (pid ${p.pid})`, () => this.stopProcess(p))));
    }
    for (const ns of [...this.#namespaces].reverse()) {
      await attempt(`deleting namespace ${ns}`, async () => {
        // Anything still inside (a ping the runner has not reaped yet) is the lab's own.
        const pids = await this.run(["ip", "netns", "pids", ns], { allowFailure: true });
        for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            /* already gone */
          }
        }
        const r = await this.run(["ip", "netns", "del", ns], { allowFailure: true });
        if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new Error(r.stderr.trim() || `exit status ${r.code}`);
      });
    }
    for (const sock of this.#sockets) {
      await attempt(`removing ${sock}`, () => rm(sock, { force: true }));
    }
    if (this.#keyDir) await attempt(`removing ${this.#keyDir}`, () => rm(this.#keyDir, { recursive: true, force: true }));
    if (this.tmpDir && !options.keepTmpDir) {
      await attempt(`removing ${this.tmpDir}`, () => rm(this.tmpDir, { recursive: true, force: true }));
    }
    unregisterTeardown(this.#teardown);
    this.#log(problems.length ? `teardown: ${problems.length} problem(s)` : "teardown: clean");
    return problems;
  }

  /** At process exit without teardown: kill by PID, delete namespaces, remove sockets (synchronously). */
  #destroySync(): void {
    if (this.#destroyed) return;
    for (const p of this.#processes) {
      if (p.exitStatus()) continue;
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    // The Runner is asynchronous and the event loop is over: this is the one place the lab calls `ip` directly.
    for (const ns of this.#namespaces) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore", timeout: 5_000 });
    for (const sock of this.#sockets) rmSync(sock, { force: true });
    if (this.#keyDir) rmSync(this.#keyDir, { recursive: true, force: true });
    if (this.tmpDir) rmSync(this.tmpDir, { recursive: true, force: true });
  }

  // ---- building -------------------------------------------------------------

  async build(): Promise<void> {
    if (this.#opts.handleSignals !== false) registerTeardown(this.#teardown);
    const plan = this.plan;
    const run = this.run;
    const readyMs = this.#opts.readyTimeoutMs ?? 20_000;
    const withIpv6 = plan.registry.ip6 !== undefined;
    /** `ip addr add` for one address; IPv6 ones without duplicate address detection (they would stay tentative for seconds). */
    const addAddress = (ns: string, dev: string, cidr: string) => run(["ip", "-n", ns, "addr", "add", cidr, "dev", dev, ...(cidr.includes(":") ? ["nodad"] : [])]);

    await this.step("create temp dir", async () => {
      this.tmpDir = await mkdtemp(join(this.#opts.tmpRoot ?? tmpdir(), `${plan.prefix}`));
      await writeFile(join(this.tmpDir, "owner.pid"), `${process.pid}\n`);
      this.#keyDir = await makeKeyDir(plan.prefix, this.tmpDir);
      // Also here: the sweep always looks in /dev/shm, whatever temp root this run uses.
      await writeFile(join(this.#keyDir, "owner.pid"), `${process.pid}\n`);
      this.tokenFile = join(this.tmpDir, "token");
      await writeFile(this.tokenFile, `${randomBytes(24).toString("hex")}\n`, { mode: 0o600 });
    });

    await allSettledOrThrow(
      plan.namespaces.map((ns) =>
        this.step(`namespace ${ns.name} (${ns.what})`, async () => {
          // Recorded once made (teardown waits for steps in flight), so a name clash never deletes another run's namespace.
          await run(["ip", "netns", "add", ns.name]);
          this.#namespaces.push(ns.name);
          await run(["ip", "-n", ns.name, "link", "set", "lo", "up"]);
          if (ns.forwarding) await run(inNs(ns.name, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
          if (withIpv6) {
            // Before any veth lands here (it copies `default`): no duplicate address detection, no router advertisements.
            const conf = ["all", "default"].flatMap((c) => [`net.ipv6.conf.${c}.accept_dad=0`, `net.ipv6.conf.${c}.accept_ra=0`, `net.ipv6.conf.${c}.autoconf=0`]);
            await run(inNs(ns.name, ["sysctl", "-qw", ...conf]));
            if (ns.ipv6?.forwarding) await run(inNs(ns.name, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]));
          }
        }),
      ),
    );

    await allSettledOrThrow(
      plan.bridges.map((b) =>
        this.step(`bridge ${b.name} in ${b.ns}${b.cidr ? ` ${b.cidr}` : ""}`, async () => {
          await run(["ip", "-n", b.ns, "link", "add", b.name, "type", "bridge"]);
          // With br_netfilter loaded, bridged frames would cross this namespace's IP firewall: keep L2 plain.
          await run(inNs(b.ns, ["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"]), { allowFailure: true });
          if (b.cidr) await run(["ip", "-n", b.ns, "addr", "add", b.cidr, "dev", b.name]);
          for (const c of b.moreCidrs ?? []) await addAddress(b.ns, b.name, c);
          await run(["ip", "-n", b.ns, "link", "set", b.name, "up"]);
        }),
      ),
    );

    await allSettledOrThrow(
      plan.links.map((l) =>
        this.step(`link ${l.a.ns}:${l.a.ifname} <-> ${l.b.ns}:${l.b.ifname}`, async () => {
          await run(["ip", "-n", l.a.ns, "link", "add", l.a.ifname, "type", "veth", "peer", "name", l.b.ifname, "netns", l.b.ns]);
          for (const end of [l.a, l.b]) {
            if (end.bridge) await run(["ip", "-n", end.ns, "link", "set", end.ifname, "master", end.bridge]);
            if (end.cidr) await run(["ip", "-n", end.ns, "addr", "add", end.cidr, "dev", end.ifname]);
            for (const c of end.moreCidrs ?? []) await addAddress(end.ns, end.ifname, c);
            await run(["ip", "-n", end.ns, "link", "set", end.ifname, "up"]);
          }
        }),
      ),
    );

    await allSettledOrThrow(
      plan.namespaces.map(async (ns) => {
        if (ns.defaultVia) {
          await this.step(`default route of ${ns.name} via ${ns.defaultVia}`, () => run(["ip", "-n", ns.name, "route", "add", "default", "via", ns.defaultVia as string]));
        }
        const v6 = ns.ipv6;
        if (v6) {
          await this.step(`IPv6 routes of ${ns.name}`, async () => {
            if (v6.defaultVia) await run(["ip", "-n", ns.name, "-6", "route", "add", "default", "via", v6.defaultVia]);
            for (const r of v6.routes) await run(["ip", "-n", ns.name, "-6", "route", "add", r.prefix, "via", r.via]);
          });
          if (v6.firewall) await this.step(`IPv6 stateful firewall of ${ns.name}`, () => run(inNs(ns.name, ["nft", "-f", "-"]), { input: firewall6Ruleset() }));
        }
        if (ns.nat) {
          const nat = ns.nat;
          await this.step(`NAT of ${ns.name}: ${nat.mapping} mapping, ${nat.firewall ? "stateful firewall" : "no firewall"}`, () =>
            run(inNs(ns.name, ["nft", "-f", "-"]), { input: natRuleset(nat) }),
          );
        }
      }),
    );

    const registries: WgHostPlan[] = [plan.registry, ...(plan.registry2 ? [plan.registry2] : [])];
    const hosts: WgHostPlan[] = [...registries, ...plan.nodes];
    await allSettledOrThrow(hosts.map((h) => this.#startWireGuard(h, readyMs)));

    await this.step("configure peers (registry: every node; nodes: registry with endpoint, other nodes without)", async () => {
      const nodePeer = (n: NodePlan): PeerConfig => ({ publicKey: this.publicKey(n.name), allowedIps: [`${n.tunnelIp}/32`] });
      for (const r of registries) await this.setPeers(r.name, plan.nodes.map(nodePeer));
      await allSettledOrThrow(
        plan.nodes.map((n) =>
          this.setPeers(n.name, [
            {
              publicKey: this.publicKey(plan.registry.name),
              allowedIps: [`${plan.registry.tunnelIp}/32`],
              endpoint: n.ipv6 === "only" ? `[${plan.registry.ip6 as string}]:${plan.registry.listenPort}` : `${plan.registry.ip}:${plan.registry.listenPort}`,
              persistentKeepaliveSec: REGISTRY_KEEPALIVE_SEC,
            },
            ...(plan.registry2
              ? [{ publicKey: this.publicKey(plan.registry2.name), allowedIps: [`${plan.registry2.tunnelIp}/32`], endpoint: `${plan.registry2.ip}:${plan.registry2.listenPort}`, persistentKeepaliveSec: REGISTRY_KEEPALIVE_SEC }]
              : []),
            ...plan.nodes.filter((o) => o !== n).map(nodePeer),
          ]),
        ),
      );
    });

    await this.step("wait for every node's handshake with the registry", async () => {
      const keys = new Map(plan.nodes.map((n) => [this.publicKey(n.name), n.name]));
      let missing: string[] = [];
      try {
        await pollUntil(
          "handshakes with the registry",
          async () => {
            missing = [];
            for (const r of registries) {
              const peers = await this.readPeers(r.name);
              missing.push(...[...keys].filter(([k]) => !peers.some((p) => p.publicKey === k && p.lastHandshakeMs > 0)).map(([, n]) => `${n} (with ${r.name})`));
            }
            return missing.length === 0 ? true : undefined;
          },
          { timeoutMs: readyMs, intervalMs: 100, check: () => this.checkOpen() },
        );
      } catch (err) {
        if (err instanceof LabTimeoutError) throw new LabTimeoutError(`${err.message}; no handshake from: ${missing.join(", ")}\n${await this.logTails(10)}`);
        throw err;
      }
    });
  }

  async #startWireGuard(h: WgHostPlan, readyMs: number): Promise<void> {
    const run = this.run;
    await this.step(`keys for ${h.name}`, async () => {
      this.#keys.set(h.name, await generateKeyPair(run));
    });
    await this.step(`wireguard-go ${h.iface} in ${h.ns}: started, key, port ${h.listenPort}`, () =>
      startWireGuardGo({ spawn: (...args) => this.spawn(...args), removeLater: (path) => this.#sockets.push(path) }, run, {
        ns: h.ns,
        iface: h.iface,
        name: `wireguard-go ${h.name}`,
        logName: `${h.name}.wireguard-go`,
        privateKey: (this.#keys.get(h.name) as KeyPair).privateKey,
        keyDir: this.#keyDir,
        listenPort: h.listenPort,
        logLevel: this.#opts.wgLogLevel ?? "debug",
        timeoutMs: readyMs,
        check: () => this.checkOpen(),
      }),
    );
    await this.step(`configure ${h.iface}: ${h.tunnelIp}/${TUNNEL_PREFIX_LEN}, up`, async () => {
      await run(["ip", "-n", h.ns, "addr", "add", `${h.tunnelIp}/${TUNNEL_PREFIX_LEN}`, "dev", h.iface]);
      await run(["ip", "-n", h.ns, "link", "set", h.iface, "up"]);
    });
  }
}

/** Whether any namespace of this run id exists already. */
async function runIdTaken(run: Runner, runId: string): Promise<boolean> {
  const out = (await run(["ip", "netns", "list"])).stdout;
  return out.split("\n").some((l) => l.startsWith(`whl-${runId}-`));
}

/**
 * Builds a lab. On any failure (including an onStep hook throwing, a timeout or
 * a signal) everything made so far is torn down before the error is rethrown.
 */
export async function createLab(options: LabOptions): Promise<Lab> {
  const run = options.runner ?? runCommand;
  let runId = options.runId === undefined ? newRunId() : checkRunId(options.runId);
  if (options.runId === undefined) {
    for (let i = 0; i < 10 && (await runIdTaken(run, runId)); i++) runId = newRunId();
  }
  if (await runIdTaken(run, runId)) throw new Error(`lab run id \`${runId}' is in use: namespaces whl-${runId}-* exist`);
  const lab = new Lab(
    planLab(runId, options.sites, { ...(options.registryAlternates ? { registryAlternates: true } : {}), ...(options.secondRegistry ? { secondRegistry: true } : {}) }),
    options,
  );
  try {
    await lab.build();
    return lab;
  } catch (err) {
    const problems = await lab.destroy();
    if (problems.length) {
      throw new AggregateError([err, ...problems.map((p) => new Error(p))], `lab build failed (${(err as Error).message}) and teardown met ${problems.length} problem(s)`);
    }
    throw err;
  }
}

/**
 * Builds a lab, runs `fn`, always tears down. When `fn` fails, the error is
 * rethrown with the tails of the lab's process logs appended (they are gone
 * after teardown). When only teardown fails, that is thrown.
 */
/** The lab settings that the demo, the matrix and the scenarios pass through from their callers. */
export type LabPassThrough = Pick<LabOptions, "log" | "runner" | "runId" | "tmpRoot">;

/** The pass-through settings that are set (exactOptionalPropertyTypes: absent, never undefined). */
export function passThrough(o: LabPassThrough): LabPassThrough {
  return {
    ...(o.log ? { log: o.log } : {}),
    ...(o.runner ? { runner: o.runner } : {}),
    ...(o.runId ? { runId: o.runId } : {}),
    ...(o.tmpRoot ? { tmpRoot: o.tmpRoot } : {}),
  };
}

export async function withLab<T>(options: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(options);
  let result: T;
  try {
    result = await fn(lab);
  } catch (err) {
    const tails = await lab.logTails();
    const problems = await lab.destroy();
    if (problems.length) options.log?.(`teardown problems:\n  ${problems.join("\n  ")}`);
    if (err instanceof LabClosedError) throw err;
    throw new Error(`${(err as Error).message}\n--- process logs of lab ${lab.runId} ---\n${tails}`, { cause: err });
  }
  const problems = await lab.destroy();
  if (problems.length) throw new Error(`lab ${lab.runId} teardown met ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  return result;
}
