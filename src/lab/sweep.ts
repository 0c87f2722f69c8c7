/**
 * Finding and clearing what lab runs left behind (a run killed with SIGKILL
 * cannot clean up after itself).
 *
 * Only names of the lab's own pattern are touched: namespaces `whl-XXXX-*`,
 * sockets `/var/run/wireguard/whl-XXXX-*.sock`, temp dirs `whl-XXXX-*` in the
 * temp root and /dev/shm, and processes whose argv names one of those (or that
 * sit inside such a namespace). A run whose owner process (owner.pid in its
 * temp dir) is alive is left alone unless asked by id.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Runner } from "../util/runner.js";
import { runCommand } from "../util/runner.js";
import { LAB_NAME, WG_SOCKET_DIR, checkRunId, runIdOf } from "./names.js";
import { isAlive, stopProcess } from "./process.js";
import type { LabProcess } from "./process.js";

export interface Leftovers {
  readonly namespaces: string[];
  readonly sockets: string[];
  readonly processes: { pid: number; argv: string[] }[];
  readonly tmpDirs: string[];
}

export interface SweepOptions {
  readonly runner?: Runner;
  /** Temp root the labs used. Default os.tmpdir(). */
  readonly tmpRoot?: string;
  /** Only this run (even if its owner is alive). Default: every run whose owner is gone. */
  readonly runId?: string;
  readonly log?: (line: string) => void;
}

export interface SweepReport extends Leftovers {
  /** Runs left alone because their owner process is alive. */
  readonly skippedLive: string[];
  readonly problems: string[];
}

const SHM = "/dev/shm";

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function listNamespaces(run: Runner): Promise<string[]> {
  const out = (await run(["ip", "netns", "list"])).stdout;
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => LAB_NAME.test(n));
}

/** Processes whose argv mentions a lab name (`whl-XXXX-...`), other than this process. */
async function labProcesses(): Promise<{ pid: number; argv: string[]; runIds: string[] }[]> {
  const found: { pid: number; argv: string[]; runIds: string[] }[] = [];
  for (const entry of await listDir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter(Boolean);
    } catch {
      continue;
    }
    const runIds = new Set<string>();
    for (const arg of argv) {
      for (const part of arg.split("/")) {
        const id = runIdOf(part.replace(/\.sock$/, ""));
        if (id) runIds.add(id);
      }
    }
    if (runIds.size) found.push({ pid, argv, runIds: [...runIds] });
  }
  return found;
}

async function ownerAlive(tmpDirs: readonly string[]): Promise<boolean> {
  for (const dir of tmpDirs) {
    try {
      const pid = Number((await readFile(join(dir, "owner.pid"), "utf8")).trim());
      if (pid > 0 && isAlive(pid)) return true;
    } catch {
      /* no owner file */
    }
  }
  return false;
}

async function gather(run: Runner, tmpRoot: string): Promise<Map<string, Leftovers>> {
  const byRun = new Map<string, Leftovers>();
  const of = (id: string): Leftovers => {
    let l = byRun.get(id);
    if (!l) byRun.set(id, (l = { namespaces: [], sockets: [], processes: [], tmpDirs: [] }));
    return l;
  };
  for (const ns of await listNamespaces(run)) of(runIdOf(ns) as string).namespaces.push(ns);
  for (const f of await listDir(WG_SOCKET_DIR)) {
    const id = f.endsWith(".sock") ? runIdOf(f.slice(0, -5)) : null;
    if (id) of(id).sockets.push(join(WG_SOCKET_DIR, f));
  }
  for (const dir of [tmpRoot, SHM]) {
    for (const f of await listDir(dir)) {
      const m = /^whl-([0-9a-f]{4})-[A-Za-z0-9]{6}$/.exec(f);
      if (m) of(m[1] as string).tmpDirs.push(join(dir, f));
    }
  }
  for (const p of await labProcesses()) for (const id of p.runIds) of(id).processes.push({ pid: p.pid, argv: p.argv });
  return byRun;
}

/** Everything of one run still on the machine (all empty after a clean teardown). */
export async function findLeftovers(runId: string, options: { runner?: Runner; tmpRoot?: string } = {}): Promise<Leftovers> {
  checkRunId(runId);
  const all = await gather(options.runner ?? runCommand, options.tmpRoot ?? tmpdir());
  return all.get(runId) ?? { namespaces: [], sockets: [], processes: [], tmpDirs: [] };
}

export function isEmpty(l: Leftovers): boolean {
  return l.namespaces.length + l.sockets.length + l.processes.length + l.tmpDirs.length === 0;
}

/** Removes leftovers of dead runs (or of `runId`): processes by PID, then namespaces, sockets, temp dirs. */
export async function sweepLeftovers(options: SweepOptions = {}): Promise<SweepReport> {
  const run = options.runner ?? runCommand;
  const log = options.log ?? (() => {});
  const all = await gather(run, options.tmpRoot ?? tmpdir());
  const report: SweepReport = { namespaces: [], sockets: [], processes: [], tmpDirs: [], skippedLive: [], problems: [] };
  for (const [id, l] of all) {
    if (options.runId !== undefined && id !== checkRunId(options.runId)) continue;
    if (options.runId === undefined && (await ownerAlive(l.tmpDirs))) {
      report.skippedLive.push(id);
      continue;
    }
    log(`sweep: run ${id}: ${l.namespaces.length} namespace(s), ${l.processes.length} process(es), ${l.sockets.length} socket(s), ${l.tmpDirs.length} dir(s)`);
    // Processes inside the run's namespaces count too (found by namespace, not by argv).
    const pids = new Map(l.processes.map((p) => [p.pid, p.argv]));
    for (const ns of l.namespaces) {
      const r = await run(["ip", "netns", "pids", ns], { allowFailure: true });
      for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) if (!pids.has(pid) && pid !== process.pid) pids.set(pid, []);
    }
    await Promise.all(
      [...pids].map(async ([pid, argv]) => {
        try {
          await stopProcess(orphan(pid, argv), { graceMs: 2_000 });
          report.processes.push({ pid, argv });
        } catch (err) {
          report.problems.push(`pid ${pid}: ${(err as Error).message}`);
        }
      }),
    );
    for (const ns of l.namespaces) {
      const r = await run(["ip", "netns", "del", ns], { allowFailure: true });
      if (r.code === 0) report.namespaces.push(ns);
      else report.problems.push(`namespace ${ns}: ${r.stderr.trim()}`);
    }
    for (const path of [...l.sockets, ...l.tmpDirs]) {
      try {
        await rm(path, { recursive: true, force: true });
        (path.startsWith(WG_SOCKET_DIR) ? report.sockets : report.tmpDirs).push(path);
      } catch (err) {
        report.problems.push(`${path}: ${(err as Error).message}`);
      }
    }
  }
  return report;
}

/** A LabProcess view of a process this lab run did not spawn (it is not our child: poll for its exit). */
function orphan(pid: number, argv: readonly string[]): LabProcess {
  const gone = (): boolean => !isAlive(pid);
  const exited = new Promise<{ code: null; signal: null }>((resolve) => {
    const t = setInterval(() => {
      if (gone()) {
        clearInterval(t);
        resolve({ code: null, signal: null });
      }
    }, 50);
    t.unref();
  });
  return {
    name: `leftover ${argv[0] ?? "process"}`,
    ns: "",
    pid,
    logFile: "",
    exited,
    exitStatus: () => (gone() ? { code: null, signal: null } : null),
  };
}
