/**
 * Fuzz target: decoding gRPC messages, as the registry decodes requests and as
 * clients decode replies: every method of wgSvc.proto.Registry,
 * wormhole.v1.Registry, grpc.health.v1.Health and grpc.reflection (v1, v1alpha),
 * through the serializers grpc-js is given (proto-loader, with the loader
 * options each service uses), and the node's guarded reply decoders.
 * Inputs: random messages of each type built from the descriptors, encoded and
 * damaged; arbitrary bytes.
 * Checks: a decoder throws only an Error; what decodes encodes again and then
 * decodes to the same value.
 */
import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import fc from "fast-check";
import protobuf from "protobufjs";
import descriptor from "../src/gen/descriptor.json" with { type: "json" };
import { guardedServices } from "../src/node/validate.js";
import standardDescriptor from "../src/registry/grpc-standard.json" with { type: "json" };
import { seedProto, v1Proto } from "../src/rpc/proto.js";
import { damagedBytes } from "./arbitraries.js";
import { main, type FuzzTarget } from "./lib.js";

type Json = Parameters<typeof fromJSON>[0];
/** As src/registry/grpc-standard.ts loads them. */
const health = fromJSON(standardDescriptor as unknown as Json, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const reflection = fromJSON(standardDescriptor as unknown as Json, { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true });

interface Codec {
  readonly name: string;
  /** protobufjs type of the message, to make random ones. */
  readonly type: protobuf.Type;
  readonly decode: (b: Buffer) => unknown;
  readonly encode: ((v: unknown) => Buffer) | null;
}

const roots = [protobuf.Root.fromJSON(descriptor as protobuf.INamespace), protobuf.Root.fromJSON(standardDescriptor as protobuf.INamespace)];
for (const r of roots) r.resolveAll();

function codecs(prefix: string, service: grpc.ServiceDefinition, lookup: protobuf.Service): Codec[] {
  const out: Codec[] = [];
  for (const [name, m] of Object.entries(service)) {
    const method = lookup.methods[name] ?? lookup.methods[name.charAt(0).toUpperCase() + name.slice(1)];
    if (!method) continue;
    const [req, res] = [method.resolvedRequestType, method.resolvedResponseType];
    if (!req || !res) throw new Error(`${prefix}/${name}: types not resolved`);
    out.push({ name: `${prefix}/${name} request`, type: req, decode: m.requestDeserialize, encode: m.requestSerialize as (v: unknown) => Buffer });
    out.push({ name: `${prefix}/${name} reply`, type: res, decode: m.responseDeserialize, encode: m.responseSerialize as (v: unknown) => Buffer });
  }
  return out;
}

const svc = (name: string) => {
  for (const r of roots) {
    try {
      return r.lookupService(name);
    } catch {
      /* the other root */
    }
  }
  throw new Error(`no service ${name}`);
};
const std = (def: ReturnType<typeof fromJSON>, name: string) => def[name] as grpc.ServiceDefinition;

const CODECS: Codec[] = [
  ...codecs("wgSvc.proto.Registry", seedProto.Registry.service, svc("wgSvc.proto.Registry")),
  ...codecs("wormhole.v1.Registry", v1Proto.Registry.service, svc("wormhole.v1.Registry")),
  ...codecs("grpc.health.v1.Health", std(health, "grpc.health.v1.Health"), svc("grpc.health.v1.Health")),
  ...codecs("grpc.reflection.v1.ServerReflection", std(reflection, "grpc.reflection.v1.ServerReflection"), svc("grpc.reflection.v1.ServerReflection")),
  ...codecs("grpc.reflection.v1alpha.ServerReflection", std(reflection, "grpc.reflection.v1alpha.ServerReflection"), svc("grpc.reflection.v1alpha.ServerReflection")),
  // The node's clients: replies checked, then decoded as far as the node reads them (so no round trip).
  ...guarded("wormhole.v1.Registry", guardedServices.v1),
  ...guarded("wgSvc.proto.Registry", guardedServices.seed),
];

function guarded(service: string, definition: grpc.ServiceDefinition): Codec[] {
  return Object.entries(definition).map(([name, m]): Codec => {
    const type = svc(service).methods[name]?.resolvedResponseType;
    if (!type) throw new Error(`${service}/${name}: no reply type`);
    return { name: `node's guarded ${service}/${name} reply`, type, decode: m.responseDeserialize, encode: null };
  });
}

const SCALARS: Record<string, fc.Arbitrary<unknown>> = {
  string: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("", "é\u0000\uffff", "10.0.0.1", "x".repeat(300))),
  bytes: fc.uint8Array({ maxLength: 20 }),
  bool: fc.boolean(),
  int32: fc.integer(),
  sint32: fc.integer(),
  sfixed32: fc.integer(),
  uint32: fc.nat(),
  fixed32: fc.nat(),
  int64: fc.oneof(fc.integer(), fc.constantFrom(-(2 ** 53) + 1, 2 ** 53 - 1)),
  sint64: fc.integer(),
  sfixed64: fc.integer(),
  uint64: fc.oneof(fc.nat(), fc.constant(2 ** 53 - 1)),
  fixed64: fc.nat(),
  double: fc.double(),
  float: fc.float(),
};

/** Random plain objects for `type`, as protobufjs's fromObject takes them. */
function messageOf(type: protobuf.Type, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of type.fieldsArray) {
    let value: fc.Arbitrary<unknown>;
    if (f.resolvedType instanceof protobuf.Type) {
      if (depth >= 3) continue;
      value = messageOf(f.resolvedType, depth + 1);
    } else if (f.resolvedType instanceof protobuf.Enum) {
      value = fc.oneof(fc.constantFrom(...Object.values(f.resolvedType.values)), fc.integer({ min: -1, max: 40 }));
    } else {
      value = SCALARS[f.type] ?? fc.constant(undefined);
    }
    fields[f.name] = f instanceof protobuf.MapField ? fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 3 }) : f.repeated ? fc.array(value, { maxLength: 3 }) : value;
  }
  return fc.record(fields, { requiredKeys: [] });
}

const ARBITRARIES = CODECS.map((c) => messageOf(c.type, 0).map((obj) => Buffer.from(c.type.encode(c.type.fromObject(obj)).finish())));

interface Input {
  readonly codec: number;
  readonly bytes: Buffer;
}

export const target: FuzzTarget<Input> = {
  name: "grpc-decode",
  about: `decoding every gRPC message the registry and node read (${CODECS.length} decoders)`,
  arbitrary: fc.nat(CODECS.length - 1).chain((i) =>
    fc.oneof(
      { weight: 3, arbitrary: damagedBytes(ARBITRARIES[i] as fc.Arbitrary<Buffer>) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)) },
    ).map((bytes): Input => ({ codec: i, bytes })),
  ),
  check({ codec, bytes }) {
    const c = CODECS[codec] as Codec;
    let value: unknown;
    try {
      value = c.decode(bytes);
    } catch (e) {
      assert.ok(e instanceof Error, `${c.name}: the decoder threw ${String(e)}`);
      return;
    }
    if (c.encode === null) return;
    const again = c.decode(c.encode(value));
    assert.deepEqual(again, value, `${c.name}: decode(encode(x)) is not x`);
  },
};

await main(import.meta.url, target);
