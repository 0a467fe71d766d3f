// Which session a grant belongs to (SPEC §9.2). A grant lives only while the credential that
// identifies the session does: the app's session cookie values, else the bearer token (or a JWT's
// `sid`), else the gateway's own random cookie. Only HMACs of this material are ever stored.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { IdentityConfig } from '../config/types.js';
import type { Secrets } from '../crypto/secrets.js';
import { cookieOccurrences, readCookie } from '../identity/cookies.js';
import type { Identity } from '../identity/types.js';

export interface SessionBinding {
  /** HMACs of the session material under every configured key, primary first. */
  keys: string[];
  /** Set when the session is the gateway's own cookie and the request had none: send it back. */
  newGatewayCookie: string | null;
}

export function gatewayCookieName(publicOrigin: string): string {
  // __Host- pins the cookie to this exact origin, path / and Secure; only possible over https.
  return publicOrigin.startsWith('https:') ? '__Host-stepgate' : 'stepgate';
}

export function gatewayCookieHeader(publicOrigin: string, value: string): string {
  const secure = publicOrigin.startsWith('https:') ? '; Secure' : '';
  return `${gatewayCookieName(publicOrigin)}=${value}; Path=/; HttpOnly; SameSite=Lax${secure}`;
}

/** What a binding was computed from, to reuse it while they stay the same. */
interface RememberedBinding {
  cookie: string | undefined;
  authorization: string | undefined;
  cfg: IdentityConfig;
  publicOrigin: string;
  binding: SessionBinding;
}

/**
 * The last binding of each identity object. An identity cache hands out the same object for every
 * request of a session, so a session's next request with the same Cookie and Authorization headers
 * skips the cookie parsing and HMAC-cache look-up (2.5% of a gated request's CPU in the profile).
 */
const remembered = new WeakMap<Identity, RememberedBinding>();

export function sessionBinding(
  headers: IncomingHttpHeaders,
  identity: Identity,
  cfg: IdentityConfig,
  publicOrigin: string,
  secrets: Secrets,
): SessionBinding {
  const last = remembered.get(identity);
  // Everything deriveBinding reads except the secrets (fixed for the process): identity, the two
  // headers, the identity config and the origin (which names the gateway's own cookie).
  if (last && last.cookie === headers.cookie && last.authorization === headers.authorization && last.cfg === cfg && last.publicOrigin === publicOrigin) {
    return last.binding;
  }
  const binding = deriveBinding(headers, identity, cfg, publicOrigin, secrets);
  // A new gateway cookie is random per request: nothing to reuse.
  if (!binding.newGatewayCookie) remembered.set(identity, { cookie: headers.cookie, authorization: headers.authorization, cfg, publicOrigin, binding });
  return binding;
}

function deriveBinding(headers: IncomingHttpHeaders, identity: Identity, cfg: IdentityConfig, publicOrigin: string, secrets: Secrets): SessionBinding {
  let material: string | null = null;
  let newGatewayCookie: string | null = null;
  if (identity.sessionId !== null) {
    material = `sid\0${identity.sessionId}`;
  } else {
    const appCookies = cookieOccurrences(headers.cookie, cfg.sessionCookies);
    const jwtCookie = cfg.source === 'jwt' && cfg.jwt.cookie ? readCookie(headers.cookie, cfg.jwt.cookie) : undefined;
    if (appCookies.length > 0) material = `cookie\0${appCookies.join('\0')}`;
    else if (jwtCookie) material = `jwt\0${jwtCookie}`;
    else if (headers.authorization) material = `authorization\0${headers.authorization}`;
  }
  if (material === null) {
    const own = readCookie(headers.cookie, gatewayCookieName(publicOrigin));
    const value = own && /^[A-Za-z0-9_-]{43}$/.test(own) ? own : null;
    if (value === null) newGatewayCookie = randomBytes(32).toString('base64url');
    material = `gateway\0${value ?? newGatewayCookie}`;
  }
  // The user is part of the key: the same cookie seen for another user is another session.
  return { keys: secrets.hmacAllCached('session', `${identity.user}\0${material}`), newGatewayCookie };
}
