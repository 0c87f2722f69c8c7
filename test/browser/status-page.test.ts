/**
 * The registry's status page in a real browser: Debian's headless Chromium,
 * driven by playwright-core, against an in-process registry with a fake
 * WireGuard on 127.0.0.1. Only loopback is ever contacted.
 *
 * Skipped (with the reason) where /usr/bin/chromium is missing; .ci/run
 * installs it, so CI always runs it. WORMHOLE_SCREENSHOT=PATH saves a
 * screenshot of the page.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { runRegistry, type RunningRegistry } from "../../src/registry/run.js";
import { FakeWireGuard } from "../../src/wg/fake.js";
import { key } from "../support/keys.js";
import { captureLogger } from "../support/logs.js";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y --no-install-recommends chromium); CI installs it`;

const ALICE = key(1);
const BOB = key(2);
const CAROL = key(3);
const MALLORY = key(4);
const HOSTILE = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;

/** The browser may talk to nothing but loopback: no DNS, no background services. */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

interface Row {
  key: string;
  cells: string[];
}

async function tableRows(page: Page): Promise<Row[]> {
  return page.$$eval("#peers tbody tr[data-key]", (trs) =>
    trs.map((tr) => ({
      key: tr.getAttribute("data-key") ?? "",
      cells: [...tr.querySelectorAll("td")].map((td) => (td.textContent ?? "").trim()),
    })),
  );
}

describe("status page in headless Chromium", { skip }, () => {
  let reg: RunningRegistry;
  let wg: FakeWireGuard;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const consoleErrors: string[] = [];

  before(async () => {
    wg = new FakeWireGuard([
      {
        name: "wg0",
        publicKey: key(9),
        peers: [
          { publicKey: ALICE, endpoint: { ip: "198.51.100.10", port: 40000 }, allowedIps: ["10.200.0.2/32"], lastHandshakeMs: Date.now() - 12_000 },
          { publicKey: BOB, endpoint: { ip: "2001:db8::20", port: 50000 }, allowedIps: ["10.200.0.3/32"], lastHandshakeMs: Date.now() - 95_000 },
          { publicKey: CAROL, allowedIps: ["10.200.0.4/32"] },
          { publicKey: MALLORY, endpoint: { ip: "203.0.113.66", port: 6666 }, allowedIps: ["10.200.0.5/32"] },
        ],
      },
    ]);
    reg = await runRegistry(
      {
        address: "127.0.0.1:0",
        iface: "wg0",
        token: "tok-8675309",
        pollIntervalMs: 20,
        http: { host: "127.0.0.1", port: 0 },
        names: new Map([
          [ALICE, "alice"],
          [BOB, "bob"],
          [MALLORY, HOSTILE],
        ]),
      },
      { wg, logger: captureLogger().logger },
    );
    profile = mkdtempSync(join(tmpdir(), "wormhole-chromium-"));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1100, height: 420 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    await page.goto(`http://127.0.0.1:${reg.httpPort}/`);
  });

  after(async () => {
    await context?.close();
    await reg?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("renders the peers: names (or short keys), endpoints, handshake ages", async () => {
    const rows = await tableRows(page);
    // Named peers first, by name; then the others (the hostile name's place depends on collation).
    assert.deepEqual(
      rows.map((r) => r.key).filter((k) => k !== MALLORY),
      [ALICE, BOB, CAROL],
    );
    const byKey = new Map(rows.map((r) => [r.key, r.cells]));
    assert.deepEqual(byKey.get(ALICE)?.slice(0, 2), ["alice", "198.51.100.10:40000"]);
    assert.match(byKey.get(ALICE)?.[2] ?? "", /^1\d s ago$/);
    assert.deepEqual(byKey.get(BOB)?.slice(0, 2), ["bob", "[2001:db8::20]:50000"]);
    assert.match(byKey.get(BOB)?.[2] ?? "", /^1 min 3\d s ago$/);
    assert.deepEqual(byKey.get(CAROL)?.slice(0, 3), ["AwMDAwMD…", "—", "never"]);
    for (const cells of byKey.values()) assert.equal(cells[4], "—", "no node has reported a path");
    assert.equal(rows.length, 4);
    if (process.env.WORMHOLE_SCREENSHOT) await page.screenshot({ path: process.env.WORMHOLE_SCREENSHOT, fullPage: true });
  });

  it("shows a hostile peer name as text: no element, no script ran", async () => {
    const rows = await tableRows(page);
    assert.equal(rows.find((r) => r.key === MALLORY)?.cells[0], HOSTILE);
    assert.equal(await page.locator("img").count(), 0);
    assert.equal(await page.locator("script").count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  });

  it("the page's own style applies under its Content-Security-Policy, with no console error", async () => {
    assert.equal(await page.$eval("table", (t) => getComputedStyle(t).borderCollapse), "collapse");
    assert.equal(await page.$eval("#state", (s) => s.textContent), "interface readable");
    assert.deepEqual(consoleErrors, []);
  });

  it("reloads by itself and shows a moved endpoint", async () => {
    let loads = 0;
    page.on("load", () => loads++);
    wg.setPeerEndpoint("wg0", ALICE, { ip: "198.51.100.10", port: 41234 });
    // The page reloads every 5 s (meta refresh, no script): poll the DOM across reloads.
    const deadline = Date.now() + 12_000;
    let endpoint: string | undefined;
    while (Date.now() < deadline) {
      try {
        endpoint = (await tableRows(page)).find((r) => r.key === ALICE)?.cells[1];
      } catch {
        // the document is being replaced
      }
      if (endpoint === "198.51.100.10:41234") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(endpoint, "198.51.100.10:41234");
    assert.ok(loads >= 1, "the browser reloaded the page by itself");
  });
});
