import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
// @ts-expect-error: a plain .mjs script without types
import { descriptorJson } from "../../scripts/gen-proto.mjs";

it("src/gen/descriptor.json matches proto/ (run `npm run gen` after changing a .proto)", () => {
  const committed = readFileSync(new URL("../../src/gen/descriptor.json", import.meta.url), "utf8");
  assert.equal(committed, (descriptorJson as () => string)());
});
