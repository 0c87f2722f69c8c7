/** The seed's HTTP watch (-A, -w): its settings, and the pure steps from a request to a reply. Table-tested. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeRegistry, parseConfig, registryFromEnv, type Layer, type RegistryValues } from "../../src/config/index.js";
import {
  FORBIDDEN,
  formatSeedEndpoint,
  localOnly,
  parseSeedRequest,
  requestHasBody,
  seedWatchBody,
  type SeedRequest,
  type SeedView,
} from "../../src/registry/seed-http.js";
import type { PeerMap, RegistryPeer } from "../../src/registry/view.js";
import type { Endpoint } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

const ALICE = key(1);
const BOB = key(2);
const CAROL = key(3);
const REG = "/etc/wormhole/registry.toml";

describe("seed HTTP settings: off unless -A or -w", () => {
  const flags = (values: RegistryValues): Layer<RegistryValues> => ({ source: { kind: "flags" }, values });
  const env = (values: RegistryValues): Layer<RegistryValues> => ({ source: { kind: "env" }, values });
  const file = (values: RegistryValues): Layer<RegistryValues> => ({ source: { kind: "file", path: REG }, values });
  const cases: Array<{ name: string; layers: Layer<RegistryValues>[]; want: ReturnType<typeof mergeRegistry>["seedHttp"] }> = [
    { name: "neither given: nothing listens (the seed listened on :1639)", layers: [], want: null },
    { name: "other settings only: still nothing", layers: [flags({ iface: "wg0", http: { host: "127.0.0.1", port: 9638 } })], want: null },
    { name: "-w alone: the seed's default :1639", layers: [flags({ watchPeerKey: ALICE })], want: { address: { host: null, port: 1639 }, watchPeerKey: ALICE } },
    { name: "-A alone: no watched key", layers: [flags({ addressHttp: { host: "127.0.0.1", port: 8080 } })], want: { address: { host: "127.0.0.1", port: 8080 }, watchPeerKey: null } },
    {
      name: "both, each from its own layer",
      layers: [flags({ watchPeerKey: ALICE }), env({}), file({ addressHttp: { host: "10.200.0.1", port: 1639 } })],
      want: { address: { host: "10.200.0.1", port: 1639 }, watchPeerKey: ALICE },
    },
    {
      name: "a flag beats the environment beats the file",
      layers: [flags({ watchPeerKey: ALICE }), env({ watchPeerKey: BOB, addressHttp: { host: null, port: 2000 } }), file({ watchPeerKey: CAROL, addressHttp: { host: null, port: 3000 } })],
      want: { address: { host: null, port: 2000 }, watchPeerKey: ALICE },
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(mergeRegistry(c.layers).seedHttp, c.want));

  it("comes from WORMHOLE_ADDRESS_HTTP and WORMHOLE_WATCH_PEER_KEY", () => {
    assert.deepEqual(registryFromEnv({ WORMHOLE_ADDRESS_HTTP: "[::1]:1639", WORMHOLE_WATCH_PEER_KEY: ALICE }), {
      addressHttp: { host: "::1", port: 1639 },
      watchPeerKey: ALICE,
    });
  });

  it("comes from address_http and watch_peer_key in [registry]", () => {
    const f = parseConfig(`[registry]\naddress_http = ":1639"\nwatch_peer_key = "${ALICE}"\n`, REG);
    assert.deepEqual(f.registry, { addressHttp: { host: null, port: 1639 }, watchPeerKey: ALICE });
  });

  it("drops spaces around the key, as the seed did", () => {
    assert.equal(registryFromEnv({ WORMHOLE_WATCH_PEER_KEY: ` ${ALICE}\n` }).watchPeerKey, ALICE);
  });

  const bad: Array<{ name: string; env: Record<string, string>; says: RegExp }> = [
    { name: "a key that is not base64", env: { WORMHOLE_WATCH_PEER_KEY: "not-a-key" }, says: /WORMHOLE_WATCH_PEER_KEY `not-a-key' is not a WireGuard public key/ },
    { name: "a key one character short", env: { WORMHOLE_WATCH_PEER_KEY: ALICE.slice(1) }, says: /WORMHOLE_WATCH_PEER_KEY `.{43}' is not a WireGuard public key/ },
    { name: "a hex key", env: { WORMHOLE_WATCH_PEER_KEY: "ab".repeat(32) }, says: /is not a WireGuard public key \(32 bytes of base64/ },
    { name: "an address without a port", env: { WORMHOLE_ADDRESS_HTTP: "localhost" }, says: /WORMHOLE_ADDRESS_HTTP `localhost' is not a listen address such as :1639/ },
    { name: "a port too large", env: { WORMHOLE_ADDRESS_HTTP: ":65536" }, says: /WORMHOLE_ADDRESS_HTTP `:65536' is not a listen address/ },
    { name: "off (give neither instead)", env: { WORMHOLE_ADDRESS_HTTP: "off" }, says: /WORMHOLE_ADDRESS_HTTP `off' is not a listen address/ },
  ];
  for (const c of bad) it(`refuses ${c.name}, naming the variable and quoting the value`, () => assert.throws(() => registryFromEnv(c.env), c.says));

  it("a bad file key names the file and the key", () => {
    assert.throws(() => parseConfig(`[registry]\nwatch_peer_key = "x"\n`, REG), /config \/etc\/wormhole\/registry\.toml: registry\.watch_peer_key `x' is not a WireGuard public key/);
  });
});

describe("parseSeedRequest: the token as the seed's r.FormValue read it", () => {
  const cases: Array<{ name: string; method?: string; url: string; body?: boolean; want: SeedRequest | { status: number } }> = [
    { name: "t=", url: "/?t=s3cret", want: { token: "s3cret" } },
    { name: "token=", url: "/?token=s3cret", want: { token: "s3cret" } },
    { name: "t wins over token", url: "/?token=b&t=a", want: { token: "a" } },
    { name: "an empty t falls back to token", url: "/?t=&token=b", want: { token: "b" } },
    { name: "the first t counts", url: "/?t=a&t=b", want: { token: "a" } },
    { name: "any path (the seed's handler was on /)", url: "/anything/at/all?t=a", want: { token: "a" } },
    { name: "percent- and plus-decoding", url: "/?t=a%2Fb+c", want: { token: "a/b c" } },
    { name: "no query: no token", url: "/", want: { token: null } },
    { name: "empty t and token: no token", url: "/?t=&token=", want: { token: null } },
    { name: "other parameters only: no token", url: "/favicon.ico?x=1", want: { token: null } },
    { name: "HEAD is GET without the body", method: "HEAD", url: "/?t=a", want: { token: "a" } },
    { name: "POST is refused (the seed would read a form body)", method: "POST", url: "/?t=a", want: { status: 405 } },
    { name: "PUT is refused", method: "PUT", url: "/", want: { status: 405 } },
    { name: "no method is refused", method: "", url: "/", want: { status: 405 } },
    { name: "a GET with a body is refused", url: "/?t=a", body: true, want: { status: 413 } },
    { name: "a URL that does not parse", url: "//[bad/?t=a", want: { status: 400 } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = parseSeedRequest(c.method ?? "GET", c.url, c.body ?? false);
      if ("status" in c.want) {
        assert.ok("reply" in got, `expected a reply, got ${JSON.stringify(got)}`);
        assert.equal(got.reply.status, c.want.status);
        assert.match(got.reply.body, new RegExp(`^${c.want.status} .*\\n$`));
      } else {
        assert.deepEqual(got, c.want);
      }
    });
  }

  it("405 says which methods are allowed", () => {
    const got = parseSeedRequest("DELETE", "/", false);
    assert.ok("reply" in got);
    assert.equal(got.reply.headers?.allow, "GET, HEAD");
  });

  it("never throws on junk", () => {
    for (const url of [undefined, "", "*", "?", "%", "/?t=%zz", "/?t=%E0%A4%A", "http://x:99999/?t=a", "/\u0000?t=\u0000", "/?".padEnd(10_000, "&")]) {
      assert.doesNotThrow(() => parseSeedRequest("GET", url, false), String(url));
    }
  });
});

describe("requestHasBody", () => {
  const cases: Array<{ name: string; headers: Record<string, string>; want: boolean }> = [
    { name: "no headers", headers: {}, want: false },
    { name: "content-length 0", headers: { "content-length": "0" }, want: false },
    { name: "content-length 5", headers: { "content-length": "5" }, want: true },
    { name: "chunked", headers: { "transfer-encoding": "chunked" }, want: true },
  ];
  for (const c of cases) it(c.name, () => assert.equal(requestHasBody(c.headers), c.want));
});

function peer(publicKey: string, endpoint: Endpoint | null): RegistryPeer {
  return { publicKey, endpoint, lastHandshakeMs: 0, allowedIps: [], rxBytes: 0, txBytes: 0, endpointRevision: 1 };
}

describe("seedWatchBody: the seed's 200 body", () => {
  const peers: PeerMap = new Map([
    [ALICE, peer(ALICE, { ip: "198.51.100.7", port: 51820 })],
    [BOB, peer(BOB, null)],
    [CAROL, peer(CAROL, { ip: "2001:db8::7", port: 40000 })],
  ]);
  const ok: SeedView = { peers, error: null };
  const cases: Array<{ name: string; view: SeedView; key: string | null; want: string }> = [
    { name: "an IPv4 endpoint: IP:port, no newline", view: ok, key: ALICE, want: "198.51.100.7:51820" },
    { name: "an IPv6 endpoint: bracketed (the seed's 2001:db8::7:40000 could not be split)", view: ok, key: CAROL, want: "[2001:db8::7]:40000" },
    { name: "a peer without an endpoint: not found", view: ok, key: BOB, want: "not found" },
    { name: "a key the interface does not have: not found", view: ok, key: key(42), want: "not found" },
    { name: "no watched key (the seed without -w): not found", view: ok, key: null, want: "not found" },
    { name: "no peers at all: not found", view: { peers: new Map(), error: null }, key: ALICE, want: "not found" },
    {
      name: "the interface cannot be read: Error and the reason quoted, as the seed's %q",
      view: { peers, error: 'cannot read WireGuard interface wg0: no "wg0"' },
      key: ALICE,
      want: 'Error: "cannot read WireGuard interface wg0: no \\"wg0\\""',
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(seedWatchBody(c.view, c.key), c.want));
});

describe("formatSeedEndpoint", () => {
  const cases: Array<{ name: string; endpoint: Endpoint; want: string }> = [
    { name: "IPv4", endpoint: { ip: "203.0.113.1", port: 1 }, want: "203.0.113.1:1" },
    { name: "IPv6", endpoint: { ip: "::1", port: 65535 }, want: "[::1]:65535" },
    { name: "IPv6 with a zone", endpoint: { ip: "fe80::1%eth0", port: 51820 }, want: "[fe80::1%eth0]:51820" },
    { name: "port 0: the address alone, as the seed", endpoint: { ip: "203.0.113.1", port: 0 }, want: "203.0.113.1" },
  ];
  for (const c of cases) it(c.name, () => assert.equal(formatSeedEndpoint(c.endpoint), c.want));
});

describe("the 403 reply is Go's http.Error", () => {
  it("status 403, body `403 Forbidden` and a newline", () => assert.deepEqual(FORBIDDEN, { status: 403, body: "403 Forbidden\n" }));
});

describe("localOnly: whether the token stays off the network", () => {
  const cases: Array<{ name: string; host: string | null; tunnel: string[]; want: boolean }> = [
    { name: "every address", host: null, tunnel: [], want: false },
    { name: "127.0.0.1", host: "127.0.0.1", tunnel: [], want: true },
    { name: "127.0.0.2", host: "127.0.0.2", tunnel: [], want: true },
    { name: "::1", host: "::1", tunnel: [], want: true },
    { name: "localhost", host: "localhost", tunnel: [], want: true },
    { name: "the tunnel address", host: "10.200.0.1", tunnel: ["10.200.0.1", "fd00::1"], want: true },
    { name: "the tunnel address, IPv6 written long", host: "fd00:0::1", tunnel: ["10.200.0.1", "fd00::1"], want: true },
    { name: "a public address", host: "203.0.113.1", tunnel: ["10.200.0.1"], want: false },
    { name: "0.0.0.0", host: "0.0.0.0", tunnel: [], want: false },
    { name: "a host name", host: "registry.example.net", tunnel: [], want: false },
  ];
  for (const c of cases) it(c.name, () => assert.equal(localOnly(c.host, c.tunnel), c.want));
});
