// Who is making a request, as the app itself would say. Each identity source turns a request into
// an Identity, null (anonymous), or throws IdentityUnavailableError (→ 503: never forward in doubt).
import type { IncomingHttpHeaders } from 'node:http';

export interface Identity {
  /** The `user_field` value: what the API, headers and audit call `user`. */
  user: string;
  /** The `name_field` value, for display and the authenticator-app label. */
  name: string | null;
  /** For JWTs carrying a `sid` claim: the app's session id, so a refreshed token keeps its grant. */
  sessionId: string | null;
}

export interface IdentityInput {
  headers: IncomingHttpHeaders;
  /** The immediate peer (socket) address. */
  peer: string | undefined;
}

export interface IdentitySource {
  resolve(input: IdentityInput): Promise<Identity | null>;
  /**
   * The identity if the source knows it without waiting (a cached look-up, a header), else
   * undefined: the gate's no-promise path for a gated request with a grant (pipeline.ts). Never
   * throws; anything doubtful (two credentials, a lookup to make) is left to `resolve`.
   */
  known(input: IdentityInput): Identity | null | undefined;
}

export class IdentityUnavailableError extends Error {}

/** Two credentials on one request name two different users (SPEC §4.4). */
export class AmbiguousIdentityError extends Error {}
