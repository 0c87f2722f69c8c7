/**
 * Long-running processes inside lab namespaces (wireguard-go, wormhole agents).
 *
 * Started as `ip netns exec NS argv...`: ip execs the command in place, so the
 * PID held here is the daemon's own, and stopping it by PID stops the daemon.
 * Output goes to a log file; children get their own process group so a Ctrl-C
 * in the terminal reaches the lab (which then stops them in order) first.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface LabProcess {
  /** What it is, for logs: "wireguard-go home1", "node agent home1". */
  readonly name: string;
  readonly ns: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** The exit status once exited, else null. */
  exitStatus(): ExitStatus | null;
}

export interface SpawnOptions {
  readonly logFile: string;
  readonly env?: Readonly<Record<string, string>>;
}

export async function spawnInNamespace(name: string, ns: string, argv: readonly string[], options: SpawnOptions): Promise<LabProcess> {
  const fd = openSync(options.logFile, "a", 0o600);
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn("ip", ["netns", "exec", ns, ...argv], {
      stdio: ["ignore", fd, fd],
      detached: true,
      env: { ...process.env, LC_ALL: "C", ...options.env },
    });
  } finally {
    closeSync(fd);
  }
  let status: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.on("exit", (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
  });
  try {
    await once(child, "spawn");
  } catch (err) {
    throw new Error(`${name}: cannot start \`ip netns exec ${ns} ${argv.join(" ")}': ${(err as Error).message}`, { cause: err });
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: started without a PID`);
  return { name, ns, pid, logFile: options.logFile, exited, exitStatus: () => status };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

async function exitedWithin(p: LabProcess, ms: number): Promise<boolean> {
  if (p.exitStatus()) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const done = await Promise.race([p.exited.then(() => true as const), timeout]);
  clearTimeout(timer);
  return done;
}

/** SIGTERM (or `sig`), then SIGKILL after `graceMs`. Throws if it still has not exited. */
export async function stopProcess(p: LabProcess, options: { graceMs?: number; signal?: NodeJS.Signals } = {}): Promise<void> {
  if (p.exitStatus()) return;
  signal(p.pid, options.signal ?? "SIGTERM");
  if (await exitedWithin(p, options.graceMs ?? 3_000)) return;
  signal(p.pid, "SIGKILL");
  if (await exitedWithin(p, 3_000)) return;
  throw new Error(`${p.name} (pid ${p.pid}) did not exit after SIGKILL`);
}

/** The last `lines` lines of a log file ("" when it cannot be read). */
export async function tailFile(path: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(path, "utf8");
    return text.split("\n").slice(-lines - 1).join("\n").trimEnd();
  } catch {
    return "";
  }
}

/** Whether a process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    // Field 3 of /proc/PID/stat is the state; the command name before it may hold spaces, hence the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * Whoever owns a run (the lab, a benchmark, a test): starts processes it will
 * stop at its teardown, and removes the files it is told of.
 */
export interface ProcessOwner {
  /** Starts `argv` inside `ns`, tracked for teardown, its output in a log file named after `logName`. */
  spawn(name: string, ns: string, argv: readonly string[], options: { logName: string; env?: Record<string, string> }): Promise<LabProcess>;
  /** A file to remove at teardown (after the processes are stopped). */
  removeLater(path: string): void;
}

/** A ProcessOwner for runs without a Lab (the benchmarks, the real-WireGuard tests): logs go to `logDir`. */
export class ProcessGroup implements ProcessOwner {
  readonly #processes: LabProcess[] = [];
  readonly #files: string[] = [];

  constructor(readonly logDir: string) {}

  async spawn(name: string, ns: string, argv: readonly string[], options: { logName: string; env?: Record<string, string> }): Promise<LabProcess> {
    const p = await spawnInNamespace(name, ns, argv, { logFile: join(this.logDir, `${options.logName}.log`), ...(options.env ? { env: options.env } : {}) });
    this.#processes.push(p);
    return p;
  }

  removeLater(path: string): void {
    this.#files.push(path);
  }

  /** Stops every process (the newest first), then removes the files. */
  async teardown(): Promise<void> {
    for (const p of [...this.#processes].reverse()) await stopProcess(p).catch(() => {});
    for (const f of this.#files) await rm(f, { force: true });
  }

  /** At process exit, where nothing can be awaited: SIGKILL by PID, then the files. */
  teardownSync(): void {
    for (const p of this.#processes) if (!p.exitStatus()) signal(p.pid, "SIGKILL");
    for (const f of this.#files) rmSync(f, { force: true });
  }
}
