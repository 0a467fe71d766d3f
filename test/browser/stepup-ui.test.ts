// The hosted verify and settings pages in a real browser: headless Chromium in front of the real
// gateway and the real demo app, passkeys from a CDP virtual authenticator, TOTP codes computed by
// Debian's oathtool at the gateway's TestClock time. Every test also asserts the pages reported no
// errors (uncaught exceptions, CSP violations).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { oathtool } from '../helpers/gateway.js';
import { buildUi, launchBrowser, openTab, signIn, startStack, type Stack, type Tab, type TabOptions } from './harness.js';

let browser: Browser;
let stack: Stack;
let tabs: Tab[] = [];

beforeAll(async () => {
  buildUi();
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  for (const t of tabs) await t.context.close();
  tabs = [];
  await stack.close();
});

async function tab(opts: TabOptions = {}): Promise<Tab> {
  const t = await openTab(browser, opts);
  tabs.push(t);
  return t;
}

const visible = (page: Page, selector: string) => page.locator(selector).isVisible();
const text = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? '').replace(/\s+/g, ' ').trim();

/** A GET navigation to a gated page lands on the verify page for that rule. */
async function hitGatedPage(page: Page, path = '/billing', rule = 'billing-page'): Promise<void> {
  await page.goto(stack.origin + path);
  await page.waitForURL((url) => url.pathname === '/__stepup/verify');
  const url = new URL(page.url());
  expect(url.searchParams.get('rule')).toBe(rule);
  expect(url.searchParams.get('return_to')).toBe(path);
  expect(url.searchParams.get('ticket')).toMatch(/^[\w-]{20,}$/);
  expect(await text(page, 'h1')).toBe('Confirm it’s you');
}

/** From the verify page of a user without factors to the settings page (which chains back). */
async function goEnrol(page: Page): Promise<void> {
  await page.click('#sg-enroll');
  await page.waitForURL((url) => url.pathname === '/__stepup/settings');
  expect(new URL(page.url()).searchParams.get('return_to')).toMatch(/^\/__stepup\/verify\?/);
}

async function readCodes(page: Page): Promise<string[]> {
  await page.locator('#sg-codes').waitFor({ state: 'visible' });
  const codes = await page.$$eval('#sg-codes-list code', (els) => els.map((e) => e.textContent ?? ''));
  expect(codes).toHaveLength(10);
  for (const c of codes) expect(c).toMatch(/^[A-Z2-7]{5}-[A-Z2-7]{5}$/);
  return codes;
}

async function addPasskey(page: Page, name: string): Promise<string[] | null> {
  await page.click('#sg-add-passkey');
  await page.fill('#sg-passkey-name', name);
  await page.click('#sg-passkey-form button[type=submit]');
  await page.locator('#sg-status .msg-success').waitFor();
  expect(await text(page, '#sg-status')).toBe(`Passkey “${name}” added.`);
  expect(await text(page, '#sg-factors li[data-type="passkey"]:last-child .factor-name')).toBe(name);
  return (await visible(page, '#sg-codes')) ? readCodes(page) : null;
}

/** Sets up the authenticator app on the settings page; the confirmation code is oathtool's. */
async function addTotp(page: Page): Promise<{ secret: string; codes: string[] | null }> {
  await page.click('#sg-add-totp');
  await page.locator('#sg-totp-panel').waitFor({ state: 'visible' });
  return confirmTotpPanel(page);
}

async function confirmTotpPanel(page: Page): Promise<{ secret: string; codes: string[] | null }> {
  const secret = (await page.getAttribute('#sg-totp-secret', 'data-secret')) ?? '';
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  expect(await page.getAttribute('#sg-totp-qr', 'src')).toMatch(/^data:image\/svg\+xml/);
  await page.fill('#sg-totp-code', oathtool(secret, stack.clock.now()));
  await page.click('#sg-totp-confirm button[type=submit]');
  await page.locator('#sg-status .msg-success').waitFor();
  // RFC 6238: the confirmation used this time step; the user is told to wait for the next code.
  expect(await text(page, '#sg-status')).toContain('wait for the app to show a new code');
  const codes = (await visible(page, '#sg-codes')) ? await readCodes(page) : null;
  stack.clock.advance(30_000);
  return { secret, codes };
}

/** "I’ve saved them", then the Continue panel back to the verify page. */
async function continueToVerify(page: Page): Promise<void> {
  await page.click('#sg-codes-done');
  await page.locator('#sg-continue').waitFor({ state: 'visible' });
  await page.click('#sg-continue-link');
  await page.waitForURL((url) => url.pathname === '/__stepup/verify');
}

/** The demo's billing page saves with a fetch PATCH to the gated billing route. */
async function saveBilling(page: Page): Promise<string> {
  await page.click('button:has-text("Save billing settings")');
  await page.waitForFunction(() => (document.getElementById('billing-out')?.textContent ?? '').length > 0);
  return text(page, '#billing-out');
}

describe('hosted verify + settings pages in Chromium', () => {
  it('passkey: gated page → enrol a passkey from settings → step up with it → the page and the PATCH pass', async () => {
    const { page, problems, httpErrors } = await tab();
    await signIn(page, stack.origin);
    await hitGatedPage(page);
    // No factor yet: the page asks to set one up (and says it comes back here).
    expect(await text(page, 'main')).toContain('add a way to confirm it’s you');
    await goEnrol(page);
    const codes = await addPasskey(page, 'Test laptop');
    expect(codes).not.toBeNull();
    await continueToVerify(page);
    // Passkey first; no authenticator app enrolled, so no code input and no switch to one.
    expect(await visible(page, '#sg-passkey-btn')).toBe(true);
    expect(await page.locator('#sg-totp').count()).toBe(0);
    expect(await visible(page, 'a[data-use="recovery"]')).toBe(true);
    await page.click('#sg-passkey-btn');
    await page.waitForURL(`${stack.origin}/billing`);
    expect(await text(page, 'h1')).toBe('Billing');
    const out = await saveBilling(page);
    expect(out).toMatch(/^200 OK/);
    expect(out).toContain('"x-stepgate-factor": "passkey"');
    expect(out).toContain('"x-stepgate-user": "u-alice"');
    expect(problems).toEqual([]);
    expect(httpErrors).toEqual([]);
  });

  it('TOTP: enrol the authenticator app (oathtool), then verify with the NEXT code', async () => {
    const { page, problems, httpErrors } = await tab({ authenticator: false });
    await signIn(page, stack.origin);
    await hitGatedPage(page);
    await goEnrol(page);
    const { secret, codes } = await addTotp(page);
    expect(codes).not.toBeNull();
    await page.click('#sg-codes-done');
    await page.locator('#sg-continue').waitFor({ state: 'visible' });
    expect(await text(page, '#sg-continue')).toContain('the one you just entered can’t be used twice');
    await page.click('#sg-continue-link');
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    // No passkey: the code input is there at once, focused, with the one-time-code hints.
    expect(await visible(page, '#sg-passkey-btn')).toBe(false);
    expect(await visible(page, '#sg-totp-code')).toBe(true);
    expect(await page.getAttribute('#sg-totp-code', 'autocomplete')).toBe('one-time-code');
    expect(await page.getAttribute('#sg-totp-code', 'inputmode')).toBe('numeric');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sg-totp-code');
    // A wrong code first: an inline error, the input cleared and focused again.
    await page.fill('#sg-totp-code', '000000');
    await page.click('#sg-totp button[type=submit]');
    await page.locator('#sg-status .msg-error').waitFor();
    expect(await text(page, '#sg-status')).toContain('That code didn’t work');
    expect(await page.getAttribute('#sg-totp-code', 'aria-invalid')).toBe('true');
    await page.fill('#sg-totp-code', oathtool(secret, stack.clock.now()));
    await page.click('#sg-totp button[type=submit]');
    await page.waitForURL(`${stack.origin}/billing`);
    const out = await saveBilling(page);
    expect(out).toMatch(/^200 OK/);
    expect(out).toContain('"x-stepgate-factor": "totp"');
    expect(problems).toEqual([]);
    expect(httpErrors).toEqual(['400 POST /__stepup/api/verify/totp']);
  });

  it('recovery code: the last resort works once', async () => {
    const { page, problems } = await tab({ authenticator: false });
    await signIn(page, stack.origin);
    await hitGatedPage(page);
    await goEnrol(page);
    const { codes } = await addTotp(page);
    await continueToVerify(page);
    await page.click('a[data-use="recovery"]');
    expect(await visible(page, '#sg-totp')).toBe(false);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sg-recovery-code');
    await page.fill('#sg-recovery-code', codes![2]!.toLowerCase());
    await page.click('#sg-recovery button[type=submit]');
    await page.waitForURL(`${stack.origin}/billing`);
    expect(await saveBilling(page)).toContain('"x-stepgate-factor": "recovery"');
    // The same code again (a new session asks again): refused inline.
    await page.context().clearCookies();
    await signIn(page, stack.origin);
    await hitGatedPage(page);
    await page.click('a[data-use="recovery"]');
    await page.fill('#sg-recovery-code', codes![2]!);
    await page.click('#sg-recovery button[type=submit]');
    await page.locator('#sg-status .msg-error').waitFor();
    expect(await text(page, '#sg-status')).toContain('That recovery code didn’t work');
    expect(problems).toEqual([]);
  });

  it('a cancelled passkey prompt falls back to the authenticator-app code, no dead end', async () => {
    const { page, cdp, authenticatorId, problems } = await tab();
    await signIn(page, stack.origin);
    await hitGatedPage(page);
    await goEnrol(page);
    await addPasskey(page, 'Phone');
    await page.click('#sg-codes-done');
    // A second factor needs a fresh verification: the page walks the user through it and back.
    await page.click('#sg-add-totp');
    await page.locator('#sg-stepup').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sg-stepup');
    await page.click('#sg-stepup-link');
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    await page.click('#sg-passkey-btn');
    await page.waitForURL((url) => url.pathname === '/__stepup/settings');
    // Back on settings, the authenticator-app setup resumes by itself.
    await page.locator('#sg-totp-panel').waitFor({ state: 'visible' });
    const { secret } = await confirmTotpPanel(page);
    await page.locator('#sg-factors li[data-type="totp"]').waitFor();
    // Past the billing window, so the next visit asks again.
    stack.clock.advance(5 * 60_000);

    await hitGatedPage(page);
    expect(await visible(page, '#sg-passkey-btn')).toBe(true);
    expect(await visible(page, '#sg-totp')).toBe(false);
    // The user dismisses the prompt: the virtual authenticator refuses user verification.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId: authenticatorId!, isUserVerified: false });
    await page.click('#sg-passkey-btn');
    await page.locator('#sg-status .msg-error').waitFor();
    expect(await text(page, '#sg-status')).toContain('Enter a code from your authenticator app instead');
    expect(await visible(page, '#sg-totp')).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sg-totp-code');
    expect(await visible(page, 'a[data-use="passkey"]')).toBe(true);
    await page.fill('#sg-totp-code', oathtool(secret, stack.clock.now()));
    await page.click('#sg-totp button[type=submit]');
    await page.waitForURL(`${stack.origin}/billing`);
    expect(await saveBilling(page)).toContain('"x-stepgate-factor": "totp"');
    expect(problems).toEqual([]);
  });
});
