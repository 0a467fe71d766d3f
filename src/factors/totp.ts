// TOTP per RFC 6238 with the parameters every authenticator app supports: SHA-1, 6 digits,
// 30 s steps, 20-byte secrets (SPEC §9.3). otplib does the HOTP maths and the constant-time
// comparison; replay protection (a step must be later than the last accepted one) lives in the
// store, as one conditional update.
import { generateSecret, generateURI, verifySync } from 'otplib';

export const TOTP_PERIOD_SECONDS = 30;
const SECRET_BYTES = 20;

export function newTotpSecret(): string {
  return generateSecret({ length: SECRET_BYTES });
}

export function totpUri(secret: string, accountName: string, issuer: string): string {
  return generateURI({ secret, label: accountName, issuer, algorithm: 'sha1', digits: 6, period: TOTP_PERIOD_SECONDS });
}

/** Codes are strings; spaces in them are ignored (SPEC §8). */
export function normaliseCode(code: unknown): string | null {
  if (typeof code !== 'string') return null;
  const cleaned = code.replace(/\s+/g, '');
  return cleaned.length > 0 && cleaned.length <= 64 ? cleaned : null;
}

/**
 * The time step the code belongs to, if it is valid within ±1 step of `nowMs`; otherwise null.
 * The caller must still check the step is later than the user's last accepted one.
 */
export function totpStepOf(secret: string, code: string, nowMs: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const result = verifySync({
    secret,
    token: code,
    epoch: Math.floor(nowMs / 1000),
    // ±30 s with 30 s periods = the previous, current and next step (otplib checks overlapping periods).
    epochTolerance: TOTP_PERIOD_SECONDS,
  });
  // The TOTP strategy reports the matched step; the union type also covers HOTP, hence the guard.
  return result.valid && 'timeStep' in result ? (result.timeStep as number) : null;
}
