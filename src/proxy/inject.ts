// `inject_client: true` (SPEC §5): add `<script src="{prefix}/client.js" defer>` to the app's HTML
// documents so fetch/XHR calls of an unmodified app meet the step-up modal instead of a bare 403.
//
// Only documents are touched: responses to navigations (Sec-Fetch-Dest document/iframe) or,
// without Sec-Fetch headers, 200 text/html bodies that start with a doctype or <html>. HTML
// fragments fetched by scripts, HEAD, range and non-200 answers pass unchanged. The page streams:
// only its beginning is held until the insertion point (after <head…>) is found. A compressed page
// is decompressed (the gateway asks for identity encoding, but an app may compress anyway); the
// modified page gets a correct length and a weakened ETag, and a CSP that would block the client
// is extended by exactly what it needs, weakening nothing else: this one script, and frames of the
// gateway's own pages (the modal is an iframe of the verify page). A CSP in a <meta http-equiv> tag
// is part of the page and is not rewritten.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

/** How far into a document we look for <head> (or <html>) before giving up and passing it unchanged. */
const MAX_PROBE_BYTES = 64 * 1024;

/** Should this request's answer be considered at all? Decided before forwarding. */
export function injectionCandidate(req: IncomingMessage): boolean {
  if (req.method !== 'GET' || req.headers.range !== undefined) return false;
  const dest = req.headers['sec-fetch-dest'];
  if (dest !== undefined) return dest === 'document' || dest === 'iframe';
  // No Sec-Fetch headers (older browsers, tools): the body itself decides (see probe below).
  return true;
}

export interface InjectionPlan {
  /** Where the upstream body goes: the inserter, or a decompressor piped into it. */
  writable: Writable;
  /** Emits 'decision' (inserted: boolean) before its first byte, then the (modified) document. */
  inserter: ScriptInserter;
  /** The response headers, once the inserter decided whether the page was modified. */
  headers(inserted: boolean): OutgoingHttpHeaders;
}

/**
 * Given the upstream's answer to a candidate request, how to rewrite it; null when the answer
 * must pass unchanged.
 */
export function planInjection(
  req: IncomingMessage,
  status: number,
  headers: OutgoingHttpHeaders,
  scriptUrl: string,
  publicOrigin: string,
): InjectionPlan | null {
  if (status !== 200) return null;
  const type = String(headers['content-type'] ?? '').toLowerCase();
  if (!type.startsWith('text/html')) return null;
  const encoding = String(headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : encoding === 'identity' ? null : undefined;
  if (decoder === undefined) return null; // an encoding we cannot undo: leave the page alone
  const scriptHref = new URL(scriptUrl, publicOrigin).href;
  // The modal frames the verify page, and within it the user may go on to settings to enrol: the
  // gateway's whole prefix (a CSP source ending in / matches every path under it).
  const frameUrl = new URL(scriptUrl.slice(0, scriptUrl.lastIndexOf('/') + 1), publicOrigin).href;
  const csp = allowScript(headers['content-security-policy'], scriptHref, { frameUrl });
  // A report-only policy is extended the same way, so the client never fills the app's CSP reports.
  const reportOnly = allowScript(headers['content-security-policy-report-only'], scriptHref, { frameUrl, nonce: csp.nonce });
  const nonce = csp.nonce ?? reportOnly.nonce;
  const tag = Buffer.from(`<script src="${scriptUrl}" defer${nonce ? ` nonce="${nonce}"` : ''}></script>`);
  const inserter = new ScriptInserter(tag, req.headers['sec-fetch-dest'] === undefined);
  if (decoder) {
    decoder.on('error', (err) => inserter.destroy(err));
    decoder.pipe(inserter);
  }
  return {
    writable: decoder ?? inserter,
    inserter,
    headers(inserted) {
      if (!inserted && !decoder) return headers;
      const out: OutgoingHttpHeaders = { ...headers };
      // A decompressed body streams chunked (a correct framing); an identity one keeps an exact length.
      delete out['content-encoding'];
      const length = Number(out['content-length']);
      delete out['content-length'];
      if (!decoder && Number.isFinite(length)) out['content-length'] = length + tag.length;
      const etag = out.etag;
      if (typeof etag === 'string' && !etag.startsWith('W/')) out.etag = `W/${etag}`;
      if (inserted && csp.header !== undefined) out['content-security-policy'] = csp.header;
      if (inserted && reportOnly.header !== undefined) out['content-security-policy-report-only'] = reportOnly.header;
      return out;
    },
  };
}

/** Holds the beginning of the document until it knows where the tag goes, then streams. */
export class ScriptInserter extends Transform {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private decided = false;

  constructor(
    private readonly tag: Buffer,
    /** Without Sec-Fetch headers only real documents (doctype or <html> first) are modified. */
    private readonly requireDocumentStart: boolean,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.decided) {
      cb(null, chunk);
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    this.tryDecide(false);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (!this.decided) this.tryDecide(true);
    cb();
  }

  private tryDecide(final: boolean): void {
    const text = Buffer.concat(this.held).toString('latin1');
    const start = text.replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart().slice(0, 15).toLowerCase();
    if (this.requireDocumentStart && start.length >= 15 && !start.startsWith('<!doctype') && !start.startsWith('<html')) {
      return this.release(-1);
    }
    const head = /<head(?:\s[^>]*)?>/i.exec(text);
    if (head) return this.release(head.index + head[0].length);
    // No <head> yet: wait for more, unless the document body already began or we read enough.
    const body = /<body[\s>]/i.exec(text);
    if (body || final || this.heldBytes > MAX_PROBE_BYTES) {
      const html = /<html(?:\s[^>]*)?>/i.exec(text);
      const documentLike = !this.requireDocumentStart || start.startsWith('<!doctype') || start.startsWith('<html');
      return this.release(documentLike ? (html ? html.index + html[0].length : body ? body.index : -1) : -1);
    }
  }

  /** Emits what was held, with the tag at byte offset `at` (-1: unchanged). */
  private release(at: number): void {
    this.decided = true;
    const held = Buffer.concat(this.held);
    this.held = [];
    this.emit('decision', at >= 0);
    if (at < 0) this.push(held);
    else this.push(Buffer.concat([held.subarray(0, at), this.tag, held.subarray(at)]));
  }
}

/**
 * Extends each Content-Security-Policy so the client may work, and nothing else changes. The
 * script: with 'strict-dynamic' (host sources ignored) by a nonce; otherwise by its exact URL.
 * With `frameUrl`, frames of that URL (the modal's verify page) too: frame-src, or a new frame-src
 * copied from its fallback (child-src, default-src), which itself stays as it was. Sources already
 * allowing them ('self', *, the URL) leave a directive untouched; 'none' is dropped where ours is added.
 */
export function allowScript(
  header: OutgoingHttpHeaders[string],
  scriptUrl: string,
  opts: { frameUrl?: string; nonce?: string | null } = {},
): { header: string | undefined; nonce: string | null } {
  if (header === undefined) return { header: undefined, nonce: null };
  let nonce: string | null = opts.nonce ?? null;
  const policies = (Array.isArray(header) ? header.join(',') : String(header)).split(',');
  const rewritten = policies.map((policy) => {
    const directives = policy.split(';').map((d) => d.trim()).filter(Boolean);
    let changed = false;
    const find = (name: string) => directives.findIndex((d) => d.toLowerCase().split(/\s+/)[0] === name);
    /** Adds `extra` to the first of `names` present, or to a copy of the first fallback present, named as the last of `names`. */
    const extend = (names: string[], fallbacks: string[], allowed: (lower: string[]) => boolean, extra: (lower: string[]) => string) => {
      const own = names.map(find).find((i) => i >= 0) ?? -1;
      const fallback = own >= 0 ? -1 : fallbacks.map(find).find((i) => i >= 0) ?? -1;
      const index = own >= 0 ? own : fallback;
      if (index < 0) return;
      const [name, ...sources] = directives[index]!.split(/\s+/);
      const lower = sources.map((v) => v.toLowerCase());
      if (allowed(lower)) return;
      const kept = sources.filter((v) => v.toLowerCase() !== "'none'");
      if (own >= 0) directives[index] = [name, ...kept, extra(lower)].join(' ');
      else directives.push([names[names.length - 1], ...kept, extra(lower)].join(' '));
      changed = true;
    };
    const plainlyAllows = (url: string) => (lower: string[]) => lower.includes("'self'") || lower.includes('*') || lower.includes(url.toLowerCase());
    const strictDynamic = (lower: string[]) => lower.includes("'strict-dynamic'");
    extend(['script-src-elem', 'script-src'], ['default-src'], (lower) => !strictDynamic(lower) && plainlyAllows(scriptUrl)(lower), (lower) => {
      if (!strictDynamic(lower)) return scriptUrl;
      // Host sources (and 'self') are ignored next to 'strict-dynamic': only a nonce lets it in.
      nonce ??= randomBytes(16).toString('base64');
      return `'nonce-${nonce}'`;
    });
    if (opts.frameUrl) extend(['frame-src'], ['child-src', 'default-src'], plainlyAllows(opts.frameUrl), () => opts.frameUrl!);
    return changed ? directives.join('; ') : policy.trim();
  });
  return { header: rewritten.join(', '), nonce };
}
