/**
 * Tunnel identity through real WireGuard (docs/how-it-works.md, "Tunnel
 * identity"; src/registry/identity.ts, report.ts): a registry reached at its
 * tunnel address knows each caller by its source address, takes a node's
 * report about itself, and refuses a report about another key.
 *
 * The lab's own process is the API client (the product's wormhole.v1 client
 * definition, src/rpc/proto.ts), but its connections start inside a node's
 * namespace: a small relay (node:net only) runs there under `ip netns exec`,
 * listens on a Unix socket in the lab's temp dir (namespaces share the file
 * system, not the network) and dials the registry from the node. So the
 * registry sees what a program on that node would give it: a TCP connection
 * from the node's tunnel address through WireGuard, or, at the registry's
 * public address, from the node's NAT. Nothing listens or dials in the root
 * namespace's network.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { v1Proto, type GetPeersResponse__Output, type V1Client } from "../rpc/proto.js";
import type { Endpoint } from "../wg/types.js";
import { startAgents, wormholeAgents, type AgentDriver } from "./agents.js";
import type { Lab } from "./lab.js";
import { withLab } from "./lab.js";
import { tailFile } from "./process.js";
import type { ScenarioOptions } from "./scenarios.js";
import { ALICE, BOB, labOptions, msOf, waitConnected } from "./scenarios.js";
import { measurePaths, type PairResult } from "./path.js";
import { pollUntil } from "./wait.js";

/**
 * Accepts connections on a Unix socket and pipes each to HOST:PORT, dialled
 * from the namespace it runs in. Run with `node -e` (CommonJS); settings come
 * in the environment.
 */
const RELAY_SCRIPT = `
const net = require("node:net");
const { WHL_RELAY_SOCKET: path, WHL_RELAY_HOST: host, WHL_RELAY_PORT: port } = process.env;
net.createServer((inner) => {
  const outer = net.connect({ host, port: Number(port) });
  const end = () => { inner.destroy(); outer.destroy(); };
  for (const s of [inner, outer]) { s.on("error", end); s.on("close", end); }
  inner.pipe(outer);
  outer.pipe(inner);
}).listen(path, () => console.log("relaying " + path + " to " + host + ":" + port));
`;

/** How each API call ended: grpc.status.OK (0) or the refusal. */
export interface CallOutcome {
  readonly code: grpc.status;
  readonly details: string;
}

/** Candidates on alice's and bob's entries of a GetPeers snapshot. */
export interface CandidatesSeen {
  readonly alice: readonly Endpoint[];
  readonly bob: readonly Endpoint[];
}

export interface ReportAttempt {
  /** Whose relay carried it: alice's connection to the registry's tunnel or public address. */
  readonly via: "tunnel" | "public";
  /** The key the report claimed ("" = none: the registry must name the caller itself). */
  readonly publicKey: string;
  readonly candidates: readonly Endpoint[];
  readonly outcome: CallOutcome;
  /** GetPeers asked from bob's namespace over his tunnel, right after the report. */
  readonly after: CandidatesSeen;
}

export interface TunnelIdentityResult {
  readonly connectMs: number;
  readonly aliceKey: string;
  readonly bobKey: string;
  readonly alice: { readonly lanIp: string; readonly tunnelIp: string };
  readonly bob: { readonly lanIp: string; readonly tunnelIp: string };
  /** What the agents had reported about themselves (accepted over their tunnels), once they were stopped. */
  readonly before: CandidatesSeen;
  /** Alice reports with no key: the registry must take her tunnel address for her. */
  readonly unnamed: ReportAttempt;
  /** Alice reports for her own key. */
  readonly own: ReportAttempt;
  /** Alice reports for bob's key, offering her own address as his candidate. */
  readonly forged: ReportAttempt;
  /** Alice reports for her own key at the registry's public address: no tunnel, no identity. */
  readonly viaPublic: ReportAttempt;
}

const CALL_TIMEOUT_MS = 5_000;

/**
 * Starts a relay in `node`'s namespace to the registry's `via` address;
 * returns its Unix socket once it listens. The lab's teardown stops it by PID.
 */
async function startRelay(lab: Lab, node: string, via: "tunnel" | "public"): Promise<string> {
  const reg = lab.plan.registry;
  const host = via === "tunnel" ? reg.tunnelIp : reg.ip;
  const socket = join(lab.tmpDir, `api-${node}-${via}.sock`);
  const proc = await lab.spawn(`api relay ${node} -> ${host}:${reg.grpcPort}`, lab.node(node).ns, [process.execPath, "-e", RELAY_SCRIPT], {
    logName: `${node}.api-relay-${via}`,
    env: { WHL_RELAY_SOCKET: socket, WHL_RELAY_HOST: host, WHL_RELAY_PORT: String(reg.grpcPort) },
  });
  await pollUntil(
    `${node}'s relay to ${host}:${reg.grpcPort} to listen`,
    async () => {
      const st = proc.exitStatus();
      if (st) throw new Error(`${proc.name} exited (${st.signal ?? `code ${st.code}`}):\n${await tailFile(proc.logFile, 10)}`);
      return existsSync(socket) ? true : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 50, check: () => lab.checkOpen() },
  );
  return socket;
}

/** A wormhole.v1 client whose calls leave from a relay's namespace, with the lab's token. */
class ApiClient {
  readonly #client: V1Client;
  readonly #token: string;

  constructor(socket: string, token: string) {
    this.#client = new v1Proto.Registry(`unix:${socket}`, grpc.credentials.createInsecure());
    this.#token = token;
  }

  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${this.#token}`);
    return md;
  }

  #deadline(): grpc.CallOptions {
    return { deadline: Date.now() + CALL_TIMEOUT_MS };
  }

  async report(publicKey: string, candidates: readonly Endpoint[]): Promise<CallOutcome> {
    return new Promise((resolve) => {
      this.#client.Report({ publicKey, candidates: [...candidates] }, this.#metadata(), this.#deadline(), (err) => {
        resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: "" });
      });
    });
  }

  /** Candidates per public key, as GetPeers shows them. Throws when the call fails. */
  async candidates(): Promise<Map<string, Endpoint[]>> {
    const res = await new Promise<GetPeersResponse__Output>((resolve, reject) => {
      this.#client.GetPeers({}, this.#metadata(), this.#deadline(), (err, value) => {
        if (err || !value) reject(new Error(`GetPeers: ${err?.details ?? "no response"} (${err ? grpc.status[err.code] : "?"})`));
        else resolve(value);
      });
    });
    return new Map(res.peers.map((p) => [p.publicKey, p.candidates.map((c) => ({ ip: c.ip, port: c.port }))]));
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * Builds registry + alice + bob (home NATs by default), starts the real
 * agents, waits for the pair to connect, then stops the node agents (a node
 * agent re-reports whenever the registry's view changes, which would overwrite
 * what alice reports here) and makes alice's calls: a report with no key, one
 * for her own key, one for bob's key, and one at the registry's public address.
 * After each, bob reads the registry's view over his own tunnel.
 */
export async function runTunnelIdentityScenario(options: ScenarioOptions = {}): Promise<TunnelIdentityResult> {
  const agents = options.agents ?? wormholeAgents();
  return withLab(labOptions(options), async (lab) => {
    const start = Date.now();
    await startAgents(lab, agents);
    const connected = await waitConnected(lab, start, options.connectTimeoutMs ?? 20_000);

    const aliceKey = lab.publicKey(ALICE);
    const bobKey = lab.publicKey(BOB);
    // The token stays in this process: read from the lab's 0600 file, sent only in call metadata.
    const token = (await readFile(lab.tokenFile, "utf8")).trim();
    const clients: ApiClient[] = [];
    const client = async (node: string, via: "tunnel" | "public"): Promise<ApiClient> => {
      const c = new ApiClient(await startRelay(lab, node, via), token);
      clients.push(c);
      return c;
    };
    try {
      const aliceTunnel = await client(ALICE, "tunnel");
      const alicePublic = await client(ALICE, "public");
      const bobTunnel = await client(BOB, "tunnel");
      const seen = async (): Promise<CandidatesSeen> => {
        const all = await bobTunnel.candidates();
        return { alice: all.get(aliceKey) ?? [], bob: all.get(bobKey) ?? [] };
      };

      // Both agents report their LAN candidates once they hear the registry; wait for those reports.
      let last: CandidatesSeen | null = null;
      await pollUntil(
        "alice's and bob's agents' reports on the registry",
        async () => {
          last = await seen();
          return last.alice.length > 0 && last.bob.length > 0 ? true : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 200, check: () => lab.checkOpen() },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; candidates seen from bob's side: ${JSON.stringify(last)}`, { cause: err });
      });
      const nodeAgents = lab.processes().filter((p) => p.name.startsWith("wormhole node") && !p.exitStatus());
      await Promise.all(nodeAgents.map((p) => lab.stopProcess(p)));
      const before = await seen();

      const aliceIp = lab.node(ALICE).ip;
      const attempt = async (via: "tunnel" | "public", publicKey: string, port: number): Promise<ReportAttempt> => {
        const candidates = [{ ip: aliceIp, port }];
        const outcome = await (via === "tunnel" ? aliceTunnel : alicePublic).report(publicKey, candidates);
        const who = publicKey === "" ? "no key" : publicKey === aliceKey ? "alice's key" : publicKey === bobKey ? "bob's key" : publicKey;
        lab.log(`alice reports for ${who} via the registry's ${via} address: ${grpc.status[outcome.code]}${outcome.details ? ` (${outcome.details})` : ""}`);
        return { via, publicKey, candidates, outcome, after: await seen() };
      };
      // Distinct ports, so each accepted report is told apart from the one before.
      const unnamed = await attempt("tunnel", "", 40001);
      const own = await attempt("tunnel", aliceKey, 40002);
      const forged = await attempt("tunnel", bobKey, 40666);
      const viaPublic = await attempt("public", aliceKey, 40003);

      await agents.stopAll(lab);
      const host = (n: string) => ({ lanIp: lab.node(n).ip, tunnelIp: lab.node(n).tunnelIp });
      return { connectMs: msOf(connected), aliceKey, bobKey, alice: host(ALICE), bob: host(BOB), before, unnamed, own, forged, viaPublic };
    } finally {
      for (const c of clients) c.close();
    }
  });
}

export interface PublicApiResult {
  /** alice -> bob and bob -> alice, as the lab measured them. */
  readonly paths: readonly PairResult[];
  /** Each agent's log (the registry's as "reg"), read before the lab is torn down. */
  readonly logs: Readonly<Record<string, string>>;
}

/**
 * Nodes that reach the registry's API at its public address, through their
 * NATs, as the given agents are set up to (the test gives the TLS flags):
 * builds registry + alice + bob, starts the agents, measures the pair within
 * `timeoutMs` and returns the paths and every agent's log.
 */
export async function runPublicApiScenario(options: ScenarioOptions & { readonly agents: AgentDriver; readonly timeoutMs: number }): Promise<PublicApiResult> {
  return withLab(labOptions(options), async (lab) => {
    const start = Date.now();
    await startAgents(lab, options.agents);
    const paths = await measurePaths(lab, { pairs: [[ALICE, BOB], [BOB, ALICE]], startMs: start, timeoutMs: options.timeoutMs, relayIps: [lab.plan.registry.ip] });
    const logs: Record<string, string> = {};
    for (const p of lab.processes()) {
      const who = /^wormhole (registry|node (\S+))$/.exec(p.name);
      if (who) logs[who[2] ?? "reg"] = await readFile(p.logFile, "utf8");
    }
    await options.agents.stopAll(lab);
    return { paths, logs };
  });
}
