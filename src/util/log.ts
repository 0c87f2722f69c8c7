import { pino, type Logger as PinoLogger, type DestinationStream } from "pino";

export type Logger = PinoLogger;
export type LogFormat = "text" | "json";
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Field names whose values never reach a log line, wherever they appear. */
const REDACT = ["token", "*.token", "privateKey", "*.privateKey", "private_key", "*.private_key", "authorization", "*.authorization"];

const LEVEL_NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

function formatValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v !== null && typeof v === "object" && "message" in v && "type" in v) {
    return JSON.stringify((v as { message: unknown }).message);
  }
  return JSON.stringify(v);
}

/** One readable line per record: `2026-11-29T18:46:00.123Z INFO  message key=value ...`. */
export function formatTextLine(record: Record<string, unknown>): string {
  const { time, level, msg, pid: _pid, hostname: _host, ...rest } = record;
  const when = typeof time === "number" ? new Date(time).toISOString() : String(time ?? "");
  const name = (LEVEL_NAMES[Number(level)] ?? String(level)).padEnd(5);
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(" ");
  return `${when} ${name} ${String(msg ?? "")}${fields ? ` ${fields}` : ""}\n`;
}

function textDestination(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string) {
      try {
        out.write(formatTextLine(JSON.parse(line) as Record<string, unknown>));
      } catch {
        out.write(line);
      }
    },
  };
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly format?: LogFormat;
  /** Where lines go; default standard error (standard output is for command output). */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const out = options.destination ?? process.stderr;
  const dest: DestinationStream =
    options.format === "json" ? { write: (line: string) => void out.write(line) } : textDestination(out);
  return pino(
    {
      level: options.level ?? "info",
      base: undefined,
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    dest,
  );
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = pino({ level: "silent" });
