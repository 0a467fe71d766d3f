// The gateway's HTML pages: server-rendered so they work without JavaScript (the verify page posts
// a code to `POST {prefix}/verify`), then enhanced by the bundled scripts in ui/ (passkeys, inline
// errors, settings actions). No inline scripts (CSP `script-src 'self'`): data reaches the scripts
// in a `<script type="application/json">` block, which browsers never execute. The operator's
// theme arrives as CSS custom properties on <html>; everything else is in ui/style.css.
import type { ThemeConfig } from '../config/types.js';
import { assetUrl, getAsset } from './assets.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON for a `<script type="application/json">` block: `<` escaped so no `</script>` can end it. */
function jsonBlock(id: string, data: unknown): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  return `<script type="application/json" id="${id}">${json}</script>`;
}

type Rgb = [number, number, number];

function rgbOf(hex: string): Rgb {
  let h = hex.replace('#', '');
  if (h.length === 3 || h.length === 4) h = [...h.slice(0, 3)].map((c) => c + c).join('');
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as Rgb;
}

function luminance([r, g, b]: Rgb): number {
  const lin = (v: number) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function contrast(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

const hexOf = (c: Rgb) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;

/** Black or white, whichever reads better on the accent colour (WCAG contrast). */
export function accentText(hex: string): string {
  const c = rgbOf(hex);
  return contrast(c, [255, 255, 255]) >= contrast(c, [17, 17, 17]) ? '#ffffff' : '#111111';
}

/**
 * The accent as text (links, focus ring) on a background: mixed towards black or white just
 * enough to reach 4.5:1, so a light brand colour such as yellow still gives readable links.
 */
export function readableOn(hex: string, background: string): string {
  const c = rgbOf(hex);
  const bg = rgbOf(background);
  const towards: Rgb = luminance(bg) > 0.5 ? [0, 0, 0] : [255, 255, 255];
  for (let t = 0; t <= 1; t += 0.05) {
    const mixed = c.map((v, i) => v + (towards[i]! - v) * t) as Rgb;
    if (contrast(mixed, bg) >= 4.5) return hexOf(mixed);
  }
  return hexOf(towards);
}

interface LayoutOptions {
  theme: ThemeConfig;
  /** Without a prefix (pages rendered outside the stepup routes), the stylesheet is inlined. */
  prefix?: string | undefined;
  title: string;
  body: string;
  script?: 'verify' | 'settings';
  embed?: boolean;
  wide?: boolean;
}

const KEY_ICON =
  '<svg class="icon" aria-hidden="true" viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><circle cx="8" cy="15" r="4"/><path d="M10.85 12.15 19 4"/><path d="m18 5 2 2"/><path d="m15 8 2 2"/></svg>';

function stylesheet(prefix: string | undefined): string {
  if (prefix !== undefined) return `<link rel="stylesheet" href="${escapeHtml(assetUrl(prefix, 'style.css'))}">`;
  const css = getAsset('style.css');
  return css ? `<style>${css.body.toString('utf8').replace(/<\//g, '<\\/')}</style>` : '';
}

function layout(o: LayoutOptions): string {
  const { theme } = o;
  // The page backgrounds of ui/style.css: light card #ffffff, dark card #161a22.
  const style = [
    `--accent:${theme.accent}`,
    `--accent-text:${accentText(theme.accent)}`,
    `--accent-on-light:${readableOn(theme.accent, '#ffffff')}`,
    `--accent-on-dark:${readableOn(theme.accent, '#161a22')}`,
  ].join(';');
  const classes = [o.embed ? 'embed' : '', o.wide ? 'wide' : ''].filter(Boolean).join(' ');
  const brand = o.embed
    ? ''
    : `<header class="brand">${theme.logoUrl ? `<img src="${escapeHtml(theme.logoUrl)}" alt="" height="28">` : ''}<span>${escapeHtml(theme.productName)}</span></header>`;
  const script = o.script && o.prefix !== undefined ? `<script src="${escapeHtml(assetUrl(o.prefix, `${o.script}.js`))}" defer></script>` : '';
  return `<!doctype html>
<html lang="en"${classes ? ` class="${classes}"` : ''} style="${escapeHtml(style)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="${escapeHtml(theme.logoUrl ?? 'data:,')}">
<title>${escapeHtml(o.title)} · ${escapeHtml(theme.productName)}</title>
${stylesheet(o.prefix)}
${script}
</head>
<body>
<div class="shell">
${brand}
<main class="card" id="main">
${o.body}
</main>
</div>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------------
// Verify page
// ---------------------------------------------------------------------------------------------

export interface VerifyPageModel {
  theme: ThemeConfig;
  prefix: string;
  rule: string | null;
  ticket: string | null;
  returnTo: string;
  /** The factors the rule(s) accept. */
  factors: readonly string[];
  error: string | null;
  /**
   * The user's authenticators (`passkey`, `totp`). Undefined or null: not known (every factor the
   * rule accepts is offered). Known and empty: the page asks to set one up first.
   */
  enrolled?: readonly string[] | null;
  /** Whether the user has unused recovery codes (default: when they have any authenticator). */
  hasRecoveryCodes?: boolean;
  embed?: boolean;
  /** Target origin of the embed-mode postMessage (SPEC: public_origin, never `*`). */
  publicOrigin?: string;
  /** `?use=recovery` / `?use=totp`: the code form shown first without JavaScript. */
  use?: string | null;
  /** Seconds of lockout left after a 429, for the countdown. */
  retryAfter?: number | null;
  /** A stashed form submission to replay after verifying (SPEC §5). */
  stash?: string | null;
  /** The challenged form post, named on the page (method and path). */
  action?: { method: string; path: string } | null;
  /** A sentence about the challenged form (e.g. "submit it again after verifying"). */
  notice?: string | null;
  /** The rule's window, to tell the user how long the verification lasts. */
  maxAgeMs?: number | null;
  once?: boolean;
}

type CodeMode = 'totp' | 'recovery';

function verifyHref(m: VerifyPageModel, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams();
  if (m.rule) q.set('rule', m.rule);
  if (m.ticket) q.set('ticket', m.ticket);
  q.set('return_to', m.returnTo);
  if (m.embed) q.set('embed', '1');
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return `${m.prefix}/verify?${q.toString()}`;
}

function duration(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (ms < 60_000) return `${Math.round(ms / 1000)} seconds`;
  if (min < 60) return min === 1 ? '1 minute' : `${min} minutes`;
  const h = Math.round(min / 60);
  return h === 1 ? '1 hour' : `${h} hours`;
}

function hiddenFields(m: VerifyPageModel): string {
  return [
    `<input type="hidden" name="return_to" value="${escapeHtml(m.returnTo)}">`,
    m.ticket ? `<input type="hidden" name="ticket" value="${escapeHtml(m.ticket)}">` : '',
    m.rule ? `<input type="hidden" name="rule" value="${escapeHtml(m.rule)}">` : '',
    m.stash ? `<input type="hidden" name="stash" value="${escapeHtml(m.stash)}">` : '',
  ].join('');
}

export function verifyPage(m: VerifyPageModel): string {
  const known = m.enrolled !== undefined && m.enrolled !== null;
  const enrolled = m.enrolled ?? [];
  const accepts = (f: string) => m.factors.includes(f);
  const passkey = accepts('passkey') && (!known || enrolled.includes('passkey'));
  const totp = accepts('totp') && (!known || enrolled.includes('totp'));
  const recovery = accepts('recovery') && (!known || (m.hasRecoveryCodes ?? enrolled.length > 0));
  const passkeyOnly = m.factors.length === 1 && accepts('passkey');
  const settingsHref = `${m.prefix}/settings?return_to=${encodeURIComponent(verifyHref(m))}`;
  const title = 'Confirm it’s you';
  const heading = `<h1 id="sg-title" tabindex="-1">${title}</h1>`;

  const lede =
    (m.action
      ? `<p class="lede">To <code>${escapeHtml(m.action.method)} ${escapeHtml(m.action.path)}</code>, confirm it’s you.${m.stash ? ' Your form is kept and is sent once you have verified.' : ''}</p>`
      : '<p class="lede">This is a sensitive action. To continue, confirm it’s you.</p>') + (m.notice ? `<p class="note">${escapeHtml(m.notice)}</p>` : '');
  const windowText = m.once ? 'You’ll be asked every time.' : m.maxAgeMs ? `You won’t be asked again for ${duration(m.maxAgeMs)}.` : '';
  const chips = m.rule
    ? m.rule
        .split(',')
        .map((r) => `<span class="chip">${escapeHtml(r)}</span>`)
        .join(' ')
    : '';
  const windowNote =
    chips || windowText
      ? `<p class="meta muted small">${chips ? `<span class="visually-hidden">Protected action: </span>${chips} ` : ''}${windowText}</p>`
      : '';
  const why = passkeyOnly
    ? '<p class="note" id="sg-why">This action accepts only a passkey: passkeys can’t be phished, so codes from an authenticator app and recovery codes don’t work here.</p>'
    : '';
  const errorHtml = m.error ? `<p class="msg msg-error" role="alert">${escapeHtml(m.error)}</p>` : '';
  const status = `<div id="sg-status" class="status" aria-live="polite" aria-atomic="true">${errorHtml}</div>`;
  const cancel = m.embed
    ? '<div class="foot"><button type="button" id="sg-cancel" class="btn btn-quiet">Cancel</button></div>'
    : '<div class="foot"><a class="quiet" href="/">Cancel</a></div>';

  // Signed in without any factor: set one up first (enrolment chains back into this page).
  if (known && enrolled.length === 0) {
    const body = `${heading}${lede}${status}
<p>To protect this action, add a way to confirm it’s you: a passkey (recommended) or an authenticator app.</p>
<a class="btn btn-primary btn-block" id="sg-enroll" href="${escapeHtml(settingsHref)}">Set up a passkey or app</a>
<p class="muted small">You’ll come back here afterwards.</p>${cancel}`;
    return layout({ theme: m.theme, prefix: m.prefix, title, body: body + verifyData(m, { passkey: false, totp: false, recovery: false, initial: null }), embed: m.embed ?? false, script: 'verify' });
  }

  // Has factors, but none this rule accepts (typically: a passkey-only rule and no passkey).
  if (!passkey && !totp && !recovery) {
    const need = passkeyOnly ? 'a passkey' : m.factors.map((f) => (f === 'totp' ? 'an authenticator app' : f === 'passkey' ? 'a passkey' : 'a recovery code')).join(' or ');
    const body = `${heading}${lede}${why}${status}
<p>You don’t have ${need} set up yet.</p>
<a class="btn btn-primary btn-block" href="${escapeHtml(settingsHref)}">Add ${need}</a>${cancel}`;
    return layout({ theme: m.theme, prefix: m.prefix, title, body: body + verifyData(m, { passkey: false, totp: false, recovery: false, initial: null }), embed: m.embed ?? false, script: 'verify' });
  }

  const initial: CodeMode | null = m.use === 'recovery' && recovery ? 'recovery' : m.use === 'totp' && totp ? 'totp' : totp ? 'totp' : recovery ? 'recovery' : null;
  const action = escapeHtml(`${m.prefix}/verify`);
  const passkeySection = passkey
    ? `<section id="sg-passkey" class="choice" hidden>
<button type="button" id="sg-passkey-btn" class="btn btn-primary btn-block">${KEY_ICON}<span>Use passkey</span></button>
<p class="muted small center">Your device asks for your fingerprint, face or screen lock.</p>
</section>
<p id="sg-passkey-unsupported" class="note" hidden>This browser can’t use passkeys.${totp || recovery ? ' Use a code instead.' : ' Open this page in a browser that supports passkeys, or on the device that holds yours.'}</p>
${initial === null ? '<noscript><p class="note">Turn on JavaScript to use your passkey.</p></noscript>' : ''}`
    : '';
  const totpForm = totp
    ? `<form id="sg-totp" class="choice" method="post" action="${action}"${initial === 'totp' ? '' : ' hidden'}>
<label for="sg-totp-code">Code from your authenticator app</label>
<input id="sg-totp-code" class="code-input" name="code" type="text" autocomplete="one-time-code" inputmode="numeric" maxlength="8" spellcheck="false" autocapitalize="off" required aria-describedby="sg-status">
${hiddenFields(m)}
<button type="submit" class="btn btn-primary btn-block">Verify</button>
</form>`
    : '';
  const recoveryForm = recovery
    ? `<form id="sg-recovery" class="choice" method="post" action="${action}"${initial === 'recovery' ? '' : ' hidden'}>
<label for="sg-recovery-code">Recovery code</label>
<input id="sg-recovery-code" class="recovery-input" name="code" type="text" autocomplete="off" maxlength="24" spellcheck="false" autocapitalize="characters" required aria-describedby="sg-recovery-hint sg-status">
<p class="muted small" id="sg-recovery-hint">One of the codes you saved when you set up sign-in security. Each one works once.</p>
${hiddenFields(m)}
<button type="submit" class="btn btn-primary btn-block">Verify</button>
</form>`
    : '';
  // Switches between the choices: real links without JavaScript (a page with that form first), buttons with it.
  const alts = [
    passkey ? `<li><a data-use="passkey" href="${escapeHtml(verifyHref(m))}" hidden>Use your passkey instead</a></li>` : '',
    totp ? `<li><a data-use="totp" href="${escapeHtml(verifyHref(m, { use: 'totp' }))}"${initial === 'totp' ? ' hidden' : ''}>Use your authenticator app</a></li>` : '',
    recovery ? `<li><a data-use="recovery" href="${escapeHtml(verifyHref(m, { use: 'recovery' }))}"${initial === 'recovery' ? ' hidden' : ''}>Use a recovery code</a></li>` : '',
  ].join('');
  const body = `${heading}${lede}${windowNote}${why}${status}
${passkeySection}${totpForm}${recoveryForm}
<ul class="alt" id="sg-alt">${alts}</ul>${cancel}`;
  return layout({ theme: m.theme, prefix: m.prefix, title, body: body + verifyData(m, { passkey, totp, recovery, initial }), embed: m.embed ?? false, script: 'verify' });
}

function verifyData(m: VerifyPageModel, offered: { passkey: boolean; totp: boolean; recovery: boolean; initial: CodeMode | null }): string {
  return jsonBlock('sg-data', {
    prefix: m.prefix,
    ticket: m.ticket,
    returnTo: m.returnTo,
    embed: m.embed ?? false,
    publicOrigin: m.publicOrigin ?? null,
    stash: m.stash ?? null,
    retryAfter: m.retryAfter ?? null,
    useRequested: m.use === 'totp' || m.use === 'recovery' ? m.use : null,
    ...offered,
  });
}

// ---------------------------------------------------------------------------------------------
// Settings page
// ---------------------------------------------------------------------------------------------

export interface SettingsFactor {
  id: string;
  type: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface SettingsPageModel {
  theme: ThemeConfig;
  prefix: string;
  user: string;
  name: string | null;
  factors: readonly SettingsFactor[];
  recoveryLeft: number;
  /** `?invite=CODE` from the `users invite` link: sent with enrolment calls. */
  invite: string | null;
  /** A first method needs an invitation (`enrollment: invite`, or after `users reset`) and none came. */
  inviteMissing?: boolean;
  /** Where to go once a method is set up (the verify page that sent the user here). */
  returnTo: string | null;
  /** `?then=…`: the action to resume after a step-up verification. */
  then: string | null;
}

export const FACTOR_LABELS: Record<string, string> = { passkey: 'Passkey', totp: 'Authenticator app', recovery: 'Recovery codes' };

function day(ms: number): string {
  return new Date(ms).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
}

/** Passkeys first (the preferred factor), then by age. */
export function sortFactors<T extends { type: string; createdAt: number }>(factors: readonly T[]): T[] {
  const rank = (t: string) => (t === 'passkey' ? 0 : t === 'totp' ? 1 : 2);
  return [...factors].sort((a, b) => rank(a.type) - rank(b.type) || a.createdAt - b.createdAt);
}

function factorItem(f: SettingsFactor): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  const label = FACTOR_LABELS[f.type] ?? f.type;
  const used = f.lastUsedAt === null ? 'never used' : `last used <time datetime="${iso(f.lastUsedAt)}">${day(f.lastUsedAt)}</time>`;
  return `<li class="factor" data-id="${escapeHtml(f.id)}" data-type="${escapeHtml(f.type)}">
<span class="factor-icon factor-${escapeHtml(f.type)}" aria-hidden="true"></span>
<div class="factor-text"><strong class="factor-name">${escapeHtml(f.name)}</strong>
<span class="muted small">${f.name === label ? '' : `${escapeHtml(label)} · `}added <time datetime="${iso(f.createdAt)}">${day(f.createdAt)}</time> · ${used}</span></div>
<button type="button" class="btn btn-secondary btn-small" data-remove="${escapeHtml(f.id)}" aria-label="Remove ${escapeHtml(f.name)}" hidden>Remove</button>
</li>`;
}

export function settingsPage(m: SettingsPageModel): string {
  const title = 'Sign-in security';
  const who = m.name ?? m.user;
  const hasTotp = m.factors.some((f) => f.type === 'totp');
  const list = m.factors.length
    ? sortFactors(m.factors).map(factorItem).join('')
    : '';
  const back = m.returnTo
    ? `<p class="back"><a href="${escapeHtml(m.returnTo)}" id="sg-back">← Back to confirming it’s you</a></p>`
    : '';
  const body = `${back}<h1 id="sg-title" tabindex="-1">${title}</h1>
<p class="lede">Signed in as <strong>${escapeHtml(who)}</strong>. ${escapeHtml(m.theme.productName)} asks you to confirm it’s you before sensitive actions, with one of these methods.</p>
<div id="sg-status" class="status" aria-live="polite" aria-atomic="true"></div>
${m.inviteMissing ? '<p class="note" id="sg-invite-note">Setting up your first method needs an invitation. Open the link your administrator gave you.</p>' : ''}
<div id="sg-codes" class="panel panel-attention" hidden tabindex="-1" aria-labelledby="sg-codes-h">
<h2 id="sg-codes-h">Save your recovery codes</h2>
<p class="small">Each code works once, when you can’t use your other methods. Keep them somewhere safe: they won’t be shown again.</p>
<ol id="sg-codes-list" class="codes"></ol>
<div class="row"><button type="button" id="sg-codes-copy" class="btn btn-secondary">Copy</button><button type="button" id="sg-codes-download" class="btn btn-secondary">Download</button><button type="button" id="sg-codes-done" class="btn btn-primary">I’ve saved them</button></div>
</div>
<section id="sg-stepup" class="panel panel-attention" hidden aria-labelledby="sg-stepup-h" tabindex="-1">
<h2 id="sg-stepup-h">Confirm it’s you first</h2>
<p>Changing your sign-in methods needs a verification from the last 5 minutes. You’ll come straight back here.</p>
<a id="sg-stepup-link" class="btn btn-primary" href="${escapeHtml(m.prefix)}/verify">Confirm it’s you</a>
</section>

<section id="sg-continue" class="panel panel-success" hidden aria-labelledby="sg-continue-h" tabindex="-1">
<h2 id="sg-continue-h">You’re set up</h2>
<p>Now confirm it’s you with your new method to finish what you were doing.</p>
<a id="sg-continue-link" class="btn btn-primary" href="${escapeHtml(m.returnTo ?? '/')}">Continue</a>
</section>

<section class="section" aria-labelledby="sg-methods-h">
<h2 id="sg-methods-h">Your methods</h2>
<ul id="sg-factors" class="factor-list"${m.factors.length ? '' : ' hidden'}>${list}</ul>
<p id="sg-empty" class="empty"${m.factors.length ? ' hidden' : ''}>No methods yet. Add a passkey: it’s the quickest and safest.</p>
</section>

<section class="section" aria-labelledby="sg-add-h">
<h2 id="sg-add-h">Add a method</h2>
<div class="method">
<div class="method-head"><span class="factor-icon factor-passkey" aria-hidden="true"></span><div><h3>Passkey <span class="badge">Recommended</span></h3>
<p class="muted small">Confirm with your fingerprint, face or screen lock. Passkeys can’t be phished.</p></div></div>
<button type="button" id="sg-add-passkey" class="btn btn-primary" hidden>Add a passkey</button>
<p id="sg-passkey-unsupported" class="muted small" hidden>This browser can’t create passkeys.</p>
<form id="sg-passkey-form" class="inline-form" hidden>
<label for="sg-passkey-name">Name this passkey</label>
<input id="sg-passkey-name" name="name" type="text" maxlength="64" required autocomplete="off" aria-describedby="sg-passkey-name-hint">
<p class="muted small" id="sg-passkey-name-hint">So you can tell your passkeys apart, for example “Work laptop”.</p>
<div class="row"><button type="submit" class="btn btn-primary">Create passkey</button><button type="button" class="btn btn-secondary" data-close="sg-passkey-form">Cancel</button></div>
</form>
</div>
<div class="method">
<div class="method-head"><span class="factor-icon factor-totp" aria-hidden="true"></span><div><h3>Authenticator app</h3>
<p class="muted small">Enter a 6-digit code from an app on your phone.${hasTotp ? ' Setting up a new one replaces the current one.' : ''}</p></div></div>
<button type="button" id="sg-add-totp" class="btn btn-secondary" hidden>${hasTotp ? 'Replace authenticator app' : 'Set up authenticator app'}</button>
<div id="sg-totp-panel" class="inline-form" hidden tabindex="-1" aria-label="Set up an authenticator app">
<ol class="steps">
<li><p>Scan this QR code with your authenticator app.</p><img id="sg-totp-qr" class="qr" alt="QR code for setting up your authenticator app" width="200" height="200"></li>
<li><p>Can’t scan it? Enter this setup key in the app instead:</p><p><code id="sg-totp-secret" class="secret"></code> <button type="button" class="btn btn-secondary btn-small" id="sg-totp-copy">Copy key</button></p>
<p class="small"><a id="sg-totp-uri" href="#">Open in an authenticator app on this device</a></p></li>
<li><form id="sg-totp-confirm">
<label for="sg-totp-code">Enter the 6-digit code the app shows</label>
<input id="sg-totp-code" class="code-input" name="code" type="text" autocomplete="one-time-code" inputmode="numeric" maxlength="8" spellcheck="false" required>
<div class="row"><button type="submit" class="btn btn-primary">Confirm</button><button type="button" class="btn btn-secondary" data-close="sg-totp-panel">Cancel</button></div>
</form></li>
</ol>
</div>
</div>
</section>

<section class="section" aria-labelledby="sg-recovery-h">
<h2 id="sg-recovery-h">Recovery codes</h2>
<p class="muted small" id="sg-recovery-left">${m.factors.length ? `${m.recoveryLeft} of 10 unused. Use one when you can’t use your other methods.` : 'You get 10 recovery codes when you add your first method.'}</p>
<button type="button" id="sg-regenerate" class="btn btn-secondary" hidden>Get new recovery codes</button>
<div id="sg-regenerate-confirm" class="inline-form" hidden>
<p>Your current recovery codes will stop working.</p>
<div class="row"><button type="button" id="sg-regenerate-yes" class="btn btn-danger">Get new codes</button><button type="button" class="btn btn-secondary" data-close="sg-regenerate-confirm">Cancel</button></div>
</div>
</section>
<noscript><p class="note">Adding or removing methods needs JavaScript.</p></noscript>
<div class="foot"><a class="quiet" href="/">Back to ${escapeHtml(m.theme.productName)}</a></div>
${jsonBlock('sg-data', {
  prefix: m.prefix,
  invite: m.invite,
  returnTo: m.returnTo,
  then: m.then,
  productName: m.theme.productName,
  hasFactors: m.factors.length > 0,
})}`;
  return layout({ theme: m.theme, prefix: m.prefix, title, body, script: 'settings', wide: true });
}

// ---------------------------------------------------------------------------------------------
// Plain message pages
// ---------------------------------------------------------------------------------------------

/** A page with a heading and some trusted HTML. Without `prefix` the stylesheet is inlined. */
export function messagePage(theme: ThemeConfig, title: string, html: string, opts: { prefix?: string; embed?: boolean } = {}): string {
  return layout({ theme, prefix: opts.prefix, title, embed: opts.embed ?? false, body: `<h1 id="sg-title" tabindex="-1">${escapeHtml(title)}</h1>${html}` });
}
