// Generates src/gen/ from proto/: TypeScript types (proto-loader-gen-types) and
// one JSON descriptor that the program loads at run time, so the bundle needs
// no .proto files beside it. Run `npm run gen` after changing a .proto;
// test/unit/proto-gen.test.ts fails when src/gen is stale.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

export const PROTO_FILES = ["wgSvc.proto", "wormhole/v1/registry.proto"];
export const LOADER_FLAGS = ["--longs=Number", "--enums=String", "--defaults", "--oneofs"];

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export function descriptorJson() {
  const pb = new protobuf.Root();
  pb.resolvePath = (_origin, target) => join(root, "proto", target);
  pb.loadSync(PROTO_FILES, { keepCase: false });
  return `${JSON.stringify(pb.toJSON(), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = join(root, "src", "gen");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  execFileSync(
    join(root, "node_modules", ".bin", "proto-loader-gen-types"),
    [...LOADER_FLAGS, "--grpcLib=@grpc/grpc-js", "-I", join(root, "proto"), "-O", out, ...PROTO_FILES],
    { stdio: "inherit" },
  );
  writeFileSync(join(out, "descriptor.json"), descriptorJson());
  // NodeNext resolution wants explicit .js suffixes on relative imports.
  for (const file of readdirSync(out, { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(".ts")) continue;
    const path = join(out, file);
    writeFileSync(
      path,
      readFileSync(path, "utf8")
        .replace(/from '(\.{1,2}\/[^']+)'/g, "from '$1.js'")
        .replaceAll(`${root}/`, ""),
    );
  }
  console.log(`generated ${out}`);
}
