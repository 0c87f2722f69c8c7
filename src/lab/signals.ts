/**
 * Cleanup on SIGINT/SIGTERM and at process exit, for every live lab.
 *
 * On a signal, every live lab is torn down (asynchronously, through the Runner),
 * then the signal is raised again with the default action so the process ends
 * the way it would have. If the process exits without a lab having been torn
 * down (an uncaught exception), the exit hook does what can be done
 * synchronously; the sweep (sweep.ts) finishes anything left.
 */

export interface Teardown {
  /** Full asynchronous cleanup; never throws. */
  destroy(): Promise<unknown>;
  /** Last-resort synchronous cleanup at process exit. */
  destroySync(): void;
}

const live = new Set<Teardown>();
let installed = false;
let handling = false;

function onSignal(sig: NodeJS.Signals): void {
  if (handling) return; // a second Ctrl-C while cleaning up: keep cleaning up
  handling = true;
  process.stderr.write(`\nlab: ${sig}: cleaning up...\n`);
  const all = [...live].map((t) => t.destroy());
  void Promise.allSettled(all).then(() => {
    uninstall();
    process.kill(process.pid, sig);
  });
}

function onExit(): void {
  for (const t of live) {
    try {
      t.destroySync();
    } catch {
      /* nothing more can be done at exit */
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", onExit);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.off("exit", onExit);
}

export function registerTeardown(t: Teardown): void {
  live.add(t);
  install();
}

export function unregisterTeardown(t: Teardown): void {
  live.delete(t);
  if (live.size === 0 && !handling) uninstall();
}
