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
 * packages' own .proto files (a test checks it matches them), and:
 *  - reflection answers with @grpc/reflection's implementation (the part that
 *    indexes and encodes descriptors, which is most of the work);
 *  - health is the small status map below, which behaves as grpc-health-check
 *    2.x's HealthImplementation (a test drives it with that package's client
 *    definition).
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON, type PackageDefinition } from "@grpc/proto-loader";
// The implementation class, not the package's facade: the facade's addToServer reads files.
import { ReflectionV1Implementation } from "@grpc/reflection/build/src/implementations/reflection-v1.js";
import ourDescriptor from "../gen/descriptor.json" with { type: "json" };
import standardDescriptor from "./grpc-standard.json" with { type: "json" };

type JsonDescriptor = Parameters<typeof fromJSON>[0];

/** As grpc-health-check loads health.proto. */
const HEALTH_LOADER = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;
/** Must match @grpc/reflection's PROTO_LOADER_OPTS: its implementation reads and writes messages in this shape. */
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

/** What answers reflection requests: @grpc/reflection's implementation, or a test's wrapper of it. */
export interface ReflectionAnswerer {
  handleServerReflectionRequest(message: ReflectionRequest): unknown;
}
type ReflectionRequest = Parameters<ReflectionV1Implementation["handleServerReflectionRequest"]>[0];

/** @grpc/reflection's implementation over wormhole's own services and the standard ones. */
export function defaultReflection(): ReflectionAnswerer {
  const described: PackageDefinition = {
    ...fromJSON(ourDescriptor as unknown as JsonDescriptor, REFLECTION_LOADER),
    ...reflectionDefinition,
  };
  return new ReflectionV1Implementation(described);
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
