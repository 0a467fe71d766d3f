// Browser tests: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against
// a REAL gateway in front of the REAL demo app, on http://localhost:PORT so WebAuthn's rpID
// `localhost` works; passkeys come from a CDP virtual authenticator. The gateway runs in-process
// with a TestClock, so TOTP steps and windows move when the test says so.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { parseGatewayConfig, parseRoutesConfig } from '../../src/config/load.js';
import { buildRouteTable } from '../../src/config/route-table.js';
import { startDemoApp, type DemoApp } from '../../src/demo/app.js';
import { startGateway, type RunningGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { resetAssetCache } from '../../src/stepup/assets.js';
import { TestClock } from '../helpers/gateway.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The demo app's routes as the example rules gate them, plus GET navigations to gated pages. */
export const BROWSER_ROUTES = `
defaults:
  max_age: 10m
rules:
  - name: billing
    match:
      - PATCH /internal/org/:key/billing
      - POST  /internal/org/:key/billing/*
    max_age: 5m
  - name: billing-page
    match: GET /billing
    max_age: 5m
  - name: devices-page
    match: GET /portal/security
    factors: [passkey]
  - name: device-trust
    match:
      - PATCH  /portal/security/devices/:id/trust
      - DELETE /portal/security/devices/:id
    factors: [passkey]
  - name: close-account
    match: DELETE /me
    once: true
`;

export interface Stack {
  origin: string;
  gw: RunningGateway;
  app: DemoApp;
  clock: TestClock;
  logs: string[];
  close(): Promise<void>;
}

/** A free loopback port: the public origin must name the port before the gateway listens on it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Bundles ui/ into dist/ui (esbuild, atomic renames) so the pages load the current scripts. */
export function buildUi(): void {
  execFileSync(process.execPath, ['scripts/build-ui.mjs', '--quiet'], { stdio: 'inherit' });
  resetAssetCache();
}

/** Something put between the gateway and the demo app (a recording or rewriting proxy). */
export interface Front {
  url: string;
  close(): Promise<void>;
}

export async function startStack(opts: { routes?: string; theme?: string; extra?: string; front?: (appUrl: string) => Promise<Front> } = {}): Promise<Stack> {
  const demo = await startDemoApp();
  const front = opts.front ? await opts.front(demo.url) : null;
  // The gateway talks to the front when there is one; closing the app closes the front too.
  const app: DemoApp = front
    ? {
        ...demo,
        url: front.url,
        async close() {
          await front.close();
          await demo.close();
        },
      }
    : demo;
  const dataDir = mkdtempSync(join(tmpdir(), 'stepgate-browser-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const clock = new TestClock();
  const env = { STEPGATE_SECRET: Buffer.alloc(32, 9).toString('base64') };
  let lastError: unknown;
  // Another process may take the port between freePort() and listen(): try again with a new one.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const yaml = `listen: 127.0.0.1:${port}
upstream: ${app.url}
public_origin: ${origin}
data_dir: ${dataDir}
admin_listen: null
upstream_timeout: 5s
identity:
  source: upstream
  session_cookies: [sid]
  upstream: { path: /api/me, user_field: id, name_field: email, cache_ttl: 30s }
theme:
${opts.theme ?? '  product_name: Acme Portal\n  accent: "#4f46e5"'}
${opts.extra ?? ''}`;
    try {
      const gw = await startGateway({
        cfg: parseGatewayConfig(yaml, 'gateway.yaml', env),
        routes: buildRouteTable(parseRoutesConfig(opts.routes ?? BROWSER_ROUTES, 'routes.yaml')),
        clock,
        log: createLogger('info', sink),
        env,
      });
      return {
        origin,
        gw,
        app,
        clock,
        logs,
        async close() {
          await gw.close();
          await app.close();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      lastError = err;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
  throw lastError;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  /** Problems the page reported: uncaught exceptions, console errors (CSP violations land here). */
  problems: string[];
  /** Every answer >= 400 the page received: `STATUS METHOD /path`. */
  httpErrors: string[];
  authenticatorId: string | null;
}

export interface TabOptions {
  colorScheme?: 'light' | 'dark';
  width?: number;
  height?: number;
  javaScriptEnabled?: boolean;
  /** Add a CDP virtual authenticator (a platform passkey with user verification). */
  authenticator?: boolean;
}

export async function openTab(browser: Browser, opts: TabOptions = {}): Promise<Tab> {
  const context = await browser.newContext({
    colorScheme: opts.colorScheme ?? 'light',
    viewport: { width: opts.width ?? 1100, height: opts.height ?? 900 },
    deviceScaleFactor: 1,
    javaScriptEnabled: opts.javaScriptEnabled ?? true,
    acceptDownloads: true,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // Failed HTTP answers are expected (a wrong code is a 400); they are in `httpErrors`.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console: ${msg.text()}`);
  });
  const httpErrors: string[] = [];
  page.on('response', (res) => {
    if (res.status() >= 400) httpErrors.push(`${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
  });
  const cdp = await context.newCDPSession(page);
  let authenticatorId: string | null = null;
  if (opts.authenticator ?? true) {
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    }));
  }
  return { context, page, cdp, problems, httpErrors, authenticatorId };
}

export async function signIn(page: Page, origin: string, email = 'alice@example.com', password = 'alice-password'): Promise<void> {
  await page.goto(`${origin}/login`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${origin}/`), page.click('button:has-text("Sign in")')]);
}

/** Where screenshots go: docs/screenshots with UPDATE_SCREENSHOTS=1 (npm run screenshots), else test-results/. */
export function screenshotDir(): string {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? join('docs', 'screenshots') : join('test-results', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}
