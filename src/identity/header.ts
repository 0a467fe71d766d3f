// identity.source: header — an SSO proxy in front of the gateway already authenticated the user
// and names them in a header. Believed only from `trusted_proxies`; from anyone else the header
// is ignored (and stripped before forwarding, SPEC §6).
import type { HeaderIdentityConfig } from '../config/types.js';
import { addressSet, type AddressSet } from '../net/cidr.js';
import type { Identity, IdentityInput, IdentitySource } from './types.js';

export class HeaderIdentitySource implements IdentitySource {
  private readonly trusted: AddressSet;

  constructor(private readonly cfg: HeaderIdentityConfig) {
    this.trusted = addressSet(cfg.trustedProxies);
  }

  resolve(input: IdentityInput): Promise<Identity | null> {
    return Promise.resolve(this.known(input));
  }

  known({ headers, peer }: IdentityInput): Identity | null {
    if (!this.trusted.has(peer)) return null;
    const value = headers[this.cfg.user];
    const user = typeof value === 'string' ? value.trim() : '';
    return user ? { user, name: user, sessionId: null } : null;
  }
}
