// Keys for encryption at rest (AES-256-GCM) and for keyed hashes (HMAC-SHA256).
//
// The key material comes from STEPGATE_SECRET (base64, >= 32 bytes; a comma-separated list rotates
// keys) or from a key file generated into data_dir with mode 0600. The first key encrypts and signs;
// every key decrypts and verifies, so rotating never invalidates grants, stashes or recovery codes
// (SPEC §1). Sub-keys are derived with HKDF so the same secret never serves two purposes.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface KeyPair {
  /** 4 bytes that tell which key encrypted a blob, so decryption does not have to try them all. */
  id: Buffer;
  enc: Buffer;
  mac: Buffer;
}

const VERSION = 1;
const RECENT_HMACS = 10_000;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const IVS_PER_DRAW = 256;

/**
 * Fresh random IVs, drawn from the CSPRNG 256 at a time (like Node's randomUUID cache): a
 * randomBytes call per IV was ~7% of a challenge's CPU, as every 403 seals a ticket. Each IV is
 * handed out once; a used block is dropped, never refilled in place.
 */
class IvPool {
  private block = Buffer.alloc(0);
  private offset = 0;

  next(): Buffer {
    if (this.offset + IV_BYTES > this.block.length) {
      this.block = randomBytes(IV_BYTES * IVS_PER_DRAW);
      this.offset = 0;
    }
    const iv = this.block.subarray(this.offset, this.offset + IV_BYTES);
    this.offset += IV_BYTES;
    return iv;
  }
}

export class Secrets {
  private readonly keys: KeyPair[];
  private readonly ivs = new IvPool();

  constructor(rawKeys: Buffer[]) {
    if (rawKeys.length === 0) throw new Error('at least one secret key is required');
    this.keys = rawKeys.map((raw) => {
      if (raw.length < 32) throw new Error('each secret key must be at least 32 bytes');
      const derive = (info: string) => Buffer.from(hkdfSync('sha256', raw, Buffer.alloc(0), info, 32));
      return { id: derive('stepgate key id').subarray(0, 4), enc: derive('stepgate aes-256-gcm'), mac: derive('stepgate hmac') };
    });
  }

  private get primary(): KeyPair {
    return this.keys[0]!;
  }

  /** Layout: version(1) keyId(4) iv(12) tag(16) ciphertext. `aad` binds the blob to its owner (e.g. the user). */
  encrypt(plain: Buffer, aad: string): Buffer {
    const iv = this.ivs.next();
    const cipher = createCipheriv('aes-256-gcm', this.primary.enc, iv);
    cipher.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), this.primary.id, iv, cipher.getAuthTag(), ct]);
  }

  decrypt(blob: Buffer, aad: string): Buffer {
    if (blob.length < 1 + 4 + IV_BYTES + TAG_BYTES || blob[0] !== VERSION) throw new Error('not a stepgate ciphertext');
    const id = blob.subarray(1, 5);
    const key = this.keys.find((k) => k.id.equals(id));
    if (!key) throw new Error('ciphertext was made with a key that is no longer configured');
    const iv = blob.subarray(5, 5 + IV_BYTES);
    const tag = blob.subarray(5 + IV_BYTES, 5 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key.enc, iv);
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(blob.subarray(5 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  }

  /** Keyed hash under the primary key: what gets stored. `purpose` separates domains (session, recovery, ticket…). */
  hmac(purpose: string, value: string): string {
    return macWith(this.primary.mac, purpose, value);
  }

  /** The keyed hash under every configured key, primary first: what lookups try, so rotation keeps old rows valid. */
  hmacAll(purpose: string, value: string): string[] {
    return this.keys.map((k) => macWith(k.mac, purpose, value));
  }

  private readonly recent = new Map<string, string[]>();

  /**
   * hmacAll for values seen on every request (session keys): remembered for the most recent
   * 10,000 values, since creating an HMAC per key per request showed up in the profile.
   */
  hmacAllCached(purpose: string, value: string): string[] {
    const cacheKey = `${purpose}\0${value}`;
    let hashes = this.recent.get(cacheKey);
    if (hashes) return hashes;
    hashes = this.hmacAll(purpose, value);
    if (this.recent.size >= RECENT_HMACS) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(cacheKey, hashes);
    return hashes;
  }
}

function macWith(key: Buffer, purpose: string, value: string): string {
  return createHmac('sha256', key).update(purpose).update('\0').update(value).digest('base64url');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Parses STEPGATE_SECRET (comma-separated base64 keys). Throws a message naming the variable. */
export function parseSecretEnv(value: string): Buffer[] {
  const keys = value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => Buffer.from(s, 'base64'));
  if (keys.length === 0 || keys.some((k) => k.length < 32)) {
    throw new Error('STEPGATE_SECRET must be base64 keys of at least 32 bytes each, comma-separated');
  }
  return keys;
}

/** STEPGATE_SECRET if set, else `data_dir/secret.key`, generated (0600) on first start. */
export function loadSecrets(dataDir: string, env: NodeJS.ProcessEnv = process.env): Secrets {
  if (env.STEPGATE_SECRET) return new Secrets(parseSecretEnv(env.STEPGATE_SECRET));
  const file = join(dataDir, 'secret.key');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // 'wx' fails if another process created it in the meantime; then we read theirs.
    try {
      writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(file, 0o600);
  return new Secrets(parseSecretEnv(readFileSync(file, 'utf8')));
}
