// `GET {prefix}/assets/<file>`: the hosted pages' scripts and stylesheet, bundled from ui/ into
// dist/ui/ by scripts/build-ui.mjs. Only files found there at first use are served (read once and
// kept in memory): a name is looked up in that map, never joined onto a path, so nothing outside
// dist/ui can be reached. Pages link them as `…/assets/verify.js?v=<hash>`, so a new build is
// fetched at once despite the hour of caching.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { GatewayError } from '../errors.js';

export interface Asset {
  body: Buffer;
  type: string;
  /** Short content hash, for cache-busting URLs and the ETag. */
  hash: string;
}

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  map: 'application/json; charset=utf-8',
};

const NAME_RE = /^[a-z0-9][a-z0-9-]*\.(js|css|svg|png|ico|map)$/;

/**
 * dist/ui next to the running code: `dist/stepup/assets.js` → `dist/ui/`; when the TypeScript
 * source runs directly (tests), `src/stepup/assets.ts` → `dist/ui/` of the same checkout.
 */
function uiDir(): string | null {
  for (const rel of ['../ui/', '../../dist/ui/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  return null;
}

let cache: Map<string, Asset> | null = null;

function load(): Map<string, Asset> {
  if (cache) return cache;
  const assets = new Map<string, Asset>();
  const dir = uiDir();
  if (dir) {
    for (const name of readdirSync(dir)) {
      const ext = NAME_RE.exec(name)?.[1];
      if (!ext) continue;
      const body = readFileSync(dir + name);
      assets.set(name, { body, type: TYPES[ext]!, hash: createHash('sha256').update(body).digest('base64url').slice(0, 12) });
    }
  }
  // An empty map (UI not built) is not cached, so building later is picked up without a restart.
  if (assets.size > 0) cache = assets;
  return assets;
}

export function getAsset(name: string): Asset | null {
  return load().get(name) ?? null;
}

/** `{prefix}/assets/name?v=hash`; without the hash when the UI was not built. */
export function assetUrl(prefix: string, name: string): string {
  const asset = getAsset(name);
  return `${prefix}/assets/${name}${asset ? `?v=${asset.hash}` : ''}`;
}

/** For tests and the build: forget what was read, so the next request reads dist/ui again. */
export function resetAssetCache(): void {
  cache = null;
}

/** `sub` is the path below the prefix, e.g. `/assets/verify.js` (canonical, no query). */
export function serveAsset(req: IncomingMessage, res: ServerResponse, requestId: string, sub: string): void {
  const name = sub.slice('/assets/'.length);
  const asset = NAME_RE.test(name) ? getAsset(name) : null;
  if (!asset) throw new GatewayError('NOT_FOUND');
  const etag = `"${asset.hash}"`;
  const headers = {
    'content-type': asset.type,
    'cache-control': 'public, max-age=3600',
    etag,
    'x-content-type-options': 'nosniff',
    'x-request-id': requestId,
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': asset.body.length });
  res.end(asset.body);
}
