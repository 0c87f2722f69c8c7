import { defineConfig } from "tsup";

// One self-contained CommonJS file with every dependency inside: `./wormhole`
// and the npm bin entry both run it with the machine's Node (>= 20).
export default defineConfig({
  entry: { wormhole: "src/cli/main.ts" },
  outDir: "dist",
  format: ["cjs"],
  outExtension: () => ({ js: ".cjs" }),
  platform: "node",
  target: "node20",
  bundle: true,
  noExternal: [/.*/],
  splitting: false,
  sourcemap: false,
  minify: false,
  clean: true,
});
