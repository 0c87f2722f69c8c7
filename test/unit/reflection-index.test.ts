/**
 * The registry's server reflection index (src/registry/grpc-standard.ts) on
 * descriptors made here: files that need other files, extensions, and the
 * error answers. The integration tests (http-ops) call it over gRPC.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import descriptorTypes from "protobufjs/ext/descriptor/index.js";
import { defaultReflection, ReflectionIndex } from "../../src/registry/grpc-standard.js";

const PROTO = `
syntax = "proto2";
package shop.v1;
import "money.proto";
message Order { optional money.v1.Amount total = 1; extensions 100 to 199; }
service Shop { rpc Buy (Order) returns (money.v1.Amount); }
extend Order { optional string note = 150; }
`;
const MONEY = `
syntax = "proto2";
package money.v1;
message Amount { optional int64 cents = 1; enum Currency { EUR = 1; } optional Currency currency = 2; }
`;

function index(): ReflectionIndex {
  const root = new protobuf.Root();
  protobuf.parse(MONEY, root);
  protobuf.parse(PROTO, root);
  return new ReflectionIndex(fromJSON(root.toJSON() as Parameters<typeof fromJSON>[0], { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true }));
}

type Reply = {
  fileDescriptorResponse?: { fileDescriptorProto: Uint8Array[] };
  listServicesResponse?: { service: Array<{ name: string }> };
  allExtensionNumbersResponse?: { baseTypeName: string; extensionNumber: number[] };
  errorResponse?: { errorCode: number; errorMessage: string };
  validHost?: string;
};

function packages(reply: Reply): string[] {
  assert.ok(reply.fileDescriptorResponse, JSON.stringify(reply.errorResponse));
  return reply.fileDescriptorResponse.fileDescriptorProto.map((b) => (descriptorTypes.FileDescriptorProto.decode(b) as unknown as { package: string }).package);
}

describe("ReflectionIndex", () => {
  const reflection = index();
  const ask = (request: Record<string, unknown>) => reflection.handleServerReflectionRequest(request) as Reply;

  it("lists the services", () => {
    assert.deepEqual(ask({ messageRequest: "listServices", listServices: "*" }).listServicesResponse, { service: [{ name: "shop.v1.Shop" }] });
  });

  it("a symbol's file comes first, then the files its types need", () => {
    for (const symbol of ["shop.v1.Shop", "shop.v1.Shop.Buy", "shop.v1.Order", "shop.v1.Order.total"]) {
      assert.deepEqual(packages(ask({ messageRequest: "fileContainingSymbol", fileContainingSymbol: symbol })), ["shop.v1", "money.v1"], symbol);
    }
    assert.deepEqual(packages(ask({ messageRequest: "fileContainingSymbol", fileContainingSymbol: "money.v1.Amount.Currency.EUR" })), ["money.v1"]);
  });

  it("files by name, with what they need", () => {
    assert.deepEqual(packages(ask({ messageRequest: "fileByFilename", fileByFilename: "shop_v1.proto" })), ["shop.v1", "money.v1"]);
    assert.deepEqual(packages(ask({ messageRequest: "fileByFilename", fileByFilename: "money_v1.proto" })), ["money.v1"]);
  });

  it("extensions of a type, and the file that holds one", () => {
    assert.deepEqual(ask({ messageRequest: "allExtensionNumbersOfType", allExtensionNumbersOfType: "shop.v1.Order" }).allExtensionNumbersResponse, {
      baseTypeName: "shop.v1.Order",
      extensionNumber: [150],
    });
    assert.deepEqual(packages(ask({ messageRequest: "fileContainingExtension", fileContainingExtension: { containingType: "shop.v1.Order", extensionNumber: 150 } })), ["shop.v1", "money.v1"]);
  });

  it("what is not there is NOT_FOUND, naming it; an unknown request is UNIMPLEMENTED; the host is echoed", () => {
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ messageRequest: "fileContainingSymbol", fileContainingSymbol: "shop.v1.Nope" }, grpc.status.NOT_FOUND, "shop.v1.Nope"],
      [{ messageRequest: "fileByFilename", fileByFilename: "nope.proto" }, grpc.status.NOT_FOUND, "nope.proto"],
      [{ messageRequest: "fileContainingExtension", fileContainingExtension: { containingType: "shop.v1.Order", extensionNumber: 151 } }, grpc.status.NOT_FOUND, "151"],
      [{ messageRequest: "allExtensionNumbersOfType", allExtensionNumbersOfType: "money.v1.Amount" }, grpc.status.NOT_FOUND, "money.v1.Amount"],
      [{ host: "h" }, grpc.status.UNIMPLEMENTED, "undefined"],
    ];
    for (const [request, code, named] of cases) {
      const reply = ask(request);
      assert.equal(reply.errorResponse?.errorCode, code, JSON.stringify(request));
      assert.ok(reply.errorResponse?.errorMessage.includes(named), reply.errorResponse?.errorMessage);
    }
    assert.equal(ask({ host: "h", messageRequest: "listServices" }).validHost, "h");
  });

  it("the registry's own index describes wormhole's services and the standard ones", () => {
    const names = (defaultReflection().handleServerReflectionRequest({ messageRequest: "listServices" }) as Reply).listServicesResponse?.service.map((s) => s.name);
    assert.deepEqual(names?.sort(), ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "wgSvc.proto.Registry", "wormhole.v1.Registry"]);
  });
});
