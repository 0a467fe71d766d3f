// Invite codes (`stepgate users invite`): single use, 24 h, stored only as HMACs.
import type { Secrets } from '../crypto/secrets.js';

const PURPOSE = 'invite';

export function inviteHash(secrets: Secrets, code: string): string {
  return secrets.hmac(PURPOSE, code.trim());
}

/** Under every configured key, so a key rotation does not void open invites. */
export function inviteHashes(secrets: Secrets, code: string): string[] {
  return secrets.hmacAll(PURPOSE, code.trim());
}
