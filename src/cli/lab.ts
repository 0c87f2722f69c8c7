/** `wormhole lab`: the NAT lab demo (two nodes) or the NAT × NAT matrix. */
import { Command } from "commander";
import type { NatBehaviour } from "../lab/index.js";
import { NAT_BEHAVIOURS, NAT_DESCRIPTIONS, isNatBehaviour, runDemo, runMatrix, sweepLeftovers, whyLabCannotRun } from "../lab/index.js";
import { UsageError } from "./common.js";

interface LabFlags {
  nat?: readonly [NatBehaviour, NatBehaviour];
  matrix?: boolean;
  verbose?: boolean;
  duration?: number;
}

/** Parses `--nat A,B`: exactly two known behaviours. */
export function parseNatPair(value: string): [NatBehaviour, NatBehaviour] {
  const parts = value.split(",").map((s) => s.trim());
  const valid = NAT_BEHAVIOURS.join(", ");
  if (parts.length !== 2) throw new UsageError(`--nat \`${value}' must be two behaviours separated by a comma, e.g. home,cgnat (valid: ${valid})`);
  for (const p of parts) {
    if (!isNatBehaviour(p)) throw new UsageError(`--nat \`${value}': unknown NAT behaviour \`${p}' (valid: ${valid})`);
  }
  return parts as [NatBehaviour, NatBehaviour];
}

export function parseDurationSeconds(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0 || Number(value) > 86_400) {
    throw new UsageError(`--duration \`${value}' must be a number of seconds, more than 0 and at most 86400`);
  }
  return Number(value);
}

export function labCommand(): Command {
  const behaviours = NAT_BEHAVIOURS.map((b) => `  ${b.padEnd(9)} ${NAT_DESCRIPTIONS[b]}`).join("\n");
  return new Command("lab")
    .description("run the NAT lab (root): a registry and two nodes behind real NATs in network namespaces, with a live table; or the NAT x NAT matrix")
    .option("--nat <a,b>", "NAT behaviours of the two nodes' sites (default: home,home)", parseNatPair)
    .option("--matrix", "measure every pair of NAT behaviours at once and print the grid; exit status 1 if a pair is worse than expected")
    .option("--verbose", "name every step on stderr")
    .option("--duration <seconds>", "stop the demo after this many seconds (default: until Ctrl-C)", parseDurationSeconds)
    .addHelpText("after", `\nNAT behaviours (RFC 4787 terms):\n${behaviours}\n`)
    .action(async (flags: LabFlags) => {
      if (flags.matrix && flags.nat) throw new UsageError("--nat picks the demo's two sites; --matrix always covers every behaviour: give one of them");
      if (flags.matrix && flags.duration !== undefined) throw new UsageError("--duration is for the demo; --matrix stops by itself");
      const why = whyLabCannotRun();
      if (why) throw new Error(why);
      const log = flags.verbose ? (line: string) => void process.stderr.write(`lab: ${line}\n`) : undefined;
      // Leftovers of crashed runs (their owner process is gone); live runs are left alone.
      const swept = await sweepLeftovers(log ? { log } : {});
      if (swept.namespaces.length + swept.processes.length + swept.sockets.length > 0) {
        process.stderr.write(`wormhole lab: removed leftovers of crashed runs: ${swept.namespaces.length} namespace(s), ${swept.processes.length} process(es), ${swept.sockets.length} socket(s)\n`);
      }
      for (const p of swept.problems) process.stderr.write(`wormhole lab: could not remove a leftover: ${p}\n`);
      const out = (text: string) => void process.stdout.write(text);
      if (flags.matrix) {
        const r = await runMatrix({ out, ...(log ? { log } : {}) });
        if (!r.ok) {
          process.stderr.write("wormhole lab: at least one pair is worse than expected (marked !)\n");
          process.exitCode = 1;
        }
        return;
      }
      const r = await runDemo({
        nat: flags.nat ?? ["home", "home"],
        out,
        ...(log ? { log } : {}),
        ...(flags.duration !== undefined ? { durationMs: flags.duration * 1000 } : {}),
      });
      if (!r.interrupted && Object.values(r.firstPingMs).every((v) => v === null)) {
        process.stdout.write("no ping got through (see the expected path above)\n");
      }
    });
}
