/** The status page as a pure function: what it shows, and that every value is escaped. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { escapeHtml, formatAge, formatEndpoint, renderStatusPage, STATUS_PAGE_CSP, type StatusPageInput } from "../../src/registry/page.js";
import type { RegistryPeer } from "../../src/registry/view.js";
import { key } from "../support/keys.js";

const NOW = Date.UTC(2026, 10, 29, 18, 0, 0);
const ALICE = key(1);
const BOB = key(2);
const CAROL = key(3);

function peer(publicKey: string, extra: Partial<RegistryPeer> = {}): RegistryPeer {
  return { publicKey, endpoint: null, lastHandshakeMs: 0, allowedIps: [], rxBytes: 0, txBytes: 0, endpointRevision: 1, ...extra };
}

function page(extra: Partial<StatusPageInput> = {}): string {
  return renderStatusPage({
    iface: "wg0",
    publicKey: key(9),
    peers: [
      peer(BOB, { endpoint: { ip: "2001:db8::2", port: 50000 }, lastHandshakeMs: NOW - 125_000, allowedIps: ["10.200.0.3/32"] }),
      peer(ALICE, { endpoint: { ip: "198.51.100.10", port: 40000 }, lastHandshakeMs: NOW - 42_000, allowedIps: ["10.200.0.2/32"] }),
      peer(CAROL),
    ],
    names: new Map([
      [ALICE, "alice"],
      [BOB, "bob"],
    ]),
    nowMs: NOW,
    error: null,
    watchers: 2,
    ...extra,
  });
}

/** The rows of the peers table, as [key, cells text...]. */
function rows(html: string): string[][] {
  return [...html.matchAll(/<tr data-key="([^"]+)">(.*?)<\/tr>/gs)].map((m) => [
    m[1] as string,
    ...[...(m[2] as string).matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((c) => (c[1] as string).replace(/<[^>]+>/g, "")),
  ]);
}

describe("status page", () => {
  it("lists named peers first by name, then the others by key, with endpoint, handshake age and allowed IPs", () => {
    assert.deepEqual(rows(page()), [
      [ALICE, "alice", "198.51.100.10:40000", "42 s ago", "10.200.0.2/32", "—"],
      [BOB, "bob", "[2001:db8::2]:50000", "2 min 5 s ago", "10.200.0.3/32", "—"],
      [CAROL, "AwMDAwMD…", "—", "never", "—", "—"],
    ]);
  });

  it("says how many peers and watchers, and that the interface is readable", () => {
    const html = page();
    assert.match(html, /<span class="state ok" id="state">interface readable<\/span>/);
    assert.match(html, /3 peers/);
    assert.match(html, /2 nodes watching/);
    assert.match(html, /updated 2026-11-29 18:00:00 UTC/);
    assert.doesNotMatch(html, /id="error"/);
  });

  it("shows why the interface cannot be read", () => {
    const html = page({ error: "WireGuard interface `wg0' not found" });
    assert.match(html, /<span class="state bad" id="state">interface unreadable<\/span>/);
    assert.match(html, /<p class="error" id="error">Cannot read the WireGuard interface: WireGuard interface `wg0&#39; not found\. The table shows the last good read\.<\/p>/);
  });

  it("shows the paths a node reported, by peer name; many are counted by kind", () => {
    const few = page({
      pathStates: new Map([[ALICE, [{ peerPublicKey: BOB, kind: "direct", sinceMs: NOW, endpoint: null }, { peerPublicKey: CAROL, kind: "down", sinceMs: NOW, endpoint: null }]]]),
    });
    assert.equal(rows(few)[0]?.[5], "bob direct, AwMDAwMD… down");
    const many = page({
      pathStates: new Map([[ALICE, [1, 2, 3, 4, 5, 6].map((n) => ({ peerPublicKey: key(10 + n), kind: n <= 4 ? ("direct" as const) : ("lan" as const), sinceMs: NOW, endpoint: null }))]]),
    });
    assert.equal(rows(many)[0]?.[5], "4 direct · 2 lan");
  });

  it("escapes every value: a hostile name, interface or error cannot add markup", () => {
    const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>'&`;
    const html = page({ names: new Map([[ALICE, hostile]]), iface: `<b>wg0`, error: `<i>oops</i>` });
    assert.doesNotMatch(html, /<script>|<img|<b>|<i>/);
    assert.ok(html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&amp;"));
    assert.ok(html.includes("&lt;b&gt;wg0"));
  });

  it("escapeHtml leaves no markup character, for any string", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const out = escapeHtml(s);
        assert.doesNotMatch(out, /[<>"']/);
        assert.equal(out.replace(/&(lt|gt|quot|#39|amp);/g, (_, e: string) => ({ lt: "<", gt: ">", quot: '"', "#39": "'", amp: "&" })[e] as string), s);
      }),
    );
  });

  it("shows at most maxRows rows and says how many there are", () => {
    const peers = Array.from({ length: 30 }, (_, i) => peer(key(i + 20)));
    const html = renderStatusPage({ iface: "wg0", publicKey: null, peers, names: new Map(), nowMs: NOW, error: null, watchers: 0, maxRows: 10 });
    assert.equal(rows(html).length, 10);
    assert.match(html, /Showing 10 of 30 peers/);
  });

  it("an empty interface says so", () => {
    const html = renderStatusPage({ iface: "wg0", publicKey: key(9), peers: [], names: new Map(), nowMs: NOW, error: null, watchers: 0 });
    assert.match(html, /No peers on this interface yet/);
  });

  it("the CSP allows exactly the page's inline style and nothing else", () => {
    assert.match(STATUS_PAGE_CSP, /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/);
    assert.doesNotMatch(page(), /<script/);
  });
});

describe("formatting", () => {
  const ages: Array<[number, string]> = [
    [0, "never"],
    [NOW - 500, "just now"],
    [NOW - 59_000, "59 s ago"],
    [NOW - 61_000, "1 min 1 s ago"],
    [NOW - 3_600_000 * 2 - 60_000 * 5, "2 h 5 min ago"],
    [NOW - 86_400_000 * 3 - 3_600_000, "3 d 1 h ago"],
    [NOW + 5_000, "just now"],
  ];
  for (const [then, want] of ages) it(`age ${want}`, () => assert.equal(formatAge(then, NOW), want));
  it("endpoints: IPv6 in brackets, none as null", () => {
    assert.equal(formatEndpoint({ ip: "fd00::1", port: 1 }), "[fd00::1]:1");
    assert.equal(formatEndpoint({ ip: "192.0.2.1", port: 51820 }), "192.0.2.1:51820");
    assert.equal(formatEndpoint(null), null);
  });
});
