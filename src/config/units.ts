// Durations and sizes as operators write them (SPEC §2): `30s`, `5m`, `2h`, `512KiB`.
// Parsing happens once, at load time; everything downstream works in milliseconds and bytes.
// The parsers throw RangeError with a message meant for the operator; the config schema
// and the CLI (`audit --since 1h`) show that message as is.

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Largest unit first, so formatDuration picks the shortest exact spelling. */
const DURATION_UNITS_DESC = Object.entries(DURATION_UNITS).sort((a, b) => b[1] - a[1]);

// One integer and one unit. Compound (`1h30m`) and fractional (`1.5h`) forms are refused:
// they are rare in practice, and `90m` says the same thing without a second grammar.
const DURATION_RE = /^(\d+)(ms|s|m|h|d)$/;

/** `30s`, `5m`, `2h`, `1d`, `250ms` → milliseconds. A bare number is refused: its unit would be a guess. */
export function parseDuration(text: string): number {
  const m = DURATION_RE.exec(text.trim());
  const ms = m ? Number(m[1]) * (DURATION_UNITS[m[2] as string] as number) : NaN;
  if (!Number.isSafeInteger(ms)) {
    throw new RangeError(`${JSON.stringify(text)} is not a duration (use 30s, 5m, 2h)`);
  }
  return ms;
}

/** Milliseconds → the shortest exact form parseDuration reads back (`600000` → `10m`, `1500` → `1500ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of DURATION_UNITS_DESC) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  // Only reachable for fractional milliseconds, which no parsed value has.
  return `${ms}ms`;
}

// IEC units only: `1MB` is ambiguous (10^6 or 2^20?) and a size limit should not be.
const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

const SIZE_RE = /^(\d+)(B|KiB|MiB|GiB)?$/;

/** `512KiB`, `1MiB`, `1024` (bytes; a YAML number works too) → bytes. */
export function parseSize(value: string | number): number {
  const m = SIZE_RE.exec(String(value).trim());
  const bytes = m ? Number(m[1]) * (SIZE_UNITS[m[2] ?? 'B'] as number) : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(`${JSON.stringify(String(value))} is not a size (use bytes, or 512KiB, 1MiB)`);
  }
  return bytes;
}
