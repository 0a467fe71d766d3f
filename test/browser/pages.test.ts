// The hosted pages' other paths in Chromium: the embed mode of the drop-in modal (postMessage to
// the public origin only), the no-JavaScript form, a browser without WebAuthn, a passkey-only rule,
// managing methods on the settings page behind a fresh verification, and invite codes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { inviteHash } from '../../src/factors/invite.js';
import { oathtool } from '../helpers/gateway.js';
import { buildUi, launchBrowser, openTab, signIn, startStack, type Stack, type Tab, type TabOptions } from './harness.js';

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

async function setup(opts: TabOptions & { extra?: string } = {}): Promise<Tab & { s: Stack }> {
  stack = await startStack({ extra: opts.extra });
  const t = await openTab(browser, opts);
  tabs.push(t);
  return { ...t, s: stack };
}

const text = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? '').replace(/\s+/g, ' ').trim();
const activeId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? null);

/** Enrols a passkey on the settings page (first factor: no verification needed). */
async function enrolPasskey(page: Page, s: Stack, name = 'Laptop'): Promise<string[]> {
  await page.goto(`${s.origin}/__stepup/settings`);
  await page.click('#sg-add-passkey');
  await page.fill('#sg-passkey-name', name);
  await page.click('#sg-passkey-form button[type=submit]');
  await page.locator('#sg-codes').waitFor({ state: 'visible' });
  const codes = await page.$$eval('#sg-codes-list code', (els) => els.map((e) => e.textContent ?? ''));
  await page.click('#sg-codes-done');
  return codes;
}

/** Enrols TOTP through the JSON API with the browser's cookies (for the no-JavaScript test). */
async function enrolTotpViaApi(page: Page, s: Stack): Promise<{ secret: string; recoveryCodes: string[] }> {
  const start = await page.request.post(`${s.origin}/__stepup/api/enroll/totp`, { data: {} });
  expect(start.status()).toBe(200);
  const { secret } = (await start.json()) as { secret: string };
  const confirm = await page.request.post(`${s.origin}/__stepup/api/enroll/totp/confirm`, { data: { code: oathtool(secret, s.clock.now()) } });
  expect(confirm.status()).toBe(200);
  s.clock.advance(30_000);
  return { secret, recoveryCodes: ((await confirm.json()) as { recoveryCodes: string[] }).recoveryCodes };
}

/** What the drop-in client does: a fetch PATCH is challenged, the JSON names the verify URL. */
async function challengedFetch(page: Page): Promise<{ status: number; verifyUrl: string }> {
  return page.evaluate(async () => {
    const res = await fetch('/internal/org/acme/billing', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"plan":"pro"}' });
    return { status: res.status, verifyUrl: ((await res.json()) as { verifyUrl: string }).verifyUrl };
  });
}

/** Opens `src` (+embed=1) in an iframe of the app's own page and records the messages it posts. */
async function openModal(page: Page, src: string): Promise<void> {
  await page.evaluate((url) => {
    const w = window as unknown as { sgMessages: { data: unknown; origin: string }[]; sgListening?: boolean };
    w.sgMessages = [];
    if (!w.sgListening) window.addEventListener('message', (e) => w.sgMessages.push({ data: e.data, origin: e.origin }));
    w.sgListening = true;
    document.getElementById('sg-frame')?.remove();
    const frame = document.createElement('iframe');
    frame.id = 'sg-frame';
    frame.src = `${url}&embed=1`;
    frame.width = '420';
    frame.height = '560';
    document.body.append(frame);
  }, src);
}

const messages = (page: Page) => page.evaluate(() => (window as unknown as { sgMessages: { data: unknown; origin: string }[] }).sgMessages);

describe('hosted pages: other paths', () => {
  it('embed mode: chrome-less, Cancel/Escape post stepgate:cancel and success posts stepgate:ok, to the public origin', async () => {
    const { page, s, problems } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    await page.goto(`${s.origin}/`);
    const first = await challengedFetch(page);
    expect(first.status).toBe(403);

    await openModal(page, first.verifyUrl);
    const frame = page.frameLocator('#sg-frame');
    await frame.locator('#sg-passkey-btn').waitFor({ state: 'visible' });
    expect(await frame.locator('.brand').count()).toBe(0);
    expect(await frame.locator('html').getAttribute('class')).toContain('embed');
    await frame.locator('#sg-cancel').click();
    await page.waitForFunction(() => (window as unknown as { sgMessages: unknown[] }).sgMessages.length > 0);
    expect(await messages(page)).toEqual([{ data: { type: 'stepgate:cancel' }, origin: s.origin }]);

    // Escape closes it too.
    await openModal(page, first.verifyUrl);
    await frame.locator('#sg-passkey-btn').waitFor({ state: 'visible' });
    await frame.locator('#sg-passkey-btn').focus();
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => (window as unknown as { sgMessages: unknown[] }).sgMessages.length > 0);
    expect(await messages(page)).toEqual([{ data: { type: 'stepgate:cancel' }, origin: s.origin }]);

    await openModal(page, first.verifyUrl);
    await frame.locator('#sg-passkey-btn').click();
    await page.waitForFunction(() => (window as unknown as { sgMessages: unknown[] }).sgMessages.length > 0);
    expect(await messages(page)).toEqual([{ data: { type: 'stepgate:ok' }, origin: s.origin }]);
    // The parent stays where it was; the retried request passes.
    expect(new URL(page.url()).pathname).toBe('/');
    const retried = await page.evaluate(async () => (await fetch('/internal/org/acme/billing', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{}' })).status);
    expect(retried).toBe(200);
    expect(problems).toEqual([]);
  });

  it('works without JavaScript: the code form posts, errors re-render, the recovery form is a link away', async () => {
    const { page, s } = await setup({ javaScriptEnabled: false, authenticator: false });
    await signIn(page, s.origin);
    const { secret, recoveryCodes } = await enrolTotpViaApi(page, s);
    await page.goto(`${s.origin}/billing`);
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    expect(await page.locator('#sg-totp').isVisible()).toBe(true);
    expect(await page.locator('#sg-passkey').count()).toBe(0);

    await page.fill('#sg-totp-code', '123456');
    await Promise.all([page.waitForLoadState(), page.click('#sg-totp button[type=submit]')]);
    expect(await text(page, '#sg-status')).toBe('That code is not valid.');
    expect(await page.locator('#sg-totp').isVisible()).toBe(true);

    await page.click('a[data-use="recovery"]');
    await page.waitForURL((url) => url.searchParams.get('use') === 'recovery');
    expect(await page.locator('#sg-recovery').isVisible()).toBe(true);
    expect(await page.locator('#sg-totp').isVisible()).toBe(false);
    await page.click('a[data-use="totp"]');
    await page.waitForURL((url) => url.searchParams.get('use') === 'totp');

    await page.fill('#sg-totp-code', oathtool(secret, s.clock.now()));
    await page.click('#sg-totp button[type=submit]');
    await page.waitForURL(`${s.origin}/billing`);
    expect(await text(page, 'h1')).toBe('Billing');
    expect(recoveryCodes).toHaveLength(10);
  });

  it('a browser without WebAuthn gets the code input at once, and settings says it cannot create passkeys', async () => {
    const { page, context, s, problems } = await setup();
    await signIn(page, s.origin);
    await enrolPasskey(page, s);
    // The user also has an authenticator app (added within the 5 minutes of a verification).
    await page.goto(`${s.origin}/__stepup/verify?return_to=/__stepup/settings`);
    await page.click('#sg-passkey-btn');
    await page.waitForURL((url) => url.pathname === '/__stepup/settings');
    await page.click('#sg-add-totp');
    await page.locator('#sg-totp-panel').waitFor({ state: 'visible' });
    const secret = (await page.locator('#sg-totp-secret').getAttribute('data-secret'))!;
    await page.fill('#sg-totp-code', oathtool(secret, s.clock.now()));
    await page.click('#sg-totp-confirm button[type=submit]');
    await page.locator('#sg-factors li[data-type="totp"]').waitFor();
    s.clock.advance(10 * 60_000);

    await context.addInitScript(() => {
      Object.defineProperty(window, 'PublicKeyCredential', { value: undefined, configurable: true });
    });
    await page.goto(`${s.origin}/billing`);
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    expect(await page.locator('#sg-passkey-btn').isVisible()).toBe(false);
    expect(await page.locator('#sg-totp-code').isVisible()).toBe(true);
    expect(await activeId(page)).toBe('sg-totp-code');
    expect(await page.locator('a[data-use="passkey"]').isVisible()).toBe(false);
    expect(await text(page, '#sg-passkey-unsupported')).toContain('can’t use passkeys');

    await page.goto(`${s.origin}/__stepup/settings`);
    expect(await page.locator('#sg-add-passkey').isVisible()).toBe(false);
    expect(await page.locator('#sg-passkey-unsupported').isVisible()).toBe(true);
    expect(problems).toEqual([]);
  });

  it('a passkey-only rule offers only the passkey and says why; without a passkey it leads to settings', async () => {
    const { page, s, problems } = await setup();
    await signIn(page, s.origin);
    const { secret } = await enrolTotpViaApi(page, s);
    await page.goto(`${s.origin}/portal/security`);
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    expect(await text(page, '#sg-why')).toContain('accepts only a passkey');
    expect(await page.locator('#sg-totp, #sg-recovery, #sg-passkey-btn').count()).toBe(0);
    expect(await text(page, 'main')).toContain('You don’t have a passkey set up yet.');
    const add = page.locator('a:has-text("Add a passkey")');
    expect(new URL((await add.getAttribute('href'))!, s.origin).searchParams.get('return_to')).toMatch(/^\/__stepup\/verify\?rule=devices-page/);

    await enrolPasskeyAfterStepUp(page, s, secret);
    await page.goto(`${s.origin}/portal/security`);
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    expect(await page.locator('#sg-passkey-btn').isVisible()).toBe(true);
    expect(await page.locator('#sg-totp, #sg-recovery').count()).toBe(0);
    expect(await page.locator('a[data-use]:visible').count()).toBe(0);
    await page.click('#sg-passkey-btn');
    await page.waitForURL(`${s.origin}/portal/security`);
    expect(await text(page, 'h1')).toBe('Devices');
    expect(problems).toEqual([]);
  });

  it('settings: removing and regenerating need a fresh verification, then resume; the last method stays', async () => {
    const { page, s, problems } = await setup();
    await signIn(page, s.origin);
    const firstCodes = await enrolPasskey(page, s);
    const passkeyId = await page.locator('#sg-factors li[data-type="passkey"]').getAttribute('data-id');

    await page.click(`button[data-remove="${passkeyId}"]`);
    await page.locator('.confirm-inline button:has-text("Remove")').click();
    await page.locator('#sg-stepup').waitFor({ state: 'visible' });
    await page.click('#sg-stepup-link');
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    await page.click('#sg-passkey-btn');
    await page.waitForURL((url) => url.pathname === '/__stepup/settings');
    // Resumed: the confirmation is open again, focused; the server refuses to remove the last method.
    await page.locator('.confirm-inline').waitFor();
    expect(await page.evaluate(() => document.activeElement?.closest('.confirm-inline') !== null && document.activeElement?.textContent)).toBe('Remove');
    expect(new URL(page.url()).searchParams.has('then')).toBe(false);
    await page.locator('.confirm-inline button:has-text("Remove")').click();
    await page.locator('#sg-status .msg-error').waitFor();
    expect(await text(page, '#sg-status')).toBe('This is your only method. Add another one before removing it.');

    await page.click('#sg-regenerate');
    await page.click('#sg-regenerate-yes');
    await page.locator('#sg-codes').waitFor({ state: 'visible' });
    const newCodes = await page.$$eval('#sg-codes-list code', (els) => els.map((e) => e.textContent ?? ''));
    expect(newCodes).toHaveLength(10);
    expect(newCodes.some((c) => firstCodes.includes(c))).toBe(false);
    const download = page.waitForEvent('download');
    await page.click('#sg-codes-download');
    expect((await download).suggestedFilename()).toBe('acme-portal-recovery-codes.txt');
    await page.click('#sg-codes-done');

    // With a second method, removing one works.
    await page.click('#sg-add-totp');
    await page.locator('#sg-totp-panel').waitFor({ state: 'visible' });
    const secret = (await page.locator('#sg-totp-secret').getAttribute('data-secret'))!;
    await page.fill('#sg-totp-code', oathtool(secret, s.clock.now()));
    await page.click('#sg-totp-confirm button[type=submit]');
    await page.locator('#sg-factors li[data-type="totp"]').waitFor();
    await page.click('#sg-factors li[data-type="totp"] button[data-remove]');
    await page.locator('.confirm-inline button:has-text("Remove")').click();
    // The status still shows "Authenticator app added…" until the removal answers: wait for that answer.
    await page.locator('#sg-status .msg-success', { hasText: 'Removed' }).waitFor();
    expect(await text(page, '#sg-status')).toBe('Removed “Authenticator app”.');
    expect(await page.locator('#sg-factors li').count()).toBe(1);
    expect(problems).toEqual([]);
  });

  it('enrollment: invite — the settings link carries the invite code to the enrolment calls', async () => {
    const { page, s, problems } = await setup({ extra: 'enrollment: invite' });
    await signIn(page, s.origin);
    await page.goto(`${s.origin}/__stepup/settings`);
    expect(await text(page, '#sg-invite-note')).toContain('needs an invitation');
    await page.click('#sg-add-passkey');
    await page.click('#sg-passkey-form button[type=submit]');
    await page.locator('#sg-status .msg-error').waitFor();
    expect(await text(page, '#sg-status')).toContain('needs an invitation');

    const code = 'invite-code-for-alice-0123';
    await s.gw.ctx.store.createInvite('u-alice', inviteHash(s.gw.ctx.secrets, code), s.clock.now() + 24 * 3600_000);
    await page.goto(`${s.origin}/__stepup/settings?invite=${code}`);
    expect(await page.locator('#sg-invite-note').count()).toBe(0);
    await page.click('#sg-add-passkey');
    await page.click('#sg-passkey-form button[type=submit]');
    await page.locator('#sg-codes').waitFor({ state: 'visible' });
    expect(await page.locator('#sg-factors li[data-type="passkey"]').count()).toBe(1);
    expect(problems).toEqual([]);
  });
});

/** A user with a factor adds a passkey: the settings page sends them to verify (TOTP) and resumes. */
async function enrolPasskeyAfterStepUp(page: Page, s: Stack, secret: string): Promise<void> {
  await page.goto(`${s.origin}/__stepup/settings`);
  await page.click('#sg-add-passkey');
  await page.click('#sg-passkey-form button[type=submit]');
  await page.locator('#sg-stepup').waitFor({ state: 'visible' });
  await page.click('#sg-stepup-link');
  await page.waitForURL((url) => url.pathname === '/__stepup/verify');
  await page.fill('#sg-totp-code', oathtool(secret, s.clock.now()));
  await page.click('#sg-totp button[type=submit]');
  await page.waitForURL((url) => url.pathname === '/__stepup/settings');
  // Resumed: the name form is open and focused.
  await page.locator('#sg-passkey-form').waitFor({ state: 'visible' });
  expect(await activeId(page)).toBe('sg-passkey-name');
  await page.click('#sg-passkey-form button[type=submit]');
  await page.locator('#sg-factors li[data-type="passkey"]').waitFor();
}
