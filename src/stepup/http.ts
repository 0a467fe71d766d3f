// Small HTTP helpers for the gateway's own endpoints: JSON in and out, the same-origin checks of
// SPEC §8, and client facts for the audit trail.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.js';

const MAX_JSON_BYTES = 64 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown, requestId: string, headers?: Record<string, string | string[]>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(text);
}

/**
 * The gateway's pages: scripts only from this origin (no inline scripts; pages hand data to them in
 * `<script type="application/json">` blocks, which are never executed), framed only by this origin
 * (the drop-in modal), no plugins, no <base> rewriting, forms post only here. Inline styles are
 * allowed for the operator's theme colours (a style attribute on <html>).
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: https:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join('; ');

export function sendHtml(res: ServerResponse, status: number, html: string, requestId: string, headers?: Record<string, string | string[]>): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'content-security-policy': PAGE_CSP,
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-request-id': requestId,
  });
  res.end(html);
}

/**
 * A state-changing request must come from the public origin when a browser says where it comes
 * from (Origin / Sec-Fetch-Site); a request with neither header is a non-browser client, which
 * cannot be driven by another site (SPEC §8).
 */
export function assertSameOrigin(req: IncomingMessage, publicOrigin: string): void {
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  // The gateway's pages say `Referrer-Policy: no-referrer`, under which browsers send `Origin: null`
  // with a form post (the no-JavaScript verify form). Then only Sec-Fetch-Site, which no script can
  // set, may vouch for it; an opaque origin from anywhere else (a sandboxed frame) stays refused.
  const nullButSameOrigin = origin === 'null' && site === 'same-origin';
  if (origin !== undefined && origin !== publicOrigin && !nullButSameOrigin) throw new GatewayError('CROSS_ORIGIN');
  if (site !== undefined && site !== 'same-origin') throw new GatewayError('CROSS_ORIGIN');
}

export async function readBody(req: IncomingMessage, limit = MAX_JSON_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new GatewayError('TOO_LARGE');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** JSON POST bodies: only `application/json`, an object, at most 64 KiB. An empty body is `{}`. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  if (!hasBody) return {};
  if (type !== 'application/json') throw new GatewayError('UNSUPPORTED_MEDIA_TYPE');
  const bytes = await readBody(req);
  if (bytes.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new GatewayError('BAD_REQUEST', 'The body is not valid JSON.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new GatewayError('BAD_REQUEST', 'The body must be a JSON object.');
  return value as Record<string, unknown>;
}

export function userAgentOf(req: IncomingMessage): string | null {
  const ua = req.headers['user-agent'];
  return ua ? ua.slice(0, 512) : null;
}
