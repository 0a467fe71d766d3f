// Recovery codes: ten single-use codes of 10 base32 characters (50 bits each), shown once and
// stored only as HMACs (SPEC §9.6). Input is forgiving: case, spaces and dashes are ignored.
import { randomInt } from 'node:crypto';
import type { Secrets } from '../crypto/secrets.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const RECOVERY_CODE_COUNT = 10;
const CODE_LENGTH = 10;
const HMAC_PURPOSE = 'recovery-code';

export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () =>
    Array.from({ length: CODE_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join(''),
  );
}

export function normaliseRecoveryCode(code: string): string | null {
  const cleaned = code.replace(/[\s-]+/g, '').toUpperCase();
  return cleaned.length === CODE_LENGTH && [...cleaned].every((c) => ALPHABET.includes(c)) ? cleaned : null;
}

/** The user is part of the hash so a code can never be tried against another account's rows. */
export function recoveryCodeHash(secrets: Secrets, user: string, code: string): string {
  return secrets.hmac(HMAC_PURPOSE, `${user}\0${code}`);
}

export function recoveryCodeHashes(secrets: Secrets, user: string, code: string): string[] {
  return secrets.hmacAll(HMAC_PURPOSE, `${user}\0${code}`);
}
