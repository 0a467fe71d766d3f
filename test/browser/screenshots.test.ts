// Screenshots of the hosted pages (light, dark, a 360 px phone), taken through the real flow:
// enrol a passkey, step up, add an authenticator app, then meet the verify page. They land in
// test-results/screenshots, or in docs/screenshots with UPDATE_SCREENSHOTS=1 (`npm run screenshots`),
// which README.md shows. The test also checks the pages fit a phone without sideways scrolling.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { oathtool } from '../helpers/gateway.js';
import { buildUi, launchBrowser, openTab, screenshotDir, signIn, startStack, type Stack } from './harness.js';

let browser: Browser;
let stack: Stack;

beforeAll(async () => {
  buildUi();
  browser = await launchBrowser();
  stack = await startStack();
});
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

async function shot(page: Page, name: string, mode: { scheme: 'light' | 'dark'; width: number }): Promise<void> {
  await page.emulateMedia({ colorScheme: mode.scheme });
  await page.setViewportSize({ width: mode.width, height: mode.width < 500 ? 740 : 760 });
  // Nothing wider than the viewport (no sideways scrolling on a phone).
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(mode.width);
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.screenshot({ path: join(screenshotDir(), `${name}.png`), fullPage: true });
}

const desktop = { scheme: 'light', width: 900 } as const;
const dark = { scheme: 'dark', width: 900 } as const;
const phone = { scheme: 'light', width: 360 } as const;

describe('screenshots of the hosted pages', () => {
  it('verify and settings pages, light, dark and phone', async () => {
    const { page, cdp, authenticatorId, problems } = await openTab(browser, { width: 900 });
    await signIn(page, stack.origin);
    await page.goto(`${stack.origin}/__stepup/settings`);

    await page.click('#sg-add-passkey');
    await page.fill('#sg-passkey-name', 'MacBook Pro');
    await shot(page, 'settings-add-passkey', desktop);
    await page.click('#sg-passkey-form button[type=submit]');
    await page.locator('#sg-codes').waitFor({ state: 'visible' });
    await shot(page, 'settings-recovery-codes', desktop);
    await page.click('#sg-codes-done');

    // The second method needs a fresh verification: through the verify page and back.
    await page.click('#sg-add-totp');
    await page.locator('#sg-stepup').waitFor({ state: 'visible' });
    await shot(page, 'settings-step-up', desktop);
    await page.click('#sg-stepup-link');
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    await page.click('#sg-passkey-btn');
    await page.locator('#sg-totp-panel').waitFor({ state: 'visible' });
    await shot(page, 'settings-authenticator-app', desktop);
    const secret = (await page.getAttribute('#sg-totp-secret', 'data-secret'))!;
    await page.fill('#sg-totp-code', oathtool(secret, stack.clock.now()));
    await page.click('#sg-totp-confirm button[type=submit]');
    await page.locator('#sg-factors li[data-type="totp"]').waitFor();
    stack.clock.advance(3 * 60_000);
    await page.reload();
    await shot(page, 'settings-light', desktop);
    await shot(page, 'settings-dark', dark);
    await shot(page, 'settings-phone', phone);

    // Later: the gated billing page asks again, passkey first.
    stack.clock.advance(10 * 60_000);
    await page.setViewportSize({ width: 900, height: 760 });
    await page.goto(`${stack.origin}/billing`);
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    await page.locator('#sg-passkey-btn').waitFor({ state: 'visible' });
    await shot(page, 'verify-light', desktop);
    await shot(page, 'verify-dark', dark);
    await shot(page, 'verify-phone', phone);

    // A dismissed passkey prompt: the code input takes over, with the reason.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId: authenticatorId!, isUserVerified: false });
    await page.click('#sg-passkey-btn');
    await page.locator('#sg-status .msg-error').waitFor();
    await shot(page, 'verify-passkey-cancelled', desktop);

    // A wrong code after that, and the lockout countdown after five.
    for (let i = 0; i < 5; i++) {
      await page.fill('#sg-totp-code', '000000');
      await page.click('#sg-totp button[type=submit]');
      await page.waitForFunction(() => !document.querySelector<HTMLButtonElement>('#sg-totp button[type=submit]')?.disabled || document.querySelector('.timer'));
    }
    await page.fill('#sg-totp-code', '000000');
    await page.click('#sg-totp button[type=submit]');
    await page.locator('#sg-status .timer').waitFor();
    expect(await page.locator('#sg-status').textContent()).toMatch(/try again in 1[45]:\d\d/);
    await shot(page, 'verify-locked-phone', phone);

    // The passkey-only rule: only the passkey is offered, and the page says why.
    await page.goto(`${stack.origin}/portal/security`);
    await page.waitForURL((url) => url.pathname === '/__stepup/verify');
    await shot(page, 'verify-passkey-only', desktop);

    expect(problems).toEqual([]);
    await page.context().close();
  });
});
