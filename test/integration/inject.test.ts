// inject_client: true through a running gateway (SPEC §5): the drop-in script tag is added to the
// app's documents — also when the app compresses them or sends a CSP — and nothing else changes:
// fragments, HEAD, range, non-200 and non-HTML answers pass byte for byte.
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { gatewayYamlFor, startScriptedUpstream, type ScriptedUpstream } from '../helpers/scripted-upstream.js';

const PAGE = '<!doctype html><html><head><title>App</title></head><body>Hello</body></html>';
const TAG = '<script src="/__stepup/client.js" defer></script>';
const INJECTED = PAGE.replace('<head>', `<head>${TAG}`);

let upstream: ScriptedUpstream;
let t: TestGateway;

beforeAll(async () => {
  upstream = await startScriptedUpstream((req, res) => {
    const accepts = String(req.headers['accept-encoding'] ?? '');
    const html = { 'content-type': 'text/html; charset=utf-8', etag: '"v1"' };
    switch (req.url) {
      case '/page':
        res.writeHead(200, { ...html, 'content-length': Buffer.byteLength(PAGE) });
        return void res.end(PAGE);
      case '/gzip': // compresses whatever the client asked for, as some apps do
        res.writeHead(200, { ...html, 'content-encoding': 'gzip', 'x-asked': accepts });
        return void res.end(gzipSync(PAGE));
      case '/br':
        res.writeHead(200, { ...html, 'content-encoding': 'br' });
        return void res.end(brotliCompressSync(PAGE));
      case '/csp':
        res.writeHead(200, {
          ...html,
          'content-security-policy': "default-src 'none'; script-src https://cdn.example.com; style-src 'unsafe-inline'",
          'content-security-policy-report-only': "default-src 'self'; report-uri /csp",
        });
        return void res.end(PAGE);
      case '/csp-nonce':
        res.writeHead(200, {
          ...html,
          'content-security-policy': "script-src 'nonce-app' 'strict-dynamic'; frame-src 'self'",
          'content-security-policy-report-only': "default-src 'none'; script-src 'nonce-app' 'strict-dynamic'",
        });
        return void res.end(PAGE);
      case '/fragment':
        res.writeHead(200, { 'content-type': 'text/html' });
        return void res.end('<div><head>not a document</head></div>');
      case '/missing':
        res.writeHead(404, { 'content-type': 'text/html' });
        return void res.end(PAGE);
      case '/json':
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end('{"a":"<head>"}');
      default:
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
    }
  });
  t = await startTestGateway({ gatewayYaml: (_u, dataDir) => gatewayYamlFor(upstream.url)(_u, dataDir) + 'inject_client: true\n' });
});
afterAll(async () => {
  await t.close();
  await upstream.close();
});

async function get(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(t.url + path, { method, headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}
const navigation = { 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate', 'accept-encoding': 'gzip, br' };

describe('HTML injection', () => {
  it('adds the script to a document, fixing the length and weakening the ETag', async () => {
    const r = await get('/page', navigation);
    expect(r.body).toBe(INJECTED);
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(INJECTED)));
    expect(r.headers.etag).toBe('W/"v1"');
    // The gateway asked the app for an uncompressed page.
    expect(upstream.seen.find((s) => s.url === '/page')!.headers['accept-encoding']).toBe('identity');
  });

  it('decompresses gzip and br pages it must modify', async () => {
    for (const path of ['/gzip', '/br']) {
      const r = await get(path, navigation);
      expect(r.body).toBe(INJECTED);
      expect(r.headers['content-encoding']).toBeUndefined();
    }
  });

  it('without Sec-Fetch headers, modifies only bodies that start like a document', async () => {
    expect((await get('/page')).body).toBe(INJECTED);
    expect((await get('/fragment')).body).toBe('<div><head>not a document</head></div>');
  });

  it('extends a CSP that would block the client by exactly that script and frames of the gateway pages', async () => {
    const r = await get('/csp', navigation);
    expect(r.body).toBe(INJECTED);
    expect(r.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src https://cdn.example.com http://localhost:8080/__stepup/client.js; style-src 'unsafe-inline'; frame-src http://localhost:8080/__stepup/",
    );
    expect(r.headers['content-security-policy-report-only']).toBe("default-src 'self'; report-uri /csp");
  });

  it("gives the tag a nonce for 'strict-dynamic', the same in the enforced and the report-only policy", async () => {
    const r = await get('/csp-nonce', navigation);
    const nonce = /<script src="\/__stepup\/client\.js" defer nonce="([^"]+)"><\/script>/.exec(r.body)?.[1];
    expect(nonce).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(r.headers['content-security-policy']).toBe(`script-src 'nonce-app' 'strict-dynamic' 'nonce-${nonce}'; frame-src 'self'`);
    expect(r.headers['content-security-policy-report-only']).toBe(`default-src 'none'; script-src 'nonce-app' 'strict-dynamic' 'nonce-${nonce}'; frame-src http://localhost:8080/__stepup/`);
  });

  it('leaves fragments fetched by scripts, HEAD, ranges, errors and non-HTML alone', async () => {
    const fetchDest = await get('/page', { 'sec-fetch-dest': 'empty', 'sec-fetch-mode': 'cors' });
    expect(fetchDest.body).toBe(PAGE);
    expect(fetchDest.headers.etag).toBe('"v1"');
    expect((await get('/page', navigation, 'HEAD')).headers['content-length']).toBe(String(Buffer.byteLength(PAGE)));
    expect((await get('/page', { ...navigation, range: 'bytes=0-10' })).body).toBe(PAGE);
    expect((await get('/missing', navigation)).body).toBe(PAGE);
    expect((await get('/json', navigation)).body).toBe('{"a":"<head>"}');
  });
});
