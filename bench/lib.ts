/**
 * What the benchmarks share: flags, keys, namespaces with wireguard-go, the built `wormhole`
 * binary as a child process, /proc sampling, statistics and cleanup.
 *
 * Safety rules every bench follows (see BENCHMARKS.md):
 * - traffic only to 127.0.0.1 (gRPC) or to the wireguard-go control socket; every WireGuard
 *   interface stays DOWN in a namespace this run created, so it never sends a packet;
 * - names are unique per run (`whb-<tag>` namespaces, `whb<tag>x` interfaces);
 * - everything made is removed in `finally` and on SIGINT/SIGTERM/SIGHUP: processes by PID,
 *   namespaces, /var/run/wireguard sockets, temporary files;
 * - private keys are made in Node and set as the lab sets them (src/lab/wg.ts startWireGuardGo):
 *   through a 0600 file in a RAM-backed directory (/dev/shm), removed at once; never on a command
 *   line or in a log.
 */
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleepMs } from "node:timers/promises";
import { Command, InvalidArgumentError } from "commander";
import { type LabProcess, ProcessGroup, type ProcessOwner } from "../src/lab/process.js";
import { makeKeyDir, Secret, startWireGuardGo } from "../src/lab/wg.js";
import { runCommand } from "../src/util/runner.js";
import { pollUntil, WaitTimeoutError } from "../src/util/wait.js";
import { uapiExchange } from "../src/wg/uapi.js";
import type { GetEndpointConfig, GetEndpointResult, LoadMessage, WatchConfig, WatchResult } from "./loadgen.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_BIN = join(ROOT, "dist", "wormhole.cjs");
export const SOCKET_DIR = "/var/run/wireguard";

// ---------------------------------------------------------------- flags

/**
 * A bench's command line (commander, as the `wormhole` CLI): `--name value`, `--name=value`,
 * `--help`; an unknown flag or a bad value exits with the usage text.
 */
export function benchCommand(file: string, summary: string): Command {
  return new Command(`node --import tsx bench/${file}`).description(summary).allowExcessArguments(false).showHelpAfterError();
}

/** benchCommand with the flags every bench that runs the bundle takes: `--timeout S` and `--bin PATH`. */
export function bundleBenchCommand(file: string, summary: string, timeoutSec: number): Command {
  return benchCommand(file, summary)
    .option("--timeout <s>", "abort the whole run after this many seconds", wholeNumber, timeoutSec)
    .option("--bin <path>", "the wormhole bundle", DEFAULT_BIN);
}

/** Option parser: a whole number >= 0. */
export function wholeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`\`${value}' is not a whole number >= 0`);
  return n;
}

// ---------------------------------------------------------------- keys

export interface KeyPair {
  /** 64 hex digits; only ever written to a control socket. */
  readonly privateHex: string;
  readonly publicHex: string;
  readonly publicBase64: string;
}

/**
 * A fresh x25519 key pair. Exported as DER (the raw key is the last 32 bytes), NOT as JWK: on
 * Node 20.20 `generateKeyPairSync("x25519")` followed by `.export({ format: "jwk" })` deadlocks
 * once a GC runs inside the export (ExportJWKEdKey holds the key's mutex while allocating; the
 * collected KeyGenJob's destructor takes the same mutex). Seen here within 1,000 pairs.
 */
export function keyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  const priv = der.subarray(der.length - 32);
  const pub = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const kp = { privateHex: priv.toString("hex"), publicHex: pub.toString("hex"), publicBase64: pub.toString("base64") };
  der.fill(0);
  return kp;
}

/** Only public keys are needed for the peers: the private halves are dropped at once. */
export function publicKeys(n: number): Array<{ hex: string; base64: string }> {
  const out: Array<{ hex: string; base64: string }> = [];
  for (let i = 0; i < n; i++) {
    const { publicHex, publicBase64 } = keyPair();
    out.push({ hex: publicHex, base64: publicBase64 });
  }
  return out;
}

// ---------------------------------------------------------------- cleanup

/**
 * Everything a run made, removed in reverse order by `run()` (async, from `finally` and signal
 * handlers) or, as a last resort, by `runSync()` from process 'exit'.
 */
export class Cleanup implements ProcessOwner {
  private readonly children: Array<{ child: ChildProcess; name: string }> = [];
  /** Started in a namespace (wireguard-go): stopped after the children. */
  private inNamespace: ProcessGroup | null = null;
  private readonly namespaces: string[] = [];
  private readonly paths: string[] = [];
  private done = false;
  private running: Promise<void> | null = null;

  constructor() {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`\n${signal}: cleaning up\n`);
      void this.run().finally(() => process.exit(130));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    process.once("SIGHUP", onSignal);
    process.on("exit", () => this.runSync());
  }

  process(child: ChildProcess, name: string): ChildProcess {
    this.children.push({ child, name });
    return child;
  }
  namespace(ns: string): void {
    this.namespaces.push(ns);
  }
  path(p: string): void {
    this.paths.push(p);
  }
  removeLater(p: string): void {
    this.path(p);
  }

  /** A process inside a namespace, its output in a log file of this run's (ProcessOwner, for startWireGuardGo). */
  spawn(name: string, ns: string, argv: readonly string[], options: { logName: string; env?: Record<string, string> }): Promise<LabProcess> {
    if (!this.inNamespace) {
      this.inNamespace = new ProcessGroup(mkdtempSync(join(tmpdir(), "whb-log-")));
      this.path(this.inNamespace.logDir);
    }
    return this.inNamespace.spawn(name, ns, argv, options);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const { child } of [...this.children].reverse()) await stopChild(child);
      await this.inNamespace?.teardown();
      for (const ns of [...this.namespaces].reverse()) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      for (const p of this.paths) rmSync(p, { recursive: true, force: true });
      this.done = true;
    })();
    return this.running;
  }

  runSync(): void {
    if (this.done) return;
    for (const { child } of [...this.children].reverse()) {
      if (alive(child)) child.kill("SIGKILL");
    }
    this.inNamespace?.teardownSync();
    for (const ns of [...this.namespaces].reverse()) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    for (const p of this.paths) rmSync(p, { recursive: true, force: true });
    this.done = true;
  }
}

function alive(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** SIGTERM by PID, SIGKILL after 3 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (alive(child)) child.kill("SIGKILL");
  }, 3_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- namespaces and wireguard-go

export function runTag(): string {
  return randomBytes(3).toString("hex");
}

function sh(argv: string[]): string {
  const [file, ...args] = argv;
  const r = spawnSync(file ?? "", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
  return r.stdout;
}

export const sleep = (ms: number): Promise<void> => sleepMs(ms);

export interface WgInterface {
  readonly ns: string;
  readonly iface: string;
  readonly socketPath: string;
  readonly daemon: LabProcess;
  readonly keys: KeyPair;
}

let keyDir: string | undefined;

/**
 * A namespace of our own with a wireguard-go interface in it (src/lab's starter), left DOWN (it
 * sends nothing), with a private key.
 */
export async function startWireGuard(cleanup: Cleanup, ns: string, iface: string): Promise<WgInterface> {
  sh(["ip", "netns", "add", ns]);
  cleanup.namespace(ns);
  if (!keyDir) {
    keyDir = await makeKeyDir("whb-key-", tmpdir());
    cleanup.path(keyDir);
  }
  const keys = keyPair();
  const daemon = await startWireGuardGo(cleanup, runCommand, {
    ns,
    iface,
    name: `wireguard-go ${iface}`,
    logName: `${iface}.wireguard-go`,
    privateKey: new Secret(Buffer.from(keys.privateHex, "hex").toString("base64")),
    keyDir,
  });
  assertDown(ns, iface);
  return { ns, iface, socketPath: join(SOCKET_DIR, `${iface}.sock`), daemon, keys };
}

/** The safety check: the interface must be down, so wireguard-go sends no packet anywhere. */
export function assertDown(ns: string, iface: string): void {
  const link = sh(["ip", "-n", ns, "-o", "link", "show", iface]);
  if (!/state DOWN/.test(link) || /<[^>]*\bUP\b[^>]*>/.test(link)) throw new Error(`interface ${iface} is not down: ${link}`);
}

/** One `set=1` exchange on the control socket; throws unless errno=0. */
export async function uapiSet(iface: string, body: string, timeoutMs = 60_000): Promise<void> {
  const reply = await uapiExchange(iface, join(SOCKET_DIR, `${iface}.sock`), `set=1\n${body}\n`, {
    timeoutMs,
    maxReplyBytes: 1 << 20,
  });
  if (!/^errno=0\n/m.test(reply)) throw new Error(`wireguard-go refused a set on ${iface}: ${reply.trim()}`);
}

/** The `get=1` reply's size in bytes (it holds the private key: only its length leaves here). */
export async function uapiGetSize(iface: string): Promise<number> {
  const reply = await uapiExchange(iface, join(SOCKET_DIR, `${iface}.sock`), "get=1\n\n", {
    timeoutMs: 60_000,
    maxReplyBytes: 256 << 20,
  });
  return Buffer.byteLength(reply);
}

/** Documentation-range endpoint for peer i: 198.51.100.x / 203.0.113.x, port 20000-64999 (wrapping past 90,000 peers). Never reached. */
export function peerEndpoint(i: number): string {
  const net = i % 2 === 0 ? "198.51.100" : "203.0.113";
  return `${net}.${1 + (i % 250)}:${20000 + (Math.floor(i / 2) % 45000)}`;
}
/** A unique tunnel address per peer, 10.64.0.0/10-ish space. */
export function peerAllowedIp(i: number): string {
  return `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
}

/** Adds peers in chunks (one `set=1` per chunk) with endpoint and allowed IP. */
export async function addPeers(iface: string, keys: ReadonlyArray<{ hex: string }>, withEndpoint: (i: number) => boolean = () => true): Promise<void> {
  const CHUNK = 2_000;
  for (let start = 0; start < keys.length; start += CHUNK) {
    let body = "";
    for (let i = start; i < Math.min(keys.length, start + CHUNK); i++) {
      body += `public_key=${keys[i]?.hex}\n`;
      if (withEndpoint(i)) body += `endpoint=${peerEndpoint(i)}\n`;
      body += `allowed_ip=${peerAllowedIp(i)}\n`;
    }
    await uapiSet(iface, body);
  }
}

// ---------------------------------------------------------------- the wormhole binary

export function tokenFile(cleanup: Cleanup): { path: string; token: string } {
  const dir = mkdtempSync(join(tmpdir(), "whb-"));
  cleanup.path(dir);
  const token = randomBytes(16).toString("hex");
  const path = join(dir, "token");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return { path, token };
}

export interface Wormhole {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last log lines (JSON), for error messages. */
  log(): string;
  /** Resolves with the first log record whose msg is `msg`. */
  waitForLog(msg: string, timeoutMs: number): Promise<Record<string, unknown>>;
}

/** Runs `node BIN args...` (the PID is the wormhole process itself), logging JSON to stderr. */
/**
 * A private copy of the bundle for this run: `npm run build` (tsup, clean) deletes dist/ first, and
 * other people build in this tree while a bench runs. Waits up to 20 s for a build in progress.
 */
export async function privateBundle(cleanup: Cleanup, bin: string): Promise<string> {
  await pollUntil(`${bin} (run \`npm run build\` first)`, () => existsSync(bin), { timeoutMs: 20_000 });
  await sleep(500); // a build that just wrote it may still be writing
  const dir = mkdtempSync(join(tmpdir(), "whb-bin-"));
  cleanup.path(dir);
  const copy = join(dir, "wormhole.cjs");
  copyFileSync(bin, copy);
  return copy;
}

/** "A=1 B=2" → { A: "1", B: "2" } (for --registry-env). */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
    if (!m?.[1]) throw new Error(`not NAME=VALUE: ${pair}`);
    env[m[1]] = m[2] ?? "";
  }
  return env;
}

export function startWormhole(
  cleanup: Cleanup,
  bin: string,
  args: string[],
  name: string,
  nodeArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): Wormhole {
  if (!existsSync(bin)) throw new Error(`${bin} not found: run \`npm run build\` first`);
  const child = cleanup.process(
    spawn(process.execPath, [...nodeArgs, bin, ...args, "--log-format", "json"], {
      stdio: ["ignore", "ignore", "pipe"],
      cwd: ROOT,
      env: { ...process.env, ...extraEnv },
    }),
    name,
  );
  if (child.pid === undefined) throw new Error(`cannot start ${name}`);
  const records: Array<Record<string, unknown>> = [];
  let tail = "";
  let partial = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    tail = (tail + d).slice(-4000);
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) {
      try {
        records.push(JSON.parse(l) as Record<string, unknown>);
        if (records.length > 1000) records.shift();
      } catch {
        /* not JSON: kept in the tail only */
      }
    }
  });
  const pid = child.pid;
  return {
    child,
    pid,
    log: () => tail,
    async waitForLog(msg, timeoutMs) {
      return pollUntil(`${name} to log "${msg}"`, () => records.find((r) => r.msg === msg), {
        timeoutMs,
        intervalMs: 25,
        check: () => {
          if (!alive(child)) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${tail.trim()}`);
        },
      }).catch((err: Error) => {
        throw err instanceof WaitTimeoutError ? new Error(`${err.message} (log: ${tail.trim()})`, { cause: err }) : err;
      });
    },
  };
}

// ---------------------------------------------------------------- the start the registry benches share

export interface RegistryBench {
  readonly tag: string;
  /** The private copy of the bundle. */
  readonly bin: string;
  /** The registry's interface, with `keys` as its peers. */
  readonly wg: WgInterface;
  readonly keys: Array<{ hex: string; base64: string }>;
  readonly token: { path: string; token: string };
  readonly keygenMs: number;
  readonly addPeersMs: number;
}

/**
 * Prints the run's title (with its tag) and the machine, copies the bundle, and starts the
 * registry's wireguard-go (interface `whb<tag><suffix>`) with `peers` peers, and a token file.
 */
export async function registryBench(cleanup: Cleanup, o: { title: string; notes?: readonly string[]; bin: string; suffix: string; peers: number }): Promise<RegistryBench> {
  const tag = runTag();
  console.log(`# ${o.title} (run ${tag})`);
  for (const note of o.notes ?? []) console.log(note);
  console.log(machine());
  const bin = await privateBundle(cleanup, o.bin);
  const wg = await startWireGuard(cleanup, `whb-${tag}`, `whb${tag}${o.suffix}`);
  let t = performance.now();
  const keys = publicKeys(o.peers);
  const keygenMs = performance.now() - t;
  t = performance.now();
  await addPeers(wg.iface, keys);
  const addPeersMs = performance.now() - t;
  return { tag, bin, wg, keys, token: tokenFile(cleanup), keygenMs, addPeersMs };
}

export interface StartedRegistry {
  readonly registry: Wormhole;
  /** Its gRPC port on 127.0.0.1. */
  readonly port: number;
  /** Its HTTP port, with `http`. */
  readonly httpPort: number | null;
  /** The "registry serving" log record. */
  readonly serving: Record<string, unknown>;
}

/** `wormhole registry -i IFACE -a 127.0.0.1:0 --token-file …` (and `--http 127.0.0.1:0`), once it serves. */
export async function startRegistry(
  cleanup: Cleanup,
  bin: string,
  o: { iface: string; tokenPath: string; name?: string; args?: readonly string[]; http?: boolean; nodeArgs?: string[]; env?: Record<string, string>; timeoutMs?: number },
): Promise<StartedRegistry> {
  const args = ["registry", "-i", o.iface, "-a", "127.0.0.1:0", ...(o.http ? ["--http", "127.0.0.1:0"] : []), "--token-file", o.tokenPath, ...(o.args ?? [])];
  const registry = startWormhole(cleanup, bin, args, o.name ?? "registry", o.nodeArgs, o.env);
  const serving = await registry.waitForLog("registry serving", o.timeoutMs ?? 60_000);
  let httpPort: number | null = null;
  if (o.http) {
    const http = await registry.waitForLog("serving /metrics, /healthz and the status page", 10_000);
    httpPort = Number(/:(\d+)$/.exec(String(http.http))?.[1]);
  }
  return { registry, port: Number(serving.port), httpPort, serving };
}

// ---------------------------------------------------------------- /proc sampling

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
const PAGE_KB = (Number(spawnSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).stdout.trim()) || 4096) / 1024;

export interface ProcSample {
  /** performance.now() of this process. */
  readonly t: number;
  /** utime + stime, seconds. */
  readonly cpuSec: number;
  readonly rssKb: number;
}

export function readProc(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime is field 14, stime 15, rss 24.
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { t: performance.now(), cpuSec: ticks / CLK_TCK, rssKb: rssPages * PAGE_KB };
  } catch {
    return null;
  }
}

/** VmHWM: the process's peak resident set since it started, kB. */
export function peakRssKb(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface PhaseStats {
  readonly seconds: number;
  readonly cpuSec: number;
  /** CPU time / wall time; 100 % is one core. */
  readonly cpuPercent: number;
  readonly rssStartMb: number;
  readonly rssEndMb: number;
  readonly rssMaxMb: number;
  readonly rssMeanMb: number;
}

/** Samples one process every `everyMs`; phases are marked by name and summarised. */
export class ProcSampler {
  private readonly samples: ProcSample[] = [];
  private readonly marks = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly pid: number,
    private readonly everyMs = 100,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
  sample(): ProcSample | null {
    const s = readProc(this.pid);
    if (s) this.samples.push(s);
    return s;
  }
  /** Marks "now" under `name` (takes a sample so the phase has exact ends). */
  mark(name: string): void {
    this.sample();
    this.marks.set(name, this.samples.length - 1);
  }
  phase(from: string, to: string): PhaseStats {
    const a = this.marks.get(from);
    const b = this.marks.get(to);
    if (a === undefined || b === undefined) throw new Error(`no mark ${a === undefined ? from : to}`);
    const span = this.samples.slice(a, b + 1);
    const first = span[0];
    const last = span[span.length - 1];
    if (!first || !last) throw new Error("no samples");
    const seconds = (last.t - first.t) / 1000;
    const cpuSec = last.cpuSec - first.cpuSec;
    const rss = span.map((s) => s.rssKb / 1024);
    return {
      seconds,
      cpuSec,
      cpuPercent: seconds > 0 ? (100 * cpuSec) / seconds : 0,
      rssStartMb: first.rssKb / 1024,
      rssEndMb: last.rssKb / 1024,
      rssMaxMb: Math.max(...rss),
      rssMeanMb: rss.reduce((x, y) => x + y, 0) / rss.length,
    };
  }
}

// ---------------------------------------------------------------- statistics and output

/** Nearest-rank percentile of unsorted numbers (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? NaN;
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

export function machine(): string {
  const wgGo = spawnSync("dpkg-query", ["-W", "-f", "$" + "{Version}", "wireguard-go"], { encoding: "utf8" }).stdout.trim();
  return [
    `date: ${new Date().toString()}`,
    `machine: ${cpus().length} cpus (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, wireguard-go ${wgGo || "?"}`,
  ].join("\n");
}

export function phaseLine(name: string, s: PhaseStats): string {
  return `${name.padEnd(28)} ${fmt(s.seconds, 1).padStart(6)} s  cpu ${fmt(s.cpuSec, 2).padStart(6)} s = ${fmt(s.cpuPercent, 1).padStart(5)} %  rss ${fmt(s.rssStartMb, 0)} → ${fmt(s.rssEndMb, 0)} MB (max ${fmt(s.rssMaxMb, 0)})`;
}

export function verdict(what: string, value: number, op: "<=" | ">=", target: number, unit: string): string {
  const ok = op === "<=" ? value <= target : value >= target;
  return `${ok ? "MET   " : "MISSED"} ${what}: ${fmt(value, value < 10 ? 2 : 1)} ${unit} (target ${op} ${target} ${unit})`;
}

/**
 * The frame every namespace bench shares: refuse to run without root and the
 * tools, abort after `timeoutSec`, and always clean up what `body` registered.
 * Returns the exit status: 0, or 1 with the error on stderr.
 */
export async function labBench(name: string, timeoutSec: number, body: (cleanup: Cleanup) => Promise<void>): Promise<number> {
  requireLab();
  const cleanup = new Cleanup();
  const abort = setTimeout(() => {
    process.stderr.write(`\naborting: the run took more than ${timeoutSec} s\n`);
    void cleanup.run().finally(() => process.exit(1));
  }, timeoutSec * 1000);
  abort.unref();
  try {
    await body(cleanup);
    return 0;
  } catch (err) {
    console.error(`${name} bench failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    clearTimeout(abort);
    await cleanup.run();
  }
}

/** Refuses to run unless root with the tools (the benches that need namespaces). */
export function requireLab(): void {
  if (process.getuid?.() !== 0) {
    process.stderr.write("this bench needs root (network namespaces, /var/run/wireguard)\n");
    process.exit(2);
  }
  for (const tool of ["ip", "wg", "wireguard-go"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      process.stderr.write(`this bench needs ${tool}\n`);
      process.exit(2);
    }
  }
}

/**
 * Runs bench/loadgen.ts in a process of its own with `config`; marks its phases on
 * `sampler` as they come and resolves with its result (rejects on its error or exit).
 */
export function runLoadgen(cleanup: Cleanup, config: WatchConfig, sampler: ProcSampler): Promise<WatchResult>;
export function runLoadgen(cleanup: Cleanup, config: GetEndpointConfig, sampler: ProcSampler): Promise<GetEndpointResult>;
export function runLoadgen(cleanup: Cleanup, config: WatchConfig | GetEndpointConfig, sampler: ProcSampler): Promise<WatchResult | GetEndpointResult> {
  const loadgen = cleanup.process(
    fork(join(ROOT, "bench", "loadgen.ts"), [], { execArgv: ["--import", "tsx"], cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    "load generator",
  );
  return new Promise((resolve, reject) => {
    loadgen.on("message", (m: LoadMessage) => {
      if (m.type === "phase") sampler.mark(m.name);
      else if (m.type === "error") reject(new Error(`load generator: ${m.message}`));
      else if (m.mode === config.mode) resolve(m);
    });
    loadgen.on("exit", (code, signal) => reject(new Error(`load generator exited (${code ?? signal}) without a result`)));
    loadgen.send(config);
  });
}
