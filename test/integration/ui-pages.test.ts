// The hosted pages as HTTP: assets under {prefix}/assets (types, caching, nothing else reachable),
// the pages' security headers (CSP without inline scripts, no-referrer), what the verify page
// offers for the user's factors and the rule, and the no-JavaScript form post as a browser sends
// it (Origin: null under no-referrer). The real-browser side is in test/browser.
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../../src/errors.js';
import { resetAssetCache, serveAsset } from '../../src/stepup/assets.js';
import { oathtool, signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { enrolTotp } from '../helpers/stepup.js';

let t: TestGateway;
beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-ui.mjs', '--quiet'], { stdio: 'inherit' });
  resetAssetCache();
});
beforeEach(async () => {
  t = await startTestGateway();
});
afterEach(async () => {
  await t.close();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(t.url + path, { headers, redirect: 'manual' });

describe('GET {prefix}/assets/*', () => {
  it('serves the bundles with their types, an hour of caching and an ETag', async () => {
    const js = await get('/__stepup/assets/verify.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    const body = await js.text();
    expect(body.length).toBeGreaterThan(1000);
    expect(body).not.toMatch(/https?:\/\/(cdn|unpkg|jsdelivr)/);
    const etag = js.headers.get('etag')!;
    expect((await get('/__stepup/assets/verify.js', { 'if-none-match': etag })).status).toBe(304);
    const css = await get('/__stepup/assets/style.css?v=whatever');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await get('/__stepup/assets/settings.js')).status).toBe(200);
  });

  it('answers 404 for anything else, and never reaches outside dist/ui', async () => {
    for (const path of ['/__stepup/assets/nope.js', '/__stepup/assets/', '/__stepup/assets/sub/verify.js', '/__stepup/assets/.hidden.js', '/__stepup/assets/verify.ts', '/__stepup/assets/VERIFY.JS']) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe('NOT_FOUND');
    }
    // Whatever the canonical path looks like, a name is only ever looked up in the map of dist/ui.
    const fakeRes = {} as ServerResponse;
    for (const sub of ['/assets/../package.json', '/assets/..%2fpackage.json', '/assets/..\\package.json', '/assets/%2e%2e', '/assets//etc/passwd', '/assets/verify.js/']) {
      expect(() => serveAsset({ headers: {} } as IncomingMessage, fakeRes, 'r', sub), sub).toThrow(GatewayError);
    }
    expect((await fetch(t.url + '/__stepup/assets/verify.js', { method: 'POST' })).status).toBe(405);
  });
});

describe('the verify page', () => {
  it('carries CSP without inline scripts, no-referrer, and passes data in a JSON block', async () => {
    const cookie = signIn(t, 'alice');
    await enrolTotp(t, cookie);
    const res = await get('/__stepup/verify?rule=billing&return_to=%2Finternal%2Forg%2Facme%2Fbilling', { cookie });
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("frame-ancestors 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const html = await res.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]!);
    expect(scripts.length).toBe(2);
    for (const attrs of scripts) expect(attrs).toMatch(/\bsrc="\/__stepup\/assets\/verify\.js\?v=[\w-]+"|type="application\/json"/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).toContain('autocomplete="one-time-code"');
    expect(html).toContain('inputmode="numeric"');
    // Offered: TOTP (enrolled) and recovery; no passkey (none enrolled).
    expect(html).toContain('id="sg-totp"');
    expect(html).toContain('data-use="recovery"');
    expect(html).not.toContain('id="sg-passkey"');
    const data = JSON.parse(/<script type="application\/json" id="sg-data">(.*?)<\/script>/s.exec(html)![1]!);
    expect(data).toMatchObject({ prefix: '/__stepup', returnTo: '/internal/org/acme/billing', passkey: false, totp: true, recovery: true, embed: false, publicOrigin: 'http://localhost:8080' });
  });

  it('escapes what it reflects, in HTML and in the JSON block', async () => {
    const cookie = signIn(t, 'alice');
    await enrolTotp(t, cookie);
    const evil = '</script><script>alert(1)</script>';
    const res = await get(`/__stepup/verify?rule=${encodeURIComponent(evil)}&stash=${encodeURIComponent(evil)}&return_to=${encodeURIComponent('/x"><img src=x onerror=alert(1)>')}`, { cookie });
    const html = await res.text();
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('\\u003c/script>');
  });

  it('asks a user without factors to set one up, and names the way back', async () => {
    const cookie = signIn(t, 'alice');
    const html = await (await get('/__stepup/verify?rule=billing&return_to=%2Fx', { cookie })).text();
    expect(html).toContain('id="sg-enroll"');
    const href = /id="sg-enroll" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&');
    expect(new URL(href, t.url).pathname).toBe('/__stepup/settings');
    expect(new URL(href, t.url).searchParams.get('return_to')).toBe('/__stepup/verify?rule=billing&return_to=%2Fx');
  });

  it('offers only the passkey on a passkey-only rule, with the reason', async () => {
    const cookie = signIn(t, 'alice');
    await enrolTotp(t, cookie);
    const html = await (await get('/__stepup/verify?rule=device-trust&return_to=%2F', { cookie })).text();
    expect(html).toContain('accepts only a passkey');
    expect(html).not.toContain('id="sg-totp"');
    expect(html).not.toContain('id="sg-recovery"');
    expect(html).toContain('You don’t have a passkey set up yet.');
  });

  it('answers an HTML page (not JSON) to someone not signed in', async () => {
    const res = await get('/__stepup/verify?return_to=%2F');
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toContain('Sign in first');
    const settings = await get('/__stepup/settings');
    expect(settings.status).toBe(401);
    expect(settings.headers.get('content-type')).toBe('text/html; charset=utf-8');
  });

  it('falls back to the browser session when the ticket is unknown or expired', async () => {
    const cookie = signIn(t, 'alice');
    await enrolTotp(t, cookie);
    const html = await (await get('/__stepup/verify?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&return_to=%2F', { cookie })).text();
    expect(html).toContain('id="sg-totp"');
    expect(html).not.toContain('name="ticket"');
  });

  it('renders the embed mode chrome-less with a Cancel button', async () => {
    const cookie = signIn(t, 'alice');
    await enrolTotp(t, cookie);
    const html = await (await get('/__stepup/verify?return_to=%2F&embed=1', { cookie })).text();
    expect(html).toMatch(/<html lang="en" class="embed"/);
    expect(html).not.toContain('class="brand"');
    expect(html).toContain('id="sg-cancel"');
    expect(html).toContain('"embed":true');
  });
});

describe('POST {prefix}/verify as a browser sends it', () => {
  it('accepts Origin: null with Sec-Fetch-Site: same-origin (no-referrer pages), and nothing else that is null', async () => {
    const cookie = signIn(t, 'alice');
    const secret = await enrolTotp(t, cookie);
    const post = (headers: Record<string, string>) =>
      fetch(t.url + '/__stepup/verify', {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ code: oathtool(secret, t.clock.now()), return_to: '/done' }),
      });
    expect((await post({ origin: 'null' })).status).toBe(403);
    expect((await post({ origin: 'null', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await post({ origin: 'null', 'sec-fetch-site': 'same-site' })).status).toBe(403);
    const ok = await post({ origin: 'null', 'sec-fetch-site': 'same-origin' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('http://localhost:8080/done');
  });

  it('re-renders the form with the error and the lockout time left', async () => {
    const cookie = signIn(t, 'alice');
    await enrolTotp(t, cookie);
    let last: Response | undefined;
    for (let i = 0; i < 6; i++) {
      last = await fetch(t.url + '/__stepup/verify', {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:8080' },
        body: new URLSearchParams({ code: '000000', return_to: '/', rule: 'billing' }),
      });
    }
    expect(last!.status).toBe(429);
    expect(last!.headers.get('retry-after')).toBe('900');
    const html = await last!.text();
    expect(html).toContain('role="alert"');
    expect(html).toContain('"retryAfter":900');
  });
});
