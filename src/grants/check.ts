// Is this grant enough for these rules, now? Pure, so it can be read and tested as a table.
import type { GrantRecord } from '../store/store.js';
import type { RuleMatch } from '../rules/match.js';

export function grantSatisfies(grant: GrantRecord | null, user: string, match: RuleMatch, now: number): grant is GrantRecord {
  if (!grant || grant.user !== user) return false;
  if (!match.factors.includes(grant.factor)) return false;
  const age = now - grant.verifiedAt;
  if (age < 0 || age >= match.maxAgeMs) return false;
  // `once` rules need a verification that no earlier once-request consumed (the caller consumes it).
  return !(match.once && grant.onceConsumed);
}

/** Adding or removing a factor needs a verification no older than this (SPEC §8). */
export const FRESH_GRANT_MS = 5 * 60_000;

export function grantIsFresh(grant: GrantRecord | null, user: string, now: number): boolean {
  return grant !== null && grant.user === user && now - grant.verifiedAt < FRESH_GRANT_MS && now >= grant.verifiedAt;
}

/** Headers already built for a grant, by rule: a cached grant serves many requests (grants/cache.ts). */
const builtHeaders = new WeakMap<GrantRecord, Map<string, Readonly<Record<string, string>>>>();

/** SPEC §6: what the app learns about a verified request it receives (a grant grantSatisfies accepted). */
export function trustedHeaders(grant: GrantRecord, rule: string): Readonly<Record<string, string>> {
  let byRule = builtHeaders.get(grant);
  if (!byRule) builtHeaders.set(grant, (byRule = new Map()));
  let headers = byRule.get(rule);
  if (!headers) {
    headers = Object.freeze({
      'x-stepgate-user': grant.user,
      'x-stepgate-factor': grant.factor,
      'x-stepgate-verified-at': new Date(grant.verifiedAt).toISOString(),
      'x-stepgate-rule': rule,
    });
    byRule.set(rule, headers);
  }
  return headers;
}
