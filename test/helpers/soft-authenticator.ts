// A software WebAuthn authenticator for API-level passkey tests: an ES256 (P-256) key made with
// node:crypto, attestation `none`, and hand-built authenticator data, CBOR and clientDataJSON, so
// every field an attacker controls can be bent on purpose (origin, rpID hash, flags, counter,
// challenge, signing key). Produces what a browser's `credential.toJSON()` gives the page:
// RegistrationResponseJSON and AuthenticationResponseJSON (W3C WebAuthn Level 3).
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';

// ── a small CBOR encoder (RFC 8949): unsigned and negative ints, byte and text strings, maps ─────

type Cbor = number | string | Uint8Array | Map<Cbor, Cbor> | { [key: string]: Cbor };

function cborHead(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error('only integers');
    return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([cborHead(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([cborHead(2, value.length), value]);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Buffer.concat([cborHead(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

// ── the authenticator ─────────────────────────────────────────────────────────────────────────

export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
export const FLAG_BE = 0x08;
export const FLAG_BS = 0x10;
export const FLAG_AT = 0x40;

const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

/** What a test may bend in one ceremony. */
export interface Tamper {
  /** clientDataJSON.origin (default: the authenticator's origin). */
  origin?: string;
  /** The RP ID whose SHA-256 goes into authenticator data (default: the authenticator's rpID). */
  rpId?: string;
  /** Authenticator data flags (default UP|UV, plus AT on registration). */
  flags?: number;
  /** The signature counter to report (default: the next one; always 0 for a synced passkey). */
  counter?: number;
  /** clientDataJSON.type (default webauthn.get / webauthn.create). */
  type?: string;
  /** clientDataJSON.challenge (default: the options' challenge). */
  challenge?: string;
  crossOrigin?: boolean;
  /** Sign with this key instead (a forged assertion for this credential id). */
  signWith?: KeyObject;
}

export interface SoftAuthenticatorOptions {
  rpId?: string;
  origin?: string;
  /** Counter reported at registration; assertions count up from it. */
  counter?: number;
  /** A synced passkey: the counter is always 0. */
  synced?: boolean;
}

export class SoftAuthenticator {
  readonly credentialId = randomBytes(32);
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly rpId: string;
  readonly origin: string;
  readonly synced: boolean;
  counter: number;

  constructor(opts: SoftAuthenticatorOptions = {}) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.rpId = opts.rpId ?? 'localhost';
    this.origin = opts.origin ?? 'http://localhost:8080';
    this.synced = opts.synced ?? false;
    this.counter = this.synced ? 0 : (opts.counter ?? 1);
  }

  get id(): string {
    return b64u(this.credentialId);
  }

  /** The COSE_Key (RFC 9053 EC2, alg ES256) of the public key. */
  coseKey(): Buffer {
    const jwk = this.publicKey.export({ format: 'jwk' });
    return cbor(
      new Map<Cbor, Cbor>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x!, 'base64url')],
        [-3, Buffer.from(jwk.y!, 'base64url')],
      ]),
    );
  }

  private authData(rpId: string, flags: number, counter: number, attested: boolean): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter >>> 0);
    const parts: Uint8Array[] = [sha256(rpId), Buffer.from([flags]), count];
    if (attested) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(this.credentialId.length);
      parts.push(Buffer.alloc(16), len, this.credentialId, this.coseKey()); // AAGUID zeros
    }
    return Buffer.concat(parts);
  }

  private clientData(type: string, challenge: string, t: Tamper): string {
    return JSON.stringify({ type: t.type ?? type, challenge: t.challenge ?? challenge, origin: t.origin ?? this.origin, crossOrigin: t.crossOrigin ?? false });
  }

  /** navigator.credentials.create() for these creation options. */
  register(options: { challenge: string }, t: Tamper = {}): RegistrationResponseJSON {
    const clientDataJSON = this.clientData('webauthn.create', options.challenge, t);
    const flags = t.flags ?? FLAG_UP | FLAG_UV | FLAG_AT | (this.synced ? FLAG_BE | FLAG_BS : 0);
    const authData = this.authData(t.rpId ?? this.rpId, flags, t.counter ?? this.counter, true);
    const attestationObject = cbor({ fmt: 'none', attStmt: {}, authData });
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get() for these request options. Advances the counter unless told which to report. */
  assert(options: { challenge: string }, t: Tamper = {}): AuthenticationResponseJSON {
    let counter: number;
    if (t.counter !== undefined) counter = t.counter;
    else if (this.synced) counter = 0;
    else counter = ++this.counter;
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, t);
    const flags = t.flags ?? FLAG_UP | FLAG_UV | (this.synced ? FLAG_BE | FLAG_BS : 0);
    const authData = this.authData(t.rpId ?? this.rpId, flags, counter, false);
    // ECDSA over authenticatorData || SHA-256(clientDataJSON), DER-encoded (node's default).
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), t.signWith ?? this.privateKey);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authData), signature: b64u(signature) },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}
