// SPEC §10: with a shared PostgreSQL store, expiry (grants, tickets, challenges, lockouts, TOTP
// steps) is measured on the database's clock, so instances whose own clocks drift still agree.
// Asking the database for the time on every request would add a round trip to each gated request;
// instead the offset between this host's clock and the database's is measured at start and every
// 30 s (half the round trip corrected, NTP style) and `now()` is `Date.now() + offset`.
import type { Clock } from '../clock.js';

export const DB_CLOCK_INTERVAL_MS = 30_000;
/** A sample whose round trip took longer than this is too uncertain to replace the last good one. */
const MAX_SAMPLE_RTT_MS = 1_000;
/** At start: the best (shortest round trip) of this many samples. */
const START_SAMPLES = 3;

export interface DatabaseClockOptions {
  intervalMs?: number;
  /** A refresh failed (the database is unreachable): the last offset stays in use. */
  onError?: (err: Error) => void;
  /** The measured offset moved (for a log line when it is large). */
  onSample?: (offsetMs: number, rttMs: number) => void;
}

export class DatabaseClock implements Clock {
  private offsetMs = 0;
  private rttMs = Infinity;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    /** The database's wall clock in epoch ms. */
    private readonly measure: () => Promise<number>,
    private readonly opts: DatabaseClockOptions,
  ) {}

  /** Measures the offset (rejects when the database cannot answer) and keeps it fresh until stop(). */
  static async start(measure: () => Promise<number>, opts: DatabaseClockOptions = {}): Promise<DatabaseClock> {
    const clock = new DatabaseClock(measure, opts);
    let best: { offset: number; rtt: number } | null = null;
    for (let i = 0; i < START_SAMPLES; i++) {
      const s = await clock.sample();
      if (!best || s.rtt < best.rtt) best = s;
    }
    clock.offsetMs = best!.offset;
    clock.rttMs = best!.rtt;
    opts.onSample?.(clock.offsetMs, clock.rttMs);
    clock.timer = setInterval(() => void clock.refresh(), opts.intervalMs ?? DB_CLOCK_INTERVAL_MS);
    clock.timer.unref();
    return clock;
  }

  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Database time minus this host's time, in ms, as last measured. */
  get offset(): number {
    return this.offsetMs;
  }

  /** Takes one sample; keeps it unless its round trip was too long to trust. */
  async refresh(): Promise<void> {
    try {
      const s = await this.sample();
      if (s.rtt > MAX_SAMPLE_RTT_MS && s.rtt > this.rttMs) return;
      this.offsetMs = s.offset;
      this.rttMs = s.rtt;
      this.opts.onSample?.(this.offsetMs, this.rttMs);
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async sample(): Promise<{ offset: number; rtt: number }> {
    const sent = Date.now();
    const dbNow = await this.measure();
    const received = Date.now();
    // The database read its clock somewhere in the round trip; the middle is the best guess.
    return { offset: Math.round(dbNow - (sent + received) / 2), rtt: received - sent };
  }
}
