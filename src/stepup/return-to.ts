// `return_to` only ever names a same-origin relative path: no `//host`, `/\host`, or an encoded
// spelling of either, no scheme, no control characters (SPEC §5; oauth2-proxy's redirect validator).
const FALLBACK = '/';

export function safeReturnTo(value: unknown, publicOrigin: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) return FALLBACK;
  if (!value.startsWith('/') || /[\\\x00-\x1f\x7f]/.test(value)) return FALLBACK;
  // Browsers treat `/\` and `//` alike, and some servers decode before redirecting: check every decoding.
  let decoded = value;
  for (let i = 0; i < 3; i++) {
    if (/^[\\/]{2}/.test(decoded) || /^\/[\t\n\r ]*[\\/]/.test(decoded) || /[\\\x00-\x1f\x7f]/.test(decoded)) return FALLBACK;
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      return FALLBACK;
    }
    if (next === decoded) break;
    decoded = next;
  }
  let url: URL;
  try {
    url = new URL(value, publicOrigin);
  } catch {
    return FALLBACK;
  }
  if (url.origin !== new URL(publicOrigin).origin) return FALLBACK;
  // Parsing resolves dot segments: `/.//evil` becomes `//evil`, a scheme-relative URL. Check what
  // is returned, not only what came in.
  const out = url.pathname + url.search;
  return /^[\\/]{2}/.test(out) ? FALLBACK : out;
}
