// The drop-in client (SPEC §5, docs/drop-in.md) in a real browser: headless Chromium, the real
// gateway with `inject_client: true`, and the UNMODIFIED demo app behind a small recording proxy
// (which can also gzip the app's pages or give them a strict CSP). For each shape of legacy front
// end — fetch, XMLHttpRequest, an HTML form post, a download link — the gated action completes
// after the user steps up, the app receives it exactly once with what the user typed, and the
// app's own code never sees the 403 (unless the user cancels, when it gets exactly that 403).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import { oathtool } from '../helpers/gateway.js';
import { buildUi, launchBrowser, openTab, signIn, startStack, type Front, type Stack, type Tab, type TabOptions } from './harness.js';

/** The demo app's sensitive routes, each shape of front end represented. */
const ROUTES = `
defaults:
  max_age: 10m
rules:
  - name: billing
    match:
      - PATCH /internal/org/:key/billing
      - POST  /internal/org/:key/billing/*
    max_age: 5m
  - name: invites
    match: POST /portal/org/users/invite
  - name: close-account
    match: DELETE /me
    once: true
  - name: password-change
    match: POST /account/password
  - name: api-keys
    match: POST|DELETE /account/api-keys/*
  - name: exports
    match: GET /reports/*
`;

// ---------------------------------------------------------------------------------------------
// The recording front: what the app really received
// ---------------------------------------------------------------------------------------------

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface FrontOptions {
  /** Compress every text/html answer with gzip, whatever the request asked for (as some apps do). */
  gzipHtml?: boolean;
  /** A Content-Security-Policy for the app's HTML pages; `{nonce}` is replaced, and the app's own scripts and styles get that nonce. */
  csp?: string;
  /** Also sent as Content-Security-Policy-Report-Only. */
  cspReportOnly?: string;
}

interface Recorder extends Front {
  seen: Seen[];
  /** How many requests the app received for this method and path (query included). */
  count(method: string, path: string): number;
  bodies(method: string, path: string): string[];
  /** What the front sent back for HTML pages: content-encoding, CSP. */
  htmlAnswers: Array<{ path: string; acceptEncoding: string | undefined; contentEncoding: string | undefined; csp: string | undefined }>;
}

function startRecorder(appUrl: string, opts: FrontOptions = {}): Promise<Recorder> {
  const target = new URL(appUrl);
  const seen: Seen[] = [];
  const htmlAnswers: Recorder['htmlAnswers'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: body.toString('utf8') });
      const headers = { ...req.headers };
      delete headers.connection;
      delete headers['keep-alive'];
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
      const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false }, (answer) => {
        const type = String(answer.headers['content-type'] ?? '');
        const out = { ...answer.headers };
        delete out.connection;
        delete out['transfer-encoding'];
        if (!type.startsWith('text/html') || (!opts.gzipHtml && !opts.csp)) {
          res.writeHead(answer.statusCode ?? 502, out);
          answer.pipe(res);
          return;
        }
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () => {
          let html = Buffer.concat(parts).toString('utf8');
          if (opts.csp) {
            // A nonce-based page: every script of the app's own carries this response's nonce.
            const nonce = randomBytes(12).toString('base64');
            html = html.replace(/<(script|style)(?=[\s>])/g, `<$1 nonce="${nonce}"`);
            out['content-security-policy'] = opts.csp.replaceAll('{nonce}', nonce);
            if (opts.cspReportOnly) out['content-security-policy-report-only'] = opts.cspReportOnly.replaceAll('{nonce}', nonce);
          }
          let bytes = Buffer.from(html);
          if (opts.gzipHtml) {
            bytes = gzipSync(bytes);
            out['content-encoding'] = 'gzip';
          }
          out['content-length'] = String(bytes.length);
          htmlAnswers.push({
            path: req.url ?? '',
            acceptEncoding: req.headers['accept-encoding'],
            contentEncoding: out['content-encoding'] as string | undefined,
            csp: out['content-security-policy'] as string | undefined,
          });
          res.writeHead(answer.statusCode ?? 502, out);
          res.end(bytes);
        });
      });
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      up.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        seen,
        htmlAnswers,
        count: (method, path) => seen.filter((s) => s.method === method && s.path === path).length,
        bodies: (method, path) => seen.filter((s) => s.method === method && s.path === path).map((s) => s.body),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

let browser: Browser;
let stack: Stack | null = null;
let tabs: Tab[] = [];

beforeAll(async () => {
  buildUi();
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const t of tabs) await t.context.close();
  tabs = [];
  await stack?.close();
  stack = null;
});

interface Setup extends Tab {
  s: Stack;
  app: Recorder;
}

async function setup(opts: TabOptions & FrontOptions = {}): Promise<Setup> {
  let app: Recorder | null = null;
  stack = await startStack({
    routes: ROUTES,
    extra: 'inject_client: true',
    front: async (appUrl) => (app = await startRecorder(appUrl, opts)),
  });
  const t = await openTab(browser, opts);
  tabs.push(t);
  // In the app's top-level pages: what the drop-in client announced, how many modals it opened,
  // and every CSP violation (the app's own scripts must never be refused).
  await t.context.addInitScript(() => {
    const w = window as unknown as { sg: { ok: number; cancel: number; modals: number; csp: string[] } };
    w.sg = { ok: 0, cancel: 0, modals: 0, csp: [] };
    document.addEventListener('securitypolicyviolation', (e) => w.sg.csp.push(`${e.disposition} ${e.effectiveDirective} ${e.blockedURI}`));
    if (window.top !== window) return;
    window.addEventListener('stepup:ok', () => w.sg.ok++);
    window.addEventListener('stepup:cancel', () => w.sg.cancel++);
    new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) if (n instanceof Element && n.getAttribute('data-stepgate') === 'modal') w.sg.modals++;
    }).observe(document, { childList: true, subtree: true });
  });
  return { ...t, s: stack, app: app! };
}

const text = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? '').trim();
const sg = (page: Page) => page.evaluate(() => (window as unknown as { sg: { ok: number; cancel: number; modals: number; csp: string[] } }).sg);
const MODAL = '[data-stepgate="modal"]';
const modalFrame = (page: Page): FrameLocator => page.frameLocator(`${MODAL} iframe`);

/** The first factor, added on the settings page (no verification needed for it). */
async function enrolPasskey(page: Page, s: Stack): Promise<void> {
  await page.goto(`${s.origin}/__stepup/settings`);
  await page.click('#sg-add-passkey');
  await page.fill('#sg-passkey-name', 'Laptop');
  await page.click('#sg-passkey-form button[type=submit]');
  await page.locator('#sg-codes').waitFor({ state: 'visible' });
  await page.click('#sg-codes-done');
}

/** The authenticator app, enrolled through the JSON API with the browser's cookies; the clock then moves past the step used. */
async function enrolTotp(page: Page, s: Stack): Promise<string> {
  const start = await page.request.post(`${s.origin}/__stepup/api/enroll/totp`, { data: {} });
  expect(start.status()).toBe(200);
  const { secret } = (await start.json()) as { secret: string };
  const confirm = await page.request.post(`${s.origin}/__stepup/api/enroll/totp/confirm`, { data: { code: oathtool(secret, s.clock.now()) } });
  expect(confirm.status()).toBe(200);
  s.clock.advance(30_000);
  return secret;
}

/** The page's own result element gets written by the app's code. */
async function resultOf(page: Page, id: string): Promise<string> {
  await page.waitForFunction((el) => (document.getElementById(el)?.textContent ?? '').length > 0, id);
  return text(page, `#${id}`);
}

async function clear(page: Page, ...ids: string[]): Promise<void> {
  await page.evaluate((list) => list.forEach((id) => (document.getElementById(id)!.textContent = '')), ids);
}

/** The modal is up with the verify page loaded inside it; returns the iframe's URL. */
async function modalOpened(page: Page, rule: string): Promise<URL> {
  await page.locator(MODAL).waitFor();
  expect(await page.locator(MODAL).count()).toBe(1);
  const src = new URL((await page.locator(`${MODAL} iframe`).getAttribute('src'))!);
  expect(src.pathname).toBe('/__stepup/verify');
  expect(src.searchParams.get('embed')).toBe('1');
  expect(src.searchParams.get('rule')).toBe(rule);
  await modalFrame(page).locator('#sg-title').waitFor();
  return src;
}

async function passkeyInModal(page: Page): Promise<void> {
  await modalFrame(page).locator('#sg-passkey-btn').click();
  await page.locator(MODAL).waitFor({ state: 'detached' });
}

async function saveBilling(page: Page, plan: string, seats: number): Promise<void> {
  await page.selectOption('#plan', plan);
  await page.fill('#seats', String(seats));
  await page.click('button:has-text("Save billing settings")');
}

// ---------------------------------------------------------------------------------------------

describe('drop-in client: fetch and XMLHttpRequest meet the modal', () => {
  it('fetch: a passkey in the modal, then the PATCH reaches the app once and the page shows its answer', async () => {
    const { page, s, app, problems, httpErrors } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    await page.goto(`${s.origin}/billing`);
    // Injected once, into the document only.
    expect(await page.locator('script[src="/__stepup/client.js"]').count()).toBe(1);
    expect(await page.evaluate(() => typeof window.stepgate?.fetch)).toBe('function');

    await saveBilling(page, 'enterprise', 17);
    await modalOpened(page, 'billing');
    // Focus moved into the modal; it sits above everything.
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('IFRAME');
    expect(await page.locator(MODAL).evaluate((el) => getComputedStyle(el).zIndex)).toBe('2147483647');
    expect(await page.locator(`${MODAL} [role="dialog"]`).getAttribute('aria-modal')).toBe('true');
    await passkeyInModal(page);

    const out = await resultOf(page, 'billing-out');
    expect(out).toMatch(/^200 OK/);
    expect(JSON.parse(out.slice(out.indexOf('\n') + 1))).toMatchObject({
      ok: true,
      billing: { plan: 'enterprise', seats: 17 },
      stepgate: { 'x-stepgate-factor': 'passkey', 'x-stepgate-rule': 'billing', 'x-stepgate-user': 'u-alice' },
    });
    expect(app.count('PATCH', '/internal/org/acme/billing')).toBe(1);
    expect(JSON.parse(app.bodies('PATCH', '/internal/org/acme/billing')[0]!)).toEqual({ plan: 'enterprise', seats: 17 });
    expect(await sg(page)).toEqual({ ok: 1, cancel: 0, modals: 1, csp: [] });
    // The focus went back to where it was.
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Save billing settings');

    // Within the window the next save passes without a modal.
    await clear(page, 'billing-out');
    await saveBilling(page, 'team', 9);
    expect(await resultOf(page, 'billing-out')).toMatch(/^200 OK/);
    expect(app.count('PATCH', '/internal/org/acme/billing')).toBe(2);
    expect((await sg(page)).modals).toBe(1);
    expect(httpErrors).toEqual(['403 PATCH /internal/org/acme/billing']);
    expect(problems).toEqual([]);
  });

  it('XMLHttpRequest (responseType json): a TOTP code in the modal; method, headers, body and responseType survive the retry', async () => {
    const { page, s, app, problems, httpErrors } = await setup({ authenticator: false });
    await signIn(page, s.origin);
    const secret = await enrolTotp(page, s);
    await page.goto(`${s.origin}/account`);
    await page.fill('#key-name', 'CI deploys');
    await page.click('#create-key');
    await modalOpened(page, 'api-keys');
    const frame = modalFrame(page);
    // No passkey: the code input is there at once.
    await frame.locator('#sg-totp-code').waitFor({ state: 'visible' });
    await frame.locator('#sg-totp-code').fill('000000');
    await frame.locator('#sg-totp button[type=submit]').click();
    await frame.locator('#sg-status .msg-error').waitFor();
    expect(await page.locator(MODAL).count()).toBe(1);
    await frame.locator('#sg-totp-code').fill(oathtool(secret, s.clock.now()));
    await frame.locator('#sg-totp button[type=submit]').click();
    await page.locator(MODAL).waitFor({ state: 'detached' });

    const out = await resultOf(page, 'keys-out');
    expect(out).toMatch(/^201 Created\n/);
    // JSON.stringify(this.response) printed an object: responseType 'json' held on the retry.
    expect(JSON.parse(out.slice(out.indexOf('\n') + 1))).toMatchObject({ name: 'CI deploys', key: expect.stringMatching(/^acme_/), stepgate: { 'x-stepgate-factor': 'totp' } });
    expect(app.count('POST', '/account/api-keys')).toBe(1);
    const sent = app.seen.find((r) => r.method === 'POST' && r.path === '/account/api-keys')!;
    expect(JSON.parse(sent.body)).toEqual({ name: 'CI deploys' });
    expect(sent.headers['x-requested-with']).toBe('XMLHttpRequest');
    expect(sent.headers['content-type']).toMatch(/^application\/json/);
    expect(await sg(page)).toEqual({ ok: 1, cancel: 0, modals: 1, csp: [] });
    expect(httpErrors).toEqual(['403 POST /account/api-keys', '400 POST /__stepup/api/verify/totp']);
    expect(problems).toEqual([]);
  });

  it('Cancel (button) and Escape hand the app the original 403 and fire stepup:cancel', async () => {
    const { page, s, app, problems } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);

    // fetch, the modal's Cancel button.
    await page.goto(`${s.origin}/billing`);
    await saveBilling(page, 'starter', 2);
    await modalOpened(page, 'billing');
    await page.click('[data-stepgate="cancel"]');
    await page.locator(MODAL).waitFor({ state: 'detached' });
    const fetched = await resultOf(page, 'billing-out');
    expect(fetched).toMatch(/^403 Forbidden\n/);
    expect(JSON.parse(fetched.slice(fetched.indexOf('\n') + 1))).toMatchObject({ code: 'STEP_UP_REQUIRED', rule: 'billing' });
    expect(await sg(page)).toMatchObject({ ok: 0, cancel: 1, modals: 1 });
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Save billing settings');

    // XMLHttpRequest, Escape pressed inside the modal.
    await page.goto(`${s.origin}/account`);
    await page.click('#create-key');
    await modalOpened(page, 'api-keys');
    await modalFrame(page).locator('#sg-passkey-btn').waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await page.locator(MODAL).waitFor({ state: 'detached' });
    const xhr = await resultOf(page, 'keys-out');
    expect(xhr).toMatch(/^403 Forbidden\n/);
    expect(JSON.parse(xhr.slice(xhr.indexOf('\n') + 1))).toMatchObject({ code: 'STEP_UP_REQUIRED', rule: 'api-keys' });
    expect(await sg(page)).toMatchObject({ ok: 0, cancel: 1, modals: 1 });

    // Escape with the focus on the app's page (outside the frame) closes it too.
    await clear(page, 'close-out');
    await page.click('button:has-text("Close my account")');
    await modalOpened(page, 'close-account');
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.keyboard.press('Escape');
    await page.locator(MODAL).waitFor({ state: 'detached' });
    expect(await resultOf(page, 'close-out')).toMatch(/^403 Forbidden\n/);
    expect(await sg(page)).toMatchObject({ ok: 0, cancel: 2, modals: 2 });

    // An app that gives up on its fetch (AbortController) while the modal is open: its promise
    // rejects at once, as fetch's would; verifying afterwards sends nothing.
    await page.evaluate(() => {
      const w = window as unknown as { aborted: Promise<string>; controller: AbortController };
      w.controller = new AbortController();
      w.aborted = fetch('/me', { method: 'DELETE', signal: w.controller.signal }).then(
        (res) => `answered ${res.status}`,
        (err: Error) => `rejected ${err.name}`,
      );
    });
    await modalOpened(page, 'close-account');
    expect(await page.evaluate(() => {
      const w = window as unknown as { aborted: Promise<string>; controller: AbortController };
      w.controller.abort();
      return w.aborted;
    })).toBe('rejected AbortError');
    await passkeyInModal(page);
    await page.waitForTimeout(300);

    expect(app.count('PATCH', '/internal/org/acme/billing') + app.count('POST', '/account/api-keys') + app.count('DELETE', '/me')).toBe(0);
    expect(problems).toEqual([]);
  });

  it('a user without any factor sets up a passkey inside the modal, and the action then completes', async () => {
    const { page, s, app, problems } = await setup();
    await signIn(page, s.origin);
    await page.goto(`${s.origin}/billing`);
    await saveBilling(page, 'team', 11);
    await modalOpened(page, 'billing');
    const frame = modalFrame(page);
    await frame.locator('#sg-enroll').click();
    await frame.locator('#sg-add-passkey').click();
    await frame.locator('#sg-passkey-name').fill('Laptop');
    await frame.locator('#sg-passkey-form button[type=submit]').click();
    await frame.locator('#sg-codes-done').click();
    await frame.locator('#sg-continue-link').click();
    // Back on the verify page, still inside the modal (embed mode kept), then verified.
    await frame.locator('#sg-passkey-btn').waitFor({ state: 'visible' });
    expect(await frame.locator('html').getAttribute('class')).toContain('embed');
    await passkeyInModal(page);
    expect(await resultOf(page, 'billing-out')).toMatch(/^200 OK/);
    expect(app.count('PATCH', '/internal/org/acme/billing')).toBe(1);
    expect(await sg(page)).toEqual({ ok: 1, cancel: 0, modals: 1, csp: [] });
    expect(problems).toEqual([]);
  });

  it('two concurrent gated fetches share one modal and both complete', async () => {
    const { page, s, app, problems, httpErrors } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    await page.goto(`${s.origin}/billing`);
    await page.fill('#invoice-to', 'accounts@example.com');
    // Both buttons, one right after the other: two requests in flight before the first 403.
    await page.evaluate(() => {
      (document.querySelector('#billing button') as HTMLButtonElement).click();
      (document.getElementById('send-invoice') as HTMLButtonElement).click();
    });
    await modalOpened(page, 'billing');
    await expect.poll(() => httpErrors.length).toBe(2);
    expect(await page.locator(MODAL).count()).toBe(1);
    await passkeyInModal(page);
    expect(await resultOf(page, 'billing-out')).toMatch(/^200 OK/);
    const invoice = await resultOf(page, 'invoice-out');
    expect(invoice).toMatch(/^200 OK/);
    expect(JSON.parse(invoice.slice(invoice.indexOf('\n') + 1))).toMatchObject({ action: 'invoices/send', billing: { to: 'accounts@example.com' } });
    expect(app.count('PATCH', '/internal/org/acme/billing')).toBe(1);
    expect(app.count('POST', '/internal/org/acme/billing/invoices/send')).toBe(1);
    expect(await sg(page)).toEqual({ ok: 1, cancel: 0, modals: 1, csp: [] });
    expect(httpErrors.sort()).toEqual(['403 PATCH /internal/org/acme/billing', '403 POST /internal/org/acme/billing/invoices/send']);
    expect(problems).toEqual([]);
  });

  it('a once rule asks for every action; a retry challenged again reaches the app as its 403 (no loop)', async () => {
    const { page, s, app, problems } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    await page.goto(`${s.origin}/account`);
    for (let i = 1; i <= 2; i++) {
      await clear(page, 'close-out');
      await page.click('button:has-text("Close my account")');
      await modalOpened(page, 'close-account');
      await passkeyInModal(page);
      expect(await resultOf(page, 'close-out')).toMatch(/^200 OK/);
      expect(app.count('DELETE', '/me')).toBe(i);
      expect((await sg(page)).modals).toBe(i);
    }

    // Two at once: one verification re-arms the one-shot grant once. One retry uses it; the other
    // is challenged again, and that 403 goes to the app's code instead of a second modal.
    await page.evaluate(() => {
      const second = document.createElement('pre');
      second.id = 'close-out-2';
      document.getElementById('close-out')!.after(second);
      document.getElementById('close-out')!.textContent = '';
      const app = window as unknown as { call(method: string, url: string, body: unknown, out: string): Promise<void> };
      void app.call('DELETE', '/me', undefined, 'close-out');
      void app.call('DELETE', '/me', undefined, 'close-out-2');
    });
    await modalOpened(page, 'close-account');
    await passkeyInModal(page);
    const answers = [await resultOf(page, 'close-out'), await resultOf(page, 'close-out-2')].map((o) => o.split('\n')[0]).sort();
    expect(answers).toEqual(['200 OK', '403 Forbidden']);
    expect(app.count('DELETE', '/me')).toBe(3);
    expect(await sg(page)).toEqual({ ok: 3, cancel: 0, modals: 3, csp: [] });
    expect(problems).toEqual([]);
  });
});

describe('drop-in client: XMLHttpRequest the way older app code uses it', () => {
  it('e.target in handlers, one object reused for several requests, abort() while the modal is open', async () => {
    const { page, s, app, problems } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    await page.goto(`${s.origin}/account`);
    // App code of the XHR era: one request object, handlers reading e.target, a log of what it saw.
    await page.evaluate(() => {
      const w = window as unknown as { legacy: { xhr: XMLHttpRequest; log: string[]; send(method: string, url: string): void } };
      const xhr = new XMLHttpRequest();
      const log: string[] = [];
      xhr.addEventListener('loadend', (e) => log.push(`loadend target=${e.target === xhr}`));
      w.legacy = {
        xhr,
        log,
        send(method, url) {
          xhr.open(method, url);
          xhr.setRequestHeader('Content-Type', 'application/json');
          xhr.onload = function (e) {
            const target = e.target as XMLHttpRequest;
            log.push(`load ${target.status} target=${target === xhr} this=${this === xhr}`);
          };
          xhr.onabort = () => log.push(`abort ${xhr.readyState} ${xhr.status}`);
          xhr.send(JSON.stringify({ at: method }));
        },
      };
    });
    const log = () => page.evaluate(() => (window as unknown as { legacy: { log: string[] } }).legacy.log);

    // 1. Challenged, verified in the modal, retried: the handlers see the object they were set on.
    await page.evaluate(() => (window as unknown as { legacy: { send(m: string, u: string): void } }).legacy.send('POST', '/internal/org/acme/billing/refresh'));
    await modalOpened(page, 'billing');
    await passkeyInModal(page);
    await expect.poll(log).toEqual(['load 200 target=true this=true', 'loadend target=true']);

    // 2. The same object again: this verification's one-shot use passes without a modal.
    await page.evaluate(() => (window as unknown as { legacy: { send(m: string, u: string): void } }).legacy.send('DELETE', '/me'));
    await expect.poll(log).toHaveLength(4);
    expect((await log()).slice(2)).toEqual(['load 200 target=true this=true', 'loadend target=true']);

    // 3. And again: challenged again, so the modal opens again (a reused object is watched too).
    await page.evaluate(() => (window as unknown as { legacy: { send(m: string, u: string): void } }).legacy.send('DELETE', '/me'));
    await modalOpened(page, 'close-account');
    // The app gives up while the user is still in the modal: its abort() is honoured at once…
    await page.evaluate(() => (window as unknown as { legacy: { xhr: XMLHttpRequest } }).legacy.xhr.abort());
    await expect.poll(log).toHaveLength(6);
    // (As natively: DONE with status 0 during the abort events, UNSENT afterwards.)
    expect((await log()).slice(4)).toEqual(['abort 4 0', 'loadend target=true']);
    expect(await page.evaluate(() => (window as unknown as { legacy: { xhr: XMLHttpRequest } }).legacy.xhr.readyState)).toBe(0);
    // …and a verification afterwards does not send the aborted request.
    await passkeyInModal(page);
    await page.waitForTimeout(300);
    expect(app.count('DELETE', '/me')).toBe(1);
    expect(app.count('POST', '/internal/org/acme/billing/refresh')).toBe(1);
    expect(await log()).toHaveLength(6);
    expect(problems).toEqual([]);
  });
});

describe('drop-in: form posts and downloads meet the verify page', () => {
  it('form post (password change): the 403 verify page keeps it, a passkey sends it once, the app answers; a reload sends nothing', async () => {
    const { page, s, app, problems } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    await page.goto(`${s.origin}/account`);
    await page.fill('#current', 'alice-password');
    await page.fill('#new', 'correct horse battery');
    const [challenge] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/account/password')), page.click('button:has-text("Change password")')]);
    expect(challenge.status()).toBe(403);
    expect(challenge.headers()['x-stepgate-challenge']).toBe('1');
    expect(await text(page, 'h1')).toBe('Confirm it’s you');
    expect(await text(page, '.lede')).toContain('POST /account/password');
    expect(await text(page, '.lede')).toContain('Your form is kept');
    expect(app.count('POST', '/account/password')).toBe(0);

    await page.click('#sg-passkey-btn');
    await page.locator('h1:has-text("Password changed")').waitFor();
    expect(await text(page, 'main')).toContain('"x-stepgate-factor": "passkey"');
    expect(app.count('POST', '/account/password')).toBe(1);
    expect(Object.fromEntries(new URLSearchParams(app.bodies('POST', '/account/password')[0]))).toEqual({
      current_password: 'alice-password',
      new_password: 'correct horse battery',
    });

    // A reload posts the verify form again: nothing reaches the app a second time.
    await page.reload();
    await page.locator('h1').waitFor();
    expect(await text(page, 'h1')).not.toBe('Password changed');
    expect(await text(page, 'main')).toContain('not sent again');
    expect(app.count('POST', '/account/password')).toBe(1);
    // The one replay is in the audit trail (SPEC §9.8), named by method and path.
    const replays = s.logs.map((l) => JSON.parse(l) as { event?: string; outcome?: string; detail?: string }).filter((l) => l.event === 'stash.replay');
    expect(replays.map((r) => [r.outcome, r.detail])).toEqual([['success', 'POST /account/password']]);
    // The app really changed it: the new password signs in.
    await page.context().clearCookies();
    await signIn(page, s.origin, 'alice@example.com', 'correct horse battery');
    expect(problems).toEqual([]);
  });

  it('form post (team invite): a TOTP code typed on the verify page sends it once; a reload sends nothing', async () => {
    const { page, s, app, problems } = await setup({ authenticator: false });
    await signIn(page, s.origin);
    const secret = await enrolTotp(page, s);
    await page.goto(`${s.origin}/portal/org/users`);
    await page.fill('#invite-email', 'carol@example.com');
    await page.click('button:has-text("Send invitation")');
    await page.locator('#sg-totp-code').waitFor({ state: 'visible' });
    expect(await text(page, '.lede')).toContain('POST /portal/org/users/invite');
    await page.fill('#sg-totp-code', oathtool(secret, s.clock.now()));
    await page.click('#sg-totp button[type=submit]');
    await page.locator('h1:has-text("Invitation sent")').waitFor();
    expect(await text(page, 'main')).toContain('carol@example.com');
    expect(app.count('POST', '/portal/org/users/invite')).toBe(1);
    expect(app.bodies('POST', '/portal/org/users/invite')[0]).toBe('email=carol%40example.com');

    await page.reload();
    await page.locator('h1').waitFor();
    expect(await text(page, 'main')).toContain('not sent again');
    expect(app.count('POST', '/portal/org/users/invite')).toBe(1);
    // The team page lists the invitation once.
    await page.goto(`${s.origin}/portal/org/users`);
    expect(await page.locator('td:has-text("carol@example.com")').count()).toBe(1);
    expect(problems).toEqual([]);
  });

  it('download link: 303 to the verify page, back after the passkey, the CSV downloads once', async () => {
    const { page, s, app, problems } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    await page.goto(`${s.origin}/`);
    // A link with a `download` attribute saves whatever it gets: the gateway answers the 403, so
    // the browser reports a failed download rather than saving the verify page as a file.
    const [refused] = await Promise.all([
      page.waitForEvent('download'),
      page.evaluate(() => {
        const a = Object.assign(document.createElement('a'), { href: '/reports/export.csv', download: 'invoices.csv' });
        document.body.append(a);
        a.click();
        a.remove();
      }),
    ]);
    expect(await refused.failure()).not.toBeNull();
    expect(app.count('GET', '/reports/export.csv')).toBe(0);

    await page.click('a:has-text("Download invoices (CSV)")');
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    const verify = new URL(page.url());
    expect(verify.searchParams.get('rule')).toBe('exports');
    expect(verify.searchParams.get('return_to')).toBe('/reports/export.csv');
    expect(app.count('GET', '/reports/export.csv')).toBe(0);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#sg-passkey-btn')]);
    expect(download.suggestedFilename()).toBe('acme-invoices.csv');
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\r\n')[0]).toBe('invoice,date,plan,seats,amount_eur');
    expect(app.count('GET', '/reports/export.csv')).toBe(1);
    // A download leaves the browser on the verify page: it says so and offers the way back.
    await page.locator('#sg-back').waitFor({ state: 'visible' });
    await page.click('#sg-back');
    await page.waitForURL(`${s.origin}/`);
    expect(problems).toEqual([]);
  });
});

describe('drop-in: upstreams that compress or set a strict CSP', () => {
  it('a gzip-compressing upstream: the page is injected intact and the modal works', async () => {
    const { page, s, app, problems } = await setup({ gzipHtml: true });
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    const [doc] = await Promise.all([page.waitForResponse((r) => r.url() === `${s.origin}/billing`), page.goto(`${s.origin}/billing`)]);
    // The app compressed although the gateway asked for identity; the browser got a plain page.
    const answer = app.htmlAnswers.find((a) => a.path === '/billing')!;
    expect(answer).toMatchObject({ acceptEncoding: 'identity', contentEncoding: 'gzip' });
    expect(doc.headers()['content-encoding']).toBeUndefined();
    expect(await text(page, 'h1')).toBe('Billing');
    expect(await page.locator('script[src="/__stepup/client.js"]').count()).toBe(1);

    await saveBilling(page, 'team', 4);
    await modalOpened(page, 'billing');
    await passkeyInModal(page);
    expect(await resultOf(page, 'billing-out')).toMatch(/^200 OK/);
    expect(app.count('PATCH', '/internal/org/acme/billing')).toBe(1);
    expect(problems).toEqual([]);
  });

  const policies = [
    {
      name: "nonces with 'strict-dynamic' and default-src 'none'",
      csp: "default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic'; style-src 'nonce-{nonce}'; connect-src 'self'; form-action 'self'; base-uri 'none'",
      reportOnly: "default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'",
    },
    {
      name: "a host allow-list and frame-src 'none'",
      csp: "default-src 'self'; script-src 'nonce-{nonce}' https://cdn.example.com; frame-src 'none'; style-src 'self' 'unsafe-inline'; object-src 'none'",
      reportOnly: undefined,
    },
  ];
  for (const policy of policies) {
    it(`a strict CSP (${policy.name}): the injected script loads and works, the app's own policy is otherwise unchanged`, async () => {
      const { page, s, app, problems } = await setup({ csp: policy.csp, cspReportOnly: policy.reportOnly });
      await signIn(page, s.origin);
      await enrolPasskey(page, s);
      const [doc] = await Promise.all([page.waitForResponse((r) => r.url() === `${s.origin}/billing`), page.goto(`${s.origin}/billing`)]);
      const sent = app.htmlAnswers.find((a) => a.path === '/billing')!.csp!;
      const received = doc.headers()['content-security-policy']!;
      // Every directive the app sent is still there; only the script and frame sources grew.
      const directives = (p: string) => new Map(p.split(';').map((d) => d.trim().split(/\s+/)).map(([n, ...v]) => [n!, v]));
      const before = directives(sent);
      const after = directives(received);
      for (const [name, sources] of before) {
        const now = after.get(name);
        expect(now, name).toBeDefined();
        if (name === 'script-src' || name === 'frame-src') expect(now!.filter((v) => v !== "'none'")).toEqual(expect.arrayContaining(sources.filter((v) => v !== "'none'")));
        else expect(now).toEqual(sources);
      }
      expect([...after.keys()].filter((n) => !before.has(n)).every((n) => n === 'frame-src')).toBe(true);
      expect(await page.evaluate(() => typeof window.stepgate?.fetch)).toBe('function');

      await saveBilling(page, 'enterprise', 50);
      await modalOpened(page, 'billing');
      await passkeyInModal(page);
      expect(await resultOf(page, 'billing-out')).toMatch(/^200 OK/);
      expect(app.count('PATCH', '/internal/org/acme/billing')).toBe(1);
      // The app's own scripts ran (the button worked) and nothing was refused or reported.
      expect((await sg(page)).csp).toEqual([]);
      expect(problems).toEqual([]);
    });
  }
});
