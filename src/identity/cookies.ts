// Cookie header parsing, shared by identity sources and the session-key derivation.

/**
 * Every occurrence of the named cookies, in header order, as `name=value` strings (no decoding:
 * they are only compared). Duplicates are kept on purpose: apps disagree on which of two `sid`
 * cookies wins, so `sid=a; sid=b` must not count as the same session as `sid=a`.
 */
export function cookieOccurrences(header: string | undefined, names: readonly string[]): string[] {
  const found: string[] = [];
  if (!header || names.length === 0) return found;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (names.includes(name)) found.push(`${name}=${part.slice(eq + 1).trim()}`);
  }
  return found;
}

/** The first value of one cookie (the gateway's own cookie, a JWT cookie). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  const first = cookieOccurrences(header, [name])[0];
  return first === undefined ? undefined : first.slice(name.length + 1);
}
