/** Generators shared by the fuzz targets (keys, addresses, ways to damage text and bytes), and the checks they share. */
import assert from "node:assert/strict";
import { canonicalCidr, checkEndpoint } from "../src/wg/endpoint.js";
import { isKey } from "../src/wg/keys.js";
import type { WgDevice } from "../src/wg/types.js";
import fc from "fast-check";

/** 32 random bytes. */
export const rawKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
export const hexKey = rawKey.map((b) => b.toString("hex"));
export const base64Key = rawKey.map((b) => b.toString("base64"));

/** Keys that almost are: cut, padded, wrong last character, hex, spaces. */
export const nearKey = fc.oneof(
  base64Key.map((k) => k.slice(0, 43)),
  base64Key.map((k) => `${k.slice(0, 42)}B=`),
  base64Key.map((k) => ` ${k}`),
  base64Key.map((k) => `${k}\n`),
  base64Key.map((k) => k.replace(/=$/, "")),
  base64Key.map((k) => k.replace(/[+/]/g, "-")),
  hexKey,
  fc.string({ maxLength: 50 }),
);

const octet = fc.nat(255);
export const ipv4 = fc.tuple(octet, octet, octet, octet).map((p) => p.join("."));
/** IPv4 in odd spellings: leading zeros, too few or many parts, out of range. */
export const oddIpv4 = fc.oneof(
  fc.tuple(octet, octet, octet, octet).map((p) => p.map((x) => x.toString().padStart(3, "0")).join(".")),
  fc.array(fc.nat(999), { minLength: 1, maxLength: 6 }).map((p) => p.join(".")),
  fc.tuple(octet, octet, octet, octet).map((p) => `0x${p.map((x) => x.toString(16).padStart(2, "0")).join("")}`),
);
const group = fc.nat(0xffff).map((g) => g.toString(16));
export const ipv6 = fc.oneof(
  fc.array(group, { minLength: 8, maxLength: 8 }).map((g) => g.join(":")),
  fc.tuple(fc.array(group, { maxLength: 3 }), fc.array(group, { maxLength: 3 })).map(([a, b]) => `${a.join(":")}::${b.join(":")}`),
  fc.ipV6(),
  ipv4.map((v4) => `::ffff:${v4}`),
  ipv4.map((v4) => `64:ff9b::${v4}`),
);
/** IPv6 in odd spellings: upper case, zeros kept, zones, too many groups, two "::". */
export const oddIpv6 = fc.oneof(
  ipv6.map((a) => a.toUpperCase()),
  fc.array(group.map((g) => g.padStart(4, "0")), { minLength: 8, maxLength: 8 }).map((g) => g.join(":")),
  fc.tuple(ipv6, fc.stringMatching(/^[A-Za-z0-9_.%-]{0,20}$/)).map(([a, z]) => `${a}%${z}`),
  fc.array(group, { minLength: 9, maxLength: 10 }).map((g) => g.join(":")),
  fc.tuple(group, group, group).map(([a, b, c]) => `${a}::${b}::${c}`),
  fc.stringMatching(/^[0-9a-fA-F:.%]{0,45}$/),
);
/** Addresses the node must never point a peer at. */
export const forbiddenIp = fc.oneof(
  fc.constantFrom("127.0.0.1", "::1", "0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1", "169.254.169.254", "fe80::1", "::ffff:127.0.0.1"),
  fc.tuple(octet, octet, octet).map(([a, b, c]) => `127.${a}.${b}.${c}`),
  fc.tuple(fc.integer({ min: 224, max: 239 }), octet, octet, octet).map((p) => p.join(".")),
  fc.tuple(octet, octet, octet).map(([a, b, c]) => `0.${a}.${b}.${c}`),
  fc.tuple(octet, octet).map(([a, b]) => `169.254.${a}.${b}`),
  group.map((g) => `fe80::${g}`),
  group.map((g) => `ff0e::${g}`),
);
export const anyIp = fc.oneof(ipv4, ipv6, oddIpv4, oddIpv6, forbiddenIp, fc.string({ maxLength: 60 }));
export const port = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, 65536, 70000, -1, 4294967295, 2 ** 53, 1.5, NaN));
export const goodPort = fc.integer({ min: 1, max: 65535 });

/** A prefix such as "10.0.0.0/8" or "fd00::/64", sometimes wrong. */
export const cidr = fc.oneof(
  fc.tuple(ipv4, fc.nat(32)).map(([a, l]) => `${a}/${l}`),
  fc.tuple(ipv6, fc.nat(128)).map(([a, l]) => `${a}/${l}`),
  fc.tuple(anyIp, fc.integer({ min: -1, max: 200 })).map(([a, l]) => `${a}/${l}`),
);

/** Damages text: cut, insert, replace a stretch, duplicate or drop a line, swap two lines, CRLF. */
export function damagedText(good: fc.Arbitrary<string>, junk: fc.Arbitrary<string> = fc.string({ maxLength: 20 })): fc.Arbitrary<string> {
  return fc.tuple(good, fc.nat(), fc.nat(), junk, fc.nat(7)).map(([text, a, b, j, how]) => {
    const i = text.length === 0 ? 0 : a % text.length;
    const lines = text.split("\n");
    const li = lines.length === 0 ? 0 : a % lines.length;
    const lj = lines.length === 0 ? 0 : b % lines.length;
    switch (how) {
      case 0:
        return text;
      case 1:
        return text.slice(0, i);
      case 2:
        return text.slice(0, i) + j + text.slice(i);
      case 3:
        return text.slice(0, i) + j + text.slice(i + (b % 20));
      case 4:
        return [...lines.slice(0, li + 1), lines[li] ?? "", ...lines.slice(li + 1)].join("\n");
      case 5:
        return [...lines.slice(0, li), ...lines.slice(li + 1)].join("\n");
      case 6: {
        const copy = [...lines];
        [copy[li], copy[lj]] = [copy[lj] ?? "", copy[li] ?? ""];
        return copy.join("\n");
      }
      default:
        return text.replace(/\n/g, "\r\n");
    }
  });
}

/** Damages bytes: cut, flip, insert, overwrite. */
export function damagedBytes(good: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Buffer> {
  return fc.tuple(good, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.nat(4)).map(([bytes, at, junk, how]) => {
    const b = Buffer.from(bytes);
    const i = b.length === 0 ? 0 : at % b.length;
    switch (how) {
      case 0:
        return b;
      case 1:
        return b.subarray(0, i);
      case 2: {
        const c = Buffer.from(b);
        if (c.length > 0) c[i] = (c[i] as number) ^ (junk[0] as number);
        return c;
      }
      case 3:
        return Buffer.concat([b.subarray(0, i), junk, b.subarray(i)]);
      default:
        return Buffer.concat([b.subarray(0, i), junk, b.subarray(i + junk.length)]);
    }
  });
}

/** Every spelling of a secret that must never show: hex (both cases), base64, and 16-character pieces of them. */
export function secretForms(hex: string): string[] {
  const b64 = Buffer.from(hex, "hex").toString("base64");
  const forms = [hex, hex.toUpperCase(), b64];
  for (const f of [hex, b64]) for (let i = 0; i + 16 <= f.length; i += 8) forms.push(f.slice(i, i + 16));
  return forms;
}

/** The first form of any of `hexSecrets` that `text` holds, or null. */
export function leakedSecret(text: string, ...hexSecrets: string[]): string | null {
  for (const h of hexSecrets) for (const f of secretForms(h)) if (text.includes(f)) return f;
  return null;
}

/** What any parser's WgDevice must satisfy: valid keys, canonical endpoints and prefixes, sane numbers. */
export function checkParsedDevice(d: WgDevice, type: WgDevice["type"]): void {
  assert.equal(d.type, type);
  assert.ok(d.publicKey === "" || isKey(d.publicKey));
  assert.ok(Number.isInteger(d.listenPort) && d.listenPort >= 0 && d.listenPort <= 65535);
  for (const p of d.peers) {
    assert.ok(isKey(p.publicKey));
    if (p.endpoint) assert.deepEqual(checkEndpoint(p.endpoint), p.endpoint, "endpoint not canonical");
    for (const c of p.allowedIps) assert.equal(canonicalCidr(c), c, "allowed IP not canonical");
    for (const n of [p.lastHandshakeMs, p.rxBytes, p.txBytes]) assert.ok(Number.isFinite(n) && n >= 0);
    assert.ok(Number.isSafeInteger(p.lastHandshakeMs));
    assert.ok(Number.isInteger(p.persistentKeepaliveSec) && p.persistentKeepaliveSec >= 0 && p.persistentKeepaliveSec <= 65535);
  }
}
