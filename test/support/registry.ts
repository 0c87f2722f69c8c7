/** A registry's peer table for its tests: a fake wg0 with three peers, read once. */
import { PeerTable } from "../../src/registry/table.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "./keys.js";
import { captureLogger } from "./logs.js";

/**
 * wg0 (key 99) with peers key(1..3) at 203.0.113.1:4000N, allowed IPs
 * 10.0.0.N/32, and a PeerTable over it that has read it once and is refreshed
 * only by the test (no poll timer).
 */
export async function threePeerTable() {
  const wg = new FakeWireGuard([
    {
      name: "wg0",
      publicKey: key(99),
      peers: [1, 2, 3].map((n) => ({ publicKey: key(n), endpoint: { ip: "203.0.113.1", port: 40000 + n }, allowedIps: [`10.0.0.${n}/32`] })),
    },
  ]);
  const log = captureLogger();
  const table = new PeerTable({ wg, iface: "wg0", logger: log.logger });
  await table.refresh();
  return { wg, log, table };
}
