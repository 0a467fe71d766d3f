// identity.source: header — an SSO proxy in front of the gateway already authenticated the user
// and names them in a header. Believed only from `trusted_proxies`; from anyone else the header
// is ignored (and stripped before forwarding, SPEC §6).
import type { HeaderIdentityConfig } from '../config/types.js';
import { addressSet, type AddressSet } from '../net/cidr.js';
import type { Identity, IdentityInput, IdentitySource } from './types.js';

/** At most this many users' identity objects are kept; later users get a new object per request. */
const MAX_REMEMBERED_USERS = 10_000;

export class HeaderIdentitySource implements IdentitySource {
  private readonly trusted: AddressSet;
  /**
   * One identity object per user, as the other sources' caches give: the gate remembers a
   * session's binding per identity object (grants/session-key.ts), so a new object per request
   * would recompute it on every gated request.
   */
  private readonly identities = new Map<string, Identity>();

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
    if (!user) return null;
    let identity = this.identities.get(user);
    if (identity === undefined) {
      identity = Object.freeze({ user, name: user, sessionId: null });
      if (this.identities.size < MAX_REMEMBERED_USERS) this.identities.set(user, identity);
    }
    return identity;
  }
}
