import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../src/util/log.js";

/** A JSON logger whose records tests can read. */
export function captureLogger(): { logger: Logger; records: Array<Record<string, unknown>>; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: "debug", format: "json", destination });
  return {
    logger,
    get records() {
      return lines.flatMap((l) => l.split("\n").filter(Boolean)).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    text: () => lines.join(""),
  };
}
