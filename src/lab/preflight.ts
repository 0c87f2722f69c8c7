/** What the lab needs from the machine, checked without running anything. */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Programs the lab runs, and the Debian package of each. */
export const LAB_TOOLS: Readonly<Record<string, string>> = {
  ip: "iproute2",
  ss: "iproute2",
  nft: "nftables",
  wg: "wireguard-tools",
  "wireguard-go": "wireguard-go",
  conntrack: "conntrack",
  ping: "iputils-ping",
  sysctl: "procps",
};

export interface Prerequisites {
  readonly root: boolean;
  /** Missing programs, e.g. ["ping (iputils-ping)"]. */
  readonly missing: readonly string[];
  readonly tun: boolean;
}

function onPath(program: string, path: string): boolean {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

export function checkPrerequisites(env: NodeJS.ProcessEnv = process.env): Prerequisites {
  const path = env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  const missing = Object.entries(LAB_TOOLS)
    .filter(([program]) => !onPath(program, path))
    .map(([program, pkg]) => `${program} (${pkg})`);
  let tun = true;
  try {
    accessSync("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch {
    tun = false;
  }
  return { root: process.getuid?.() === 0, missing, tun };
}

/** Why the lab cannot run here, or null when it can. */
export function whyLabCannotRun(p: Prerequisites = checkPrerequisites()): string | null {
  if (!p.root) return "the NAT lab needs root (it creates network namespaces and runs wireguard-go); run it as root";
  if (p.missing.length) {
    const pkgs = [...new Set(p.missing.map((m) => /\((.*)\)/.exec(m)?.[1] ?? m))];
    return `the NAT lab needs ${p.missing.join(", ")}; install with: apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
  }
  if (!p.tun) return "the NAT lab needs /dev/net/tun (wireguard-go is a TUN device)";
  return null;
}
