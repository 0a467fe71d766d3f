// The proxy half of the gateway, through a real gateway in front of a recording upstream (SPEC §4,
// §6, §7 framing, §9.9): what passes untouched, what the app never receives from a client (spoofed
// X-Stepgate-* and URL-override headers, hop-by-hop headers, ambiguous framing), and how failures
// of the upstream and of the identity look-up are answered — a gated request never reaches the app
// when the gate is in doubt.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { httpText, jsonOf, RawConnection, rawRequest } from '../helpers/raw.js';
import { answerJson, gatewayYamlFor, startScriptedUpstream, type ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { signInWithGrant } from '../helpers/stepup.js';

const GENERATED_ID = /^[A-Za-z0-9._-]{1,128}$/;

let t: TestGateway;
let scripted: ScriptedUpstream | null = null;
beforeEach(async () => {
  t = await startTestGateway();
});
afterEach(async () => {
  await t.close();
  await scripted?.close();
  scripted = null;
});

/** Replaces the default gateway with one in front of a scripted upstream. */
async function behind(handle: Parameters<typeof startScriptedUpstream>[0], upstreamTimeout?: string): Promise<ScriptedUpstream> {
  await t.close();
  scripted = await startScriptedUpstream(handle);
  t = await startTestGateway({ gatewayYaml: gatewayYamlFor(scripted.url, upstreamTimeout) });
  return scripted;
}

/** An upstream that answers like the recording one, with /api/me scripted. */
function appWithIdentity(me: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/api/me') return me(req, res);
    req.resume();
    req.on('end', () => answerJson(res, 200, { ok: true, url: req.url }));
  };
}

const raw = (text: string, opts?: { noBody?: boolean }) => rawRequest(t.url, text, opts);
const seenPaths = () => t.upstream.appRequests().map((r) => `${r.method} ${r.url}`);

describe('not-gated requests pass untouched', () => {
  it('forwards method, path and query byte for byte, the body and the client Host', async () => {
    const target = '/free/A%20b/c.json?x=%2f&y=%zz&z=a+b&&w=%E9&next=/../x;y';
    const res = await raw(httpText('PUT', target, { Host: 'app.example.com:3000', 'Content-Type': 'text/plain' }, 'hello=world&x=%E9\n'));
    expect(res.status).toBe(200);
    const seen = t.upstream.appRequests();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('PUT');
    expect(seen[0]!.url).toBe(target);
    expect(seen[0]!.headers.host).toBe('app.example.com:3000');
    expect(seen[0]!.headers['content-type']).toBe('text/plain');
    expect(seen[0]!.body).toBe('hello=world&x=%E9\n');
  });

  it('forwards the canonical path the gate evaluated', async () => {
    const res = await raw(httpText('GET', '//free/./x/../%61b//c?q=/../%2F'));
    expect(res.status).toBe(200);
    expect(seenPaths()).toEqual(['GET /free/ab/c?q=/../%2F']);
  });

  it('streams a chunked request body', async () => {
    const body = '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    const res = await raw(httpText('POST', '/free/upload', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'text/plain' }, body));
    expect(res.status).toBe(200);
    const seen = t.upstream.appRequests();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body).toBe('hello world');
  });

  it('forwards a HEAD as a HEAD, with no body in the answer', async () => {
    const res = await raw(httpText('HEAD', '/free/page'), { noBody: true });
    expect(res.status).toBe(200);
    expect(seenPaths()).toEqual(['HEAD /free/page']);
    // Nothing may follow the head of a HEAD answer on the connection.
    const conn = await RawConnection.open(t.url);
    conn.write(httpText('HEAD', '/free/page') + httpText('GET', '/free/next'));
    expect((await conn.readResponse({ noBody: true })).status).toBe(200);
    const next = await conn.readResponse();
    conn.close();
    expect(next.status).toBe(200);
    expect(jsonOf(next)).toMatchObject({ url: '/free/next' });
  });
});

describe('X-Request-Id', () => {
  const withId = async (id: string) => {
    const res = await request(t.url + '/free/x', { headers: { 'x-request-id': id } });
    await res.body.dump();
    return { answered: res.headers['x-request-id'] as string, sent: t.upstream.appRequests().at(-1)!.headers['x-request-id'] };
  };

  it("uses the client's valid id, replacing the one the app set", async () => {
    const id = 'Client-id_1.2-' + 'x'.repeat(114); // 128 characters
    expect(await withId(id)).toEqual({ answered: id, sent: id });
  });

  it.each([['bad id!'], ['x'.repeat(129)], ['y'.repeat(200)], ['a/b']])('replaces an invalid one (%s) with a generated id', async (bad) => {
    const { answered, sent } = await withId(bad);
    expect(answered).toMatch(GENERATED_ID);
    expect(answered).not.toBe(bad);
    expect(answered).not.toBe('upstream-set-this');
    expect(sent).toBe(answered);
  });

  it('carries an id on the gateway’s own refusals too', async () => {
    const res = await request(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: { 'x-request-id': 'refused-1' } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['x-request-id']).toBe('refused-1');
    expect(await res.body.json()).toMatchObject({ code: 'AUTH_REQUIRED', requestId: 'refused-1' });
  });
});

describe('header hygiene', () => {
  const spoofed = {
    'X-Stepgate-User': 'mallory',
    'X-Stepgate-Factor': 'passkey',
    'X-Stepgate-Rule': 'billing',
    'X-Stepgate-Verified-At': '2999-01-01T00:00:00Z',
    'X-Original-URL': '/me',
    'X-Rewrite-URL': '/me',
    'X-Forwarded-Uri': '/me',
    'X-Forwarded-Path': '/me',
    'X-Forwarded-Prefix': '/admin',
    'X-Forwarded-Method': 'DELETE',
    'X-Envoy-Original-Path': '/me',
    'X-Forwarded-For': '6.6.6.6, 10.0.0.1',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Host': 'evil.example',
  };
  const urlOverrides = ['x-original-url', 'x-rewrite-url', 'x-forwarded-uri', 'x-forwarded-path', 'x-forwarded-prefix', 'x-forwarded-method', 'x-envoy-original-path'];

  it('strips spoofed identity and URL-override headers on a free path and sets X-Forwarded-* itself', async () => {
    const res = await raw(httpText('GET', '/free/hygiene', spoofed));
    expect(res.status).toBe(200);
    const h = t.upstream.appRequests()[0]!.headers;
    expect(Object.keys(h).filter((n) => n.startsWith('x-stepgate-'))).toEqual([]);
    for (const name of urlOverrides) expect(h[name], name).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe('localhost:8080');
  });

  it('replaces spoofed X-Stepgate-* with its own on a gated path with a grant', async () => {
    const cookie = await signInWithGrant(t, 'alice');
    const res = await raw(httpText('PATCH', '/internal/org/acme/billing', { ...spoofed, Cookie: cookie }));
    expect(res.status).toBe(200);
    const h = t.upstream.appRequests().find((r) => r.url === '/internal/org/acme/billing')!.headers;
    expect(h['x-stepgate-user']).toBe('alice');
    expect(h['x-stepgate-factor']).toBe('totp');
    expect(h['x-stepgate-rule']).toBe('billing');
    expect(h['x-stepgate-verified-at']).not.toBe('2999-01-01T00:00:00Z');
    for (const name of urlOverrides) expect(h[name], name).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });

  // CGI-style servers (Rack, PHP's $_SERVER, WSGI environ) read `X_Stepgate_User` as HTTP_X_STEPGATE_USER,
  // the very variable `X-Stepgate-User` becomes: an underscore spelling is the same header to the app.
  it('strips underscore spellings the app reads as X-Stepgate-* or a URL override', async () => {
    const res = await raw(httpText('GET', '/free/underscores', { X_Stepgate_User: 'mallory', 'X-Stepgate_Factor': 'passkey', X_Original_URL: '/me' }));
    expect(res.status).toBe(200);
    const h = t.upstream.appRequests()[0]!.headers;
    const cgi = Object.keys(h).map((n) => n.replace(/-/g, '_'));
    expect(cgi.filter((n) => n.startsWith('x_stepgate_') || n === 'x_original_url')).toEqual([]);
  });

  it.each([['X-Stepgate-User'], ['cookie'], ['Authorization'], ['keep-alive, Cookie'], ['Host'], ['X-Forwarded-For'], ['X-HTTP-Method-Override']])(
    'refuses Connection: %s with 400 BAD_REQUEST',
    async (named) => {
      const res = await raw(httpText('GET', '/free/conn', { Connection: named, Cookie: signIn(t, 'alice'), Authorization: 'Bearer x', 'X-Stepgate-User': 'alice' }));
      expect(res.status).toBe(400);
      expect(jsonOf(res)).toMatchObject({ code: 'BAD_REQUEST' });
      expect(t.upstream.appRequests()).toEqual([]);
    },
  );

  it('does not forward hop-by-hop headers, nor headers Connection names', async () => {
    const res = await raw(
      httpText('GET', '/free/hop', {
        Connection: 'keep-alive, Upgrade, HTTP2-Settings, X-Custom-Hop',
        'Keep-Alive': 'timeout=5',
        TE: 'trailers',
        'Proxy-Authorization': 'Basic bWFsbG9yeTpzZWNyZXQ=',
        'Proxy-Connection': 'keep-alive',
        Upgrade: 'h2c',
        'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA',
        'X-Custom-Hop': '1',
      }),
    );
    expect(res.status).toBe(200);
    const h = t.upstream.appRequests()[0]!.headers;
    for (const name of ['keep-alive', 'te', 'proxy-authorization', 'proxy-connection', 'upgrade', 'http2-settings', 'x-custom-hop']) expect(h[name], name).toBeUndefined();
  });

  it('answers CONNECT with 405 METHOD_NOT_ALLOWED', async () => {
    const res = await raw(`CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n`);
    expect(t.upstream.seen).toEqual([]);
    expect(res.status).toBe(405);
    expect(jsonOf(res)).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
  });
});

describe('upstream failures (SPEC §9.9)', () => {
  it('answers 502 UPSTREAM_UNAVAILABLE when the upstream is down, and keeps serving', async () => {
    await t.upstream.close();
    for (const path of ['/free/a', '/free/b']) {
      const res = await request(t.url + path, { headers: { 'x-request-id': 'down-1' } });
      expect(res.statusCode).toBe(502);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(await res.body.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', requestId: 'down-1' });
    }
    const status = await request(t.url + '/__stepup/api/status');
    expect(status.statusCode).toBe(401);
    expect(await status.body.json()).toMatchObject({ code: 'AUTH_REQUIRED' });
  });

  it('answers 502 when the upstream resets the connection mid-request', async () => {
    // A TCP reset once the body starts to arrive (or at once for a request without one).
    await behind((req) => {
      req.once('data', () => req.socket.resetAndDestroy());
      if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) req.socket.resetAndDestroy();
    });
    const post = await request(t.url + '/free/upload', { method: 'POST', body: 'x'.repeat(64 * 1024) });
    expect(post.statusCode).toBe(502);
    expect(await post.body.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    const get = await request(t.url + '/free/page');
    expect(get.statusCode).toBe(502);
    expect(await get.body.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
  });

  it('answers 504 UPSTREAM_TIMEOUT when the upstream is slower than upstream_timeout', async () => {
    await behind((req, res) => {
      req.resume();
      setTimeout(() => answerJson(res, 200, { late: true }), 3_000).unref();
    }, '1s');
    const started = Date.now();
    const res = await request(t.url + '/free/slow', { headers: { 'x-request-id': 'slow-1' } });
    expect(res.statusCode).toBe(504);
    expect(await res.body.json()).toMatchObject({ code: 'UPSTREAM_TIMEOUT', requestId: 'slow-1' });
    expect(Date.now() - started).toBeLessThan(2_900);
    // The gateway keeps serving.
    expect((await request(t.url + '/__stepup/api/status')).statusCode).toBe(401);
  });
});

describe('identity failures on gated routes (SPEC §4.4)', () => {
  const cases: Array<[string, (req: IncomingMessage, res: ServerResponse) => void]> = [
    ['answers 500', (_req, res) => answerJson(res, 500, { error: 'boom' })],
    ['answers invalid JSON', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id": "alice"');
    }],
    ['redirects to a login page', (_req, res) => {
      res.writeHead(302, { location: '/login' });
      res.end();
    }],
    ['answers 502 with HTML', (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<h1>Bad gateway</h1>');
    }],
  ];

  it.each(cases)('503 IDENTITY_UNAVAILABLE when /api/me %s; a free route still passes', async (_name, me) => {
    const app = await behind(appWithIdentity(me));
    const gated = await request(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: { cookie: 'sid=s1' }, body: '{}' });
    expect(gated.statusCode).toBe(503);
    expect(await gated.body.json()).toMatchObject({ code: 'IDENTITY_UNAVAILABLE' });
    const free = await request(t.url + '/free/x', { headers: { cookie: 'sid=s1' } });
    expect(free.statusCode).toBe(200);
    await free.body.dump();
    expect(app.appRequests().map((r) => r.url)).toEqual(['/free/x']);
  });

  it('503 IDENTITY_UNAVAILABLE when /api/me hangs past 5 s', async () => {
    const app = await behind(appWithIdentity(() => {}), '30s');
    const started = Date.now();
    const gated = await request(t.url + '/me', { method: 'DELETE', headers: { cookie: 'sid=s1' } });
    expect(gated.statusCode).toBe(503);
    expect(await gated.body.json()).toMatchObject({ code: 'IDENTITY_UNAVAILABLE' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
    const free = await request(t.url + '/free/x', { headers: { cookie: 'sid=s1' } });
    expect(free.statusCode).toBe(200);
    await free.body.dump();
    expect(app.appRequests().map((r) => r.url)).toEqual(['/free/x']);
  }, 20_000);
});

describe('anonymous requests and credentials', () => {
  it('401 AUTH_REQUIRED for anonymous requests on a gated route, also with an unknown token', async () => {
    for (const headers of [{}, { authorization: 'Bearer nobody' }, { cookie: 'sid=expired' }]) {
      const res = await request(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers, body: '{}' });
      expect(res.statusCode).toBe(401);
      expect(await res.body.json()).toMatchObject({ code: 'AUTH_REQUIRED' });
    }
    expect(t.upstream.appRequests()).toEqual([]);
  });

  it('forwards anonymous requests on an `anonymous: allow` rule, body byte for byte', async () => {
    const res = await request(t.url + '/signup', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40b.example&name=A+B' });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(t.upstream.appRequests().map((r) => [r.method, r.url, r.body])).toEqual([['POST', '/signup', 'email=a%40b.example&name=A+B']]);
  });

  const withCredential: Array<[string, string, Record<string, string>, string | Buffer]> = [
    ['in the query', '/signup?x=1&access_token=abc', {}, ''],
    ['in the query, any case', '/signup?ACCESS_TOKEN=abc', {}, ''],
    ['in an urlencoded body', '/signup', { 'content-type': 'application/x-www-form-urlencoded' }, 'email=a&access_token=abc'],
    ['in an urlencoded body, PHP-style', '/signup', { 'content-type': 'application/x-www-form-urlencoded' }, 'email=a&access_token%5B%5D=abc'],
    ['in a JSON body', '/signup', { 'content-type': 'application/json' }, '{"email":"a","access_token":"abc"}'],
    ['in a multipart body', '/signup', { 'content-type': 'multipart/form-data; boundary=XX' }, '--XX\r\nContent-Disposition: form-data; name="access_token"\r\n\r\nabc\r\n--XX--\r\n'],
    ['in a body that cannot be inspected (gzip)', '/signup', { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, gzipSync('access_token=abc')],
  ];
  it.each(withCredential)('401 for an anonymous request carrying access_token %s', async (_name, path, headers, body) => {
    const res = await request(t.url + path, { method: 'POST', headers, body });
    expect(res.statusCode).toBe(401);
    expect(await res.body.json()).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(t.upstream.appRequests()).toEqual([]);
  });

  it('400 AMBIGUOUS_IDENTITY for a session cookie and a Bearer token of two users', async () => {
    const cookie = signIn(t, 'alice');
    t.upstream.sessions.set('tok-bob', { id: 'bob', email: 'bob@example.com' });
    const res = await request(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: { cookie, authorization: 'Bearer tok-bob' }, body: '{}' });
    expect(res.statusCode).toBe(400);
    expect(await res.body.json()).toMatchObject({ code: 'AMBIGUOUS_IDENTITY' });
    expect(t.upstream.appRequests()).toEqual([]);
  });
});

describe('one connection, several requests', () => {
  it('gates each pipelined request on its own', async () => {
    const cookie = signIn(t, 'alice');
    const conn = await RawConnection.open(t.url);
    conn.write(httpText('GET', '/free/1', { Cookie: cookie }) + httpText('DELETE', '/me', { Cookie: cookie }) + httpText('GET', '/free/2', { Cookie: cookie }));
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await conn.readResponse()).status);
    conn.close();
    expect(statuses).toEqual([200, 403, 200]);
    expect(seenPaths()).toEqual(['GET /free/1', 'GET /free/2']);
  });

  it('forwards a request hidden in a body as body bytes, never as a request', async () => {
    const hidden = httpText('DELETE', '/me', { Cookie: signIn(t, 'alice') });
    const res = await raw(httpText('POST', '/free/a', { 'Content-Type': 'text/plain' }, hidden));
    expect(res.status).toBe(200);
    const seen = t.upstream.appRequests();
    expect(seen.map((r) => [r.method, r.url, r.body])).toEqual([['POST', '/free/a', hidden]]);
  });
});

describe('request framing (SPEC §7): refused, connection closed, nothing forwarded', () => {
  const smuggled = 'DELETE /me HTTP/1.1\r\nHost: localhost\r\nCookie: sid=victim\r\n\r\n';
  const cases: Array<[string, string]> = [
    ['Content-Length with Transfer-Encoding', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`],
    ['Transfer-Encoding with Content-Length', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 62\r\n\r\n0\r\n\r\n${smuggled}`],
    ['two equal Content-Length headers', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`],
    ['two different Content-Length headers', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nContent-Length: 62\r\n\r\n${smuggled}`],
    ['a list in Content-Length', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 5\r\n\r\nhello`],
    ['a signed Content-Length', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello`],
    ['Transfer-Encoding: gzip, chunked', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
    ['Transfer-Encoding twice', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['Transfer-Encoding: identity', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n\r\nhello`],
    ['an obs-folded header', `GET /free/a HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n  b\r\n\r\n`],
    ['an obs-folded Transfer-Encoding', `POST /free/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello`],
  ];

  it.each(cases)('%s → 400', async (_name, text) => {
    const conn = await RawConnection.open(t.url);
    conn.write(text);
    const res = await conn.readResponse();
    expect(res.status).toBe(400);
    expect(jsonOf(res)).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await conn.waitClosed()).toBe(true);
    conn.close();
    expect(t.upstream.seen).toEqual([]);
  });
});
