/**
 * The registry's request size limit is justified by the largest request a
 * node sends: a Report with MAX_CANDIDATES candidates and MAX_PATHS paths,
 * every field at its longest.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { MAX_CANDIDATES, MAX_PATHS } from "../../src/registry/report.js";
import { MAX_REQUEST_BYTES, SERVER_CHANNEL_OPTIONS } from "../../src/registry/server.js";
import { v1Proto } from "../../src/rpc/proto.js";
import { key } from "../support/keys.js";

const LONGEST_IP = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"; // 45 characters, the longest IPv6 text

it("the largest Report a node may send fits in the registry's request limit", () => {
  const endpoint = { ip: LONGEST_IP, port: 65535 };
  const report = {
    publicKey: key(1),
    candidates: Array.from({ length: MAX_CANDIDATES }, () => endpoint),
    paths: Array.from({ length: MAX_PATHS }, (_, i) => ({
      peerPublicKey: key(i + 2),
      kind: "PATH_KIND_RELAYED" as const,
      sinceUnixMs: Number.MAX_SAFE_INTEGER,
      endpoint,
      rttMs: 0xffffffff,
    })),
  };
  const bytes = v1Proto.Registry.service.Report.requestSerialize(report).length;
  assert.equal(SERVER_CHANNEL_OPTIONS["grpc.max_receive_message_length"], MAX_REQUEST_BYTES);
  assert.ok(bytes <= MAX_REQUEST_BYTES, `the largest Report is ${bytes} bytes; the limit ${MAX_REQUEST_BYTES}`);
  // ... and the limit is not far above it: no room for much else.
  assert.ok(bytes > MAX_REQUEST_BYTES / 2, `the largest Report is ${bytes} bytes, under half the limit ${MAX_REQUEST_BYTES}`);
});
