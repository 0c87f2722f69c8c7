/** Writes docs/config.md from the settings tables (src/config/settings.ts): `npm run docs:config`. */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { configReference, REFERENCE_PATH } from "../src/config/reference.js";

const path = fileURLToPath(new URL(`../${REFERENCE_PATH}`, import.meta.url));
writeFileSync(path, configReference());
process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
