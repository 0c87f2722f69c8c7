/**
 * Attacks on the registry from the review in issue 12, each bounded, over real
 * gRPC (or HTTP) on 127.0.0.1. Each test fails on the code before its fix.
 */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { addReflection, defaultReflection, type ReflectionAnswerer } from "../../src/registry/grpc-standard.js";
import { bindServer, SERVER_CHANNEL_OPTIONS } from "../../src/registry/server.js";
import { waitFor } from "../support/wait.js";

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A gRPC message frame: no compression, 4-byte length, the bytes. */
function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** A raw HTTP/2 call that advertises a zero window: the server can send it nothing (no reply is ever read). */
function unreadCall(port: number, path: string, headers: http2.OutgoingHttpHeaders = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 0 } });
  session.on("error", () => {});
  const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
  req.on("error", () => {});
  const close = () => {
    req.close(http2.constants.NGHTTP2_CANCEL);
    session.destroy();
  };
  cleanups.push(close);
  return { session, req, close };
}

describe("server reflection against a client that never reads", () => {
  it("answers one request at a time: a stream that does not read its replies stops being read", async () => {
    const real = defaultReflection();
    let answered = 0;
    const counting: ReflectionAnswerer = {
      handleServerReflectionRequest(m) {
        answered++;
        return real.handleServerReflectionRequest(m);
      },
    };
    const server = new grpc.Server(SERVER_CHANNEL_OPTIONS);
    addReflection(server, counting);
    const port = await bindServer(server, "127.0.0.1:0");
    cleanups.push(() => server.forceShutdown());

    // 10,000 list_services requests (field 7, empty): 70 kB, more than one HTTP/2 window.
    const { req } = unreadCall(port, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    const one = frame(Buffer.from([0x3a, 0x00]));
    const sent = 10_000;
    req.write(Buffer.concat(Array.from({ length: sent }, () => one)));
    // The registry stops taking the client's bytes: they stay in the client's buffers.
    await waitFor("the client's requests held back by flow control", () => answered >= 1 && req.bufferSize > 0);
    assert.ok(answered <= 1, `${answered} replies made for a client that reads none (at most one waits)`);
  });
});
