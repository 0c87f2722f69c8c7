/**
 * Go-style durations, as the seed's `--refresh` took them: "15s", "1m",
 * "1m30s", "500ms", "1h". A bare number is refused: its unit would be a guess.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
export const MAX_DURATION_MS = 2 ** 31 - 1;

export function parseDuration(text: string, what = "duration"): number {
  const trimmed = text.trim();
  if (trimmed === "") throw new Error(`${what} is empty; expected a duration such as 15s, 1m or 1m30s`);
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const at = PART.lastIndex;
    const m = PART.exec(trimmed);
    if (!m || m.index !== at) {
      throw new Error(`${what} \`${text}' is not a duration; expected a number with a unit (ms, s, m, h), such as 15s, 1m or 1m30s`);
    }
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  // Node's timers take at most 2^31-1 ms (24.8 days); a longer one fires at once, every millisecond.
  if (!Number.isFinite(total) || total > MAX_DURATION_MS) throw new Error(`${what} \`${text}' is too long: at most 24 days`);
  return Math.round(total);
}

/** Formats milliseconds the way parseDuration reads them ("1m30s", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms < 1000 && ms % 1000 !== 0) return `${ms}ms`;
  let rest = Math.round(ms / 1000);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s || (!h && !m) ? `${s}s` : ""}`;
}
