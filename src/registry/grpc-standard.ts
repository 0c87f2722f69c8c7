/**
 * The standard gRPC services generic tools expect, on the registry's port:
 * health checking (`grpc.health.v1.Health`: grpc_health_probe, Kubernetes
 * gRPC probes, load balancers) and server reflection
 * (`grpc.reflection.v1` and `v1alpha`: grpcurl, grpcui, Postman).
 *
 * Why not the packages' own `addToServer`: grpc-health-check and
 * @grpc/reflection both read their .proto files at run time from paths
 * relative to their own source (`__dirname/../../proto`), which the
 * single-file bundle (`./wormhole`) does not carry: grpc-health-check even does
 * it on import, so importing it would break every subcommand. So the service
 * definitions come from grpc-standard.json, the JSON descriptor of the
 * packages' own .proto files (a test checks it matches them), and both
 * services are implemented here, small as they are:
 *  - reflection (ReflectionIndex) indexes the file descriptors proto-loader
 *    makes of wormhole's own protos and the standard ones, read with
 *    protobufjs' descriptor types, and answers with their bytes; it behaves
 *    as @grpc/reflection 1.x's implementation (the tests drive it with that
 *    package's own .proto);
 *  - health is the small status map below, which behaves as grpc-health-check
 *    2.x's HealthImplementation (a test drives it with that package's client
 *    definition).
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON, type PackageDefinition } from "@grpc/proto-loader";
import descriptorTypes from "protobufjs/ext/descriptor/index.js";
import ourDescriptor from "../gen/descriptor.json" with { type: "json" };
import standardDescriptor from "./grpc-standard.json" with { type: "json" };

type JsonDescriptor = Parameters<typeof fromJSON>[0];

/** As grpc-health-check loads health.proto. */
const HEALTH_LOADER = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;
/** As @grpc/reflection loads reflection.proto: ReflectionIndex reads and writes messages in this shape. */
const REFLECTION_LOADER = { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true } as const;

const healthDefinition = fromJSON(standardDescriptor as unknown as JsonDescriptor, HEALTH_LOADER);
const reflectionDefinition = fromJSON(standardDescriptor as unknown as JsonDescriptor, REFLECTION_LOADER);

export const HEALTH_SERVICE = "grpc.health.v1.Health";
export const REFLECTION_SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

function serviceDefinition(definition: PackageDefinition, name: string): grpc.ServiceDefinition {
  const service = definition[name];
  if (!service || "format" in service) throw new Error(`no service ${name} in grpc-standard.json`);
  return service as grpc.ServiceDefinition;
}

export type ServingStatus = "SERVING" | "NOT_SERVING";
type WatchedStatus = ServingStatus | "SERVICE_UNKNOWN";

/**
 * Longest service name a Check or Watch may ask about: a fully qualified
 * gRPC service name is far shorter. A longer one is refused at once, so a
 * Watch never holds more than this of its request (the request itself is
 * bounded by the server's receive limit, and freed when the call ends).
 */
export const MAX_HEALTH_SERVICE_NAME = 256;

function nameProblem(service: string): Partial<grpc.StatusObject> | null {
  if (service.length <= MAX_HEALTH_SERVICE_NAME) return null;
  return { code: grpc.status.INVALID_ARGUMENT, details: `service name of ${service.length} characters; at most ${MAX_HEALTH_SERVICE_NAME}` };
}

/** Most statuses a List call returns, as grpc-health-check limits it. */
const LIST_LIMIT = 100;

/**
 * grpc.health.v1.Health over a map of service name → status ("" is the
 * server as a whole). Check of an unknown service is NOT_FOUND; Watch of one
 * says SERVICE_UNKNOWN and waits; Watch sends each change once.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<(status: WatchedStatus) => void>>();

  constructor(initial: Readonly<Record<string, ServingStatus>> = {}) {
    for (const [service, status] of Object.entries(initial)) this.statuses.set(service, status);
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Sets a service's status; watchers hear of it only when it changed. */
  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const watcher of this.watchers.get(service) ?? []) watcher(status);
  }

  /** Sets every known service's status at once. */
  setAll(status: ServingStatus): void {
    for (const service of [...this.statuses.keys()]) this.set(service, status);
  }

  /** Open Watch calls (for tests). */
  get watcherCount(): number {
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  addToServer(server: grpc.Server): void {
    server.addService(serviceDefinition(healthDefinition, HEALTH_SERVICE), {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<{ status: string }>) => {
        const problem = nameProblem(call.request.service);
        if (problem) {
          callback(problem);
          return;
        }
        const status = this.statuses.get(call.request.service);
        if (status) callback(null, { status });
        else callback({ code: grpc.status.NOT_FOUND, details: `health status unknown for service ${JSON.stringify(call.request.service)}` });
      },
      Watch: (call: grpc.ServerWritableStream<{ service: string }, { status: string }>) => {
        const service = call.request.service;
        const problem = nameProblem(service);
        if (problem) {
          call.emit("error", { ...problem, metadata: new grpc.Metadata() });
          return;
        }
        const send = (status: WatchedStatus) => call.write({ status });
        let set = this.watchers.get(service);
        if (!set) this.watchers.set(service, (set = new Set()));
        set.add(send);
        const leave = () => {
          const s = this.watchers.get(service);
          s?.delete(send);
          if (s?.size === 0) this.watchers.delete(service);
        };
        call.on("cancelled", leave);
        call.on("close", leave);
        call.on("error", leave);
        send(this.statuses.get(service) ?? "SERVICE_UNKNOWN");
      },
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<{ statuses: Record<string, { status: string }> }>) => {
        if (this.statuses.size > LIST_LIMIT) {
          callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${LIST_LIMIT} services` });
          return;
        }
        const statuses: Record<string, { status: string }> = {};
        for (const [service, status] of this.statuses) statuses[service] = { status };
        callback(null, { statuses });
      },
    });
  }
}

/** A ServerReflectionRequest (v1 and v1alpha alike) as REFLECTION_LOADER decodes it. */
export interface ReflectionRequest {
  readonly host?: string;
  /** Which of the fields below the request sets (its oneof). */
  readonly messageRequest?: string;
  readonly fileByFilename?: string;
  readonly fileContainingSymbol?: string;
  readonly fileContainingExtension?: { readonly containingType?: string; readonly extensionNumber?: number } | null;
  readonly allExtensionNumbersOfType?: string;
  readonly listServices?: string;
}

/** What answers reflection requests: a ReflectionIndex, or a test's wrapper of one. */
export interface ReflectionAnswerer {
  handleServerReflectionRequest(message: ReflectionRequest): unknown;
}

/** The parts of google.protobuf.FileDescriptorProto (as protobufjs decodes it) that reflection looks at. */
interface FieldProto {
  readonly name?: string;
  readonly number?: number;
  readonly typeName?: string;
  readonly extendee?: string;
}
interface MessageProto {
  readonly name?: string;
  readonly field?: readonly FieldProto[];
  readonly extension?: readonly FieldProto[];
  readonly nestedType?: readonly MessageProto[];
  readonly enumType?: readonly EnumProto[];
  readonly oneofDecl?: readonly { readonly name?: string }[];
}
interface EnumProto {
  readonly name?: string;
  readonly value?: readonly { readonly name?: string }[];
}
interface FileProto {
  readonly name?: string;
  readonly package?: string;
  readonly dependency?: readonly string[];
  readonly messageType?: readonly MessageProto[];
  readonly enumType?: readonly EnumProto[];
  readonly service?: readonly { readonly name?: string; readonly method?: readonly { readonly name?: string; readonly inputType?: string; readonly outputType?: string }[] }[];
  readonly extension?: readonly FieldProto[];
}

class NotFound extends Error {}

/**
 * Server reflection over a package definition's file descriptors: which
 * services there are, and the file (with the files it needs) that defines a
 * symbol, has a name or extends a type. Built once; each answer is a lookup.
 */
export class ReflectionIndex implements ReflectionAnswerer {
  /** File name → its encoded FileDescriptorProto, as proto-loader made it. */
  readonly #bytes = new Map<string, Uint8Array>();
  /** File name → the files its types refer to. */
  readonly #needs = new Map<string, Set<string>>();
  /** Fully qualified name (no leading dot) → the file that defines it. */
  readonly #symbols = new Map<string, string>();
  readonly #services: string[] = [];
  /** Extended type → extension field number → file. */
  readonly #extensions = new Map<string, Map<number, string>>();

  constructor(definition: PackageDefinition) {
    const files = new Map<string, FileProto>();
    for (const entry of Object.values(definition)) {
      const encoded = "fileDescriptorProtos" in entry ? (entry.fileDescriptorProtos as readonly Uint8Array[]) : [];
      for (const bytes of encoded) {
        const file = descriptorTypes.FileDescriptorProto.decode(bytes) as unknown as FileProto;
        if (file.name === undefined || files.has(file.name)) continue;
        files.set(file.name, file);
        this.#bytes.set(file.name, bytes);
      }
    }
    const refs = new Map<string, string[]>();
    for (const [name, file] of files) refs.set(name, this.#index(name, file));
    for (const [name, file] of files) {
      const needs = new Set((file.dependency ?? []).filter((d) => files.has(d)));
      for (const ref of refs.get(name) ?? []) {
        const other = this.#symbols.get(ref.replace(/^\./, ""));
        if (other !== undefined && other !== name) needs.add(other);
      }
      this.#needs.set(name, needs);
    }
  }

  /** Records every name `file` defines; returns the type names it refers to. */
  #index(fileName: string, file: FileProto): string[] {
    const refs: string[] = [];
    const define = (fqn: string) => this.#symbols.set(fqn, fileName);
    const join = (scope: string, name: string | undefined) => (scope ? `${scope}.${name ?? ""}` : (name ?? ""));
    const extension = (scope: string, ext: FieldProto) => {
      define(join(scope, ext.name));
      if (ext.typeName) refs.push(ext.typeName);
      const extended = (ext.extendee ?? "").replace(/^\./, "");
      const numbers = this.#extensions.get(extended) ?? new Map<number, string>();
      numbers.set(ext.number ?? -1, fileName);
      this.#extensions.set(extended, numbers);
    };
    const enumType = (scope: string, e: EnumProto) => {
      const fqn = join(scope, e.name);
      define(fqn);
      for (const v of e.value ?? []) define(join(fqn, v.name));
    };
    const message = (scope: string, m: MessageProto) => {
      const fqn = join(scope, m.name);
      define(fqn);
      for (const f of m.field ?? []) {
        define(join(fqn, f.name));
        if (f.typeName) refs.push(f.typeName);
      }
      for (const o of m.oneofDecl ?? []) define(join(fqn, o.name));
      for (const n of m.nestedType ?? []) message(fqn, n);
      for (const e of m.enumType ?? []) enumType(fqn, e);
      for (const x of m.extension ?? []) extension(fqn, x);
    };
    const pkg = file.package ?? "";
    for (const e of file.enumType ?? []) enumType(pkg, e);
    for (const m of file.messageType ?? []) message(pkg, m);
    for (const x of file.extension ?? []) extension(pkg, x);
    for (const svc of file.service ?? []) {
      const fqn = join(pkg, svc.name);
      define(fqn);
      this.#services.push(fqn);
      for (const method of svc.method ?? []) {
        define(join(fqn, method.name));
        refs.push(method.inputType ?? "", method.outputType ?? "");
      }
    }
    return refs.filter(Boolean);
  }

  /** The file, then every file it needs, directly or not. */
  #withNeeds(fileName: string): { fileDescriptorProto: Uint8Array[] } {
    const order = [fileName];
    for (let i = 0; i < order.length; i++) {
      for (const need of this.#needs.get(order[i] as string) ?? []) if (!order.includes(need)) order.push(need);
    }
    return { fileDescriptorProto: order.map((f) => this.#bytes.get(f) as Uint8Array) };
  }

  #file(fileName: string | undefined, what: string): { fileDescriptorProto: Uint8Array[] } {
    if (fileName === undefined || !this.#bytes.has(fileName)) throw new NotFound(what);
    return this.#withNeeds(fileName);
  }

  /** One ServerReflectionResponse: the answer, or an errorResponse (NOT_FOUND, UNIMPLEMENTED). */
  handleServerReflectionRequest(message: ReflectionRequest): unknown {
    const response = { validHost: message.host, originalRequest: message };
    try {
      switch (message.messageRequest) {
        case "listServices":
          return { ...response, listServicesResponse: { service: this.#services.map((name) => ({ name })) } };
        case "fileByFilename":
          return { ...response, fileDescriptorResponse: this.#file(message.fileByFilename, `Proto file not found: ${message.fileByFilename}`) };
        case "fileContainingSymbol": {
          const symbol = message.fileContainingSymbol ?? "";
          return { ...response, fileDescriptorResponse: this.#file(this.#symbols.get(symbol), `Symbol not found: ${symbol}`) };
        }
        case "fileContainingExtension": {
          const type = message.fileContainingExtension?.containingType ?? "";
          const number = message.fileContainingExtension?.extensionNumber ?? -1;
          return { ...response, fileDescriptorResponse: this.#file(this.#extensions.get(type)?.get(number), `Extension not found for symbol ${type} at field ${number}`) };
        }
        case "allExtensionNumbersOfType": {
          const type = message.allExtensionNumbersOfType ?? "";
          const numbers = this.#extensions.get(type);
          if (!numbers) throw new NotFound(`Extensions not found for symbol ${type}`);
          return { ...response, allExtensionNumbersResponse: { baseTypeName: type, extensionNumber: [...numbers.keys()] } };
        }
        default:
          return { ...response, errorResponse: { errorCode: grpc.status.UNIMPLEMENTED, errorMessage: `Unimplemented method for request: ${message.messageRequest}` } };
      }
    } catch (err) {
      // Only NotFound is expected; anything else is answered too: a stream handler must never throw.
      const notFound = err instanceof NotFound;
      return {
        ...response,
        errorResponse: { errorCode: notFound ? grpc.status.NOT_FOUND : grpc.status.UNKNOWN, errorMessage: notFound ? err.message : "Failed to process gRPC reflection request" },
      };
    }
  }
}

/** Reflection over wormhole's own services and the standard ones. */
export function defaultReflection(): ReflectionAnswerer {
  const described: PackageDefinition = {
    ...fromJSON(ourDescriptor as unknown as JsonDescriptor, REFLECTION_LOADER),
    ...reflectionDefinition,
  };
  return new ReflectionIndex(described);
}

/**
 * One ServerReflectionInfo stream: each request answered in turn, and the
 * next one read only once HTTP/2 has taken the previous reply. A client that
 * sends requests and never reads the replies therefore holds one reply and
 * the few requests grpc-js has read ahead (its stream's buffer of 16), then
 * HTTP/2 flow control stops its sending. (The package's own handler writes a
 * reply per request without waiting, so an unread stream grew without bound.)
 */
export function reflectionStreamHandler(answerer: ReflectionAnswerer): (stream: grpc.ServerDuplexStream<ReflectionRequest, unknown>) => void {
  return (stream) => {
    stream.on("end", () => stream.end());
    stream.on("data", (message: ReflectionRequest) => {
      stream.pause();
      stream.write(answerer.handleServerReflectionRequest(message), () => stream.resume());
    });
  };
}

/**
 * Adds server reflection for wormhole's own services (wgSvc.proto.Registry,
 * wormhole.v1.Registry) and the standard ones, at v1 and v1alpha.
 */
export function addReflection(server: grpc.Server, answerer: ReflectionAnswerer = defaultReflection()): void {
  const handler = reflectionStreamHandler(answerer);
  for (const name of REFLECTION_SERVICES) {
    server.addService(serviceDefinition(reflectionDefinition, name), { ServerReflectionInfo: handler });
  }
}
