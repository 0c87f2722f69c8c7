/** Time as the decision code sees it, and the timers it sets. Tests pass a fake. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fn` once, `ms` from now; returns what `cancel` takes. */
  after(ms: number, fn: () => void): Timer;
  /** Calls `fn` every `ms` from now; returns what `cancel` takes. */
  every(ms: number, fn: () => void): Timer;
  cancel(timer: Timer): void;
}

/** An opaque handle to a timer of a {@link Clock}. */
export interface Timer {
  readonly id: unknown;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after: (ms, fn) => ({ id: setTimeout(fn, ms) }),
  every: (ms, fn) => ({ id: setInterval(fn, ms) }),
  cancel: (timer) => {
    clearTimeout(timer.id as NodeJS.Timeout);
    clearInterval(timer.id as NodeJS.Timeout);
  },
};

interface Pending {
  readonly id: number;
  at: number;
  readonly fn: () => void;
  readonly everyMs: number | null;
}

/**
 * A clock that moves only when told to, and fires the timers that fall due
 * as it moves, in order of their times (a timer set by a firing one fires in
 * the same advance if it falls due within it).
 */
export class FakeClock implements Clock {
  private pending: Pending[] = [];
  private nextId = 1;

  constructor(private ms = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.ms;
  }

  after(ms: number, fn: () => void): Timer {
    return this.add(ms, fn, null);
  }

  every(ms: number, fn: () => void): Timer {
    return this.add(ms, fn, Math.max(1, ms));
  }

  cancel(timer: Timer): void {
    this.pending = this.pending.filter((p) => p.id !== timer.id);
  }

  /** Timers not yet fired (or cancelled). */
  get timers(): number {
    return this.pending.length;
  }

  /** Moves time on by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.ms + ms;
    for (;;) {
      const next = this.pending.reduce<Pending | null>((a, p) => (a === null || p.at < a.at ? p : a), null);
      if (next === null || next.at > end) break;
      this.ms = Math.max(this.ms, next.at);
      if (next.everyMs === null) this.pending = this.pending.filter((p) => p !== next);
      else next.at += next.everyMs;
      next.fn();
    }
    this.ms = end;
  }

  private add(ms: number, fn: () => void, everyMs: number | null): Timer {
    const id = this.nextId++;
    this.pending.push({ id, at: this.ms + Math.max(0, ms), fn, everyMs });
    return { id };
  }
}
