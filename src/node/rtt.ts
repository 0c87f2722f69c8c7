/**
 * Round-trip times for `wormhole status`: one ping(8) to each reachable
 * peer's tunnel address, bound to the WireGuard interface (`-I`), so the
 * packet can only go into the tunnel, never out of the machine by another
 * route. Measured when status is asked, not in the background: a node idles
 * without sending anything for it.
 */
import { runCommand, type Runner } from "../util/runner.js";

/** The round trip to `ip` through WireGuard interface `iface`, in ms; null when none came back. Never throws. */
export type RttMeter = (ip: string, iface: string) => Promise<number | null>;

/** The time of the reply in ping's output ("time=0.123 ms"; "time<1 ms" counts as 1), or null. */
export function parsePingRtt(stdout: string): number | null {
  const m = /\btime([=<])(\d+(?:\.\d+)?) ?ms\b/.exec(stdout);
  if (!m) return null;
  const ms = Number(m[2]);
  return Number.isFinite(ms) ? ms : null;
}

/** The real meter: `ping -n -c 1 -W 1 -I IFACE IP`, one second at most. */
export function pingMeter(run: Runner = runCommand): RttMeter {
  return async (ip, iface) => {
    try {
      const r = await run(["ping", "-n", "-c", "1", "-W", "1", "-I", iface, ip], { allowFailure: true, timeoutMs: 3_000 });
      return r.code === 0 ? parsePingRtt(r.stdout) : null;
    } catch {
      return null;
    }
  };
}
