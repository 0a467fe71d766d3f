// Calls to the gateway's JSON API (SPEC §8) from its own pages: same-origin, JSON in and out,
// never throwing: a network failure is an answer too, so every caller shows something.
export interface ApiAnswer<T> {
  ok: boolean;
  status: number;
  /** The success body (when ok). */
  data: T;
  /** The error code (`INVALID_CODE`, `STEP_UP_REQUIRED`, …), `NETWORK` when the request failed. */
  code: string | null;
  message: string | null;
  /** Seconds, from Retry-After (429). */
  retryAfter: number | null;
}

export async function api<T = Record<string, unknown>>(prefix: string, path: string, body?: unknown, method?: string): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const init: RequestInit = { method: method ?? (body === undefined ? 'GET' : 'POST'), headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(`${prefix}/api${path}`, init);
  } catch {
    return { ok: false, status: 0, data: {} as T, code: 'NETWORK', message: 'Could not reach the server. Check your connection and try again.', retryAfter: null };
  }
  let json: unknown = null;
  try {
    json = await res.json();
  } catch {
    // Not JSON (a proxy's error page): handled below as a generic failure.
  }
  const obj = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
  const retry = Number(res.headers.get('retry-after'));
  return {
    ok: res.ok,
    status: res.status,
    data: obj as T,
    code: res.ok ? null : typeof obj.code === 'string' ? obj.code : `HTTP_${res.status}`,
    message: res.ok ? null : typeof obj.message === 'string' ? obj.message : `The server answered ${res.status}.`,
    retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
  };
}
