// The verify page ("Confirm it’s you"), enhanced: passkey first (when the user has one and the
// browser can), the authenticator-app code as the fallback, a recovery code as the last resort.
// The server rendered only the factors the rule accepts and the user has; without JavaScript the
// code forms post to `POST {prefix}/verify` and still work. On success: back to `return_to`, or in
// embed mode (the drop-in client's modal) a postMessage to the parent at the public origin.
import { browserSupportsWebAuthn, startAuthentication, type PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/browser';
import { api, type ApiAnswer } from './lib/api.js';
import { $, busy, cleanCode, clearStatus, countdown, focus, h, isWebAuthnCancel, pageData, say, show } from './lib/dom.js';

type Mode = 'passkey' | 'totp' | 'recovery';

interface VerifyData {
  prefix: string;
  ticket: string | null;
  returnTo: string;
  embed: boolean;
  publicOrigin: string | null;
  stash: string | null;
  retryAfter: number | null;
  useRequested: 'totp' | 'recovery' | null;
  passkey: boolean;
  totp: boolean;
  recovery: boolean;
}

const d = pageData<VerifyData>();
const framed = window.parent !== window;
const passkeyUsable = d.passkey && browserSupportsWebAuthn();
const available = (['passkey', 'totp', 'recovery'] as const).filter((m) => (m === 'passkey' ? passkeyUsable : d[m]));
const passkeyButton = $('sg-passkey-btn') as HTMLButtonElement | null;
const forms = { totp: $('sg-totp') as HTMLFormElement | null, recovery: $('sg-recovery') as HTMLFormElement | null };
const inputs = { totp: $('sg-totp-code') as HTMLInputElement | null, recovery: $('sg-recovery-code') as HTMLInputElement | null };
let stopCountdown: (() => void) | null = null;
let done = false;

/** The ticket names the challenged session when the browser's own credentials cannot (SPEC §5). */
function withTicket<T extends object>(body: T): T & { ticket?: string } {
  return d.ticket ? { ...body, ticket: d.ticket } : body;
}

function setMode(mode: Mode, moveFocus: boolean): void {
  show($('sg-passkey'), mode === 'passkey');
  show(forms.totp, mode === 'totp');
  show(forms.recovery, mode === 'recovery');
  for (const link of document.querySelectorAll<HTMLAnchorElement>('#sg-alt a[data-use]')) {
    const use = link.dataset.use as Mode;
    link.hidden = use === mode || !available.includes(use);
  }
  if (moveFocus) focus(mode === 'passkey' ? passkeyButton : inputs[mode]);
}

function setCodesDisabled(disabled: boolean): void {
  for (const input of [inputs.totp, inputs.recovery]) if (input && disabled) input.value = '';
  for (const form of [forms.totp, forms.recovery]) {
    form?.querySelectorAll<HTMLInputElement | HTMLButtonElement>('input:not([type=hidden]), button').forEach((el) => (el.disabled = disabled));
  }
}

function lockedOut(seconds: number): void {
  const timer = h('span', { class: 'timer', 'aria-live': 'off' });
  const parts: (Node | string)[] = ['Too many failed attempts. You can try again in ', timer, '.'];
  if (passkeyUsable) parts.push(' You can still use your passkey.');
  say('error', ...parts);
  setCodesDisabled(true);
  stopCountdown?.();
  stopCountdown = countdown(timer, seconds, () => {
    setCodesDisabled(false);
    say('info', 'You can try again now.');
  });
}

function markInvalid(input: HTMLInputElement | null, message: string): void {
  say('error', message);
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  input.value = '';
  input.focus();
}

function showError(answer: ApiAnswer<unknown>, via: Mode): void {
  switch (answer.code) {
    case 'RATE_LIMITED':
      return lockedOut(answer.retryAfter ?? 15 * 60);
    case 'INVALID_CODE':
      return via === 'recovery'
        ? markInvalid(inputs.recovery, 'That recovery code didn’t work. Check it for typos, or use another one: each code works once.')
        : markInvalid(inputs.totp, 'That code didn’t work. Enter the code your app shows now; each code works only once.');
    case 'FACTOR_DISABLED':
      setCodesDisabled(true);
      say('error', answer.message ?? 'Codes are disabled for this account.');
      if (passkeyUsable) setMode('passkey', true);
      return;
    case 'AUTH_REQUIRED':
      say('error', `${answer.message ?? 'Your session ended.'} `, h('a', { href: d.returnTo }, 'Start again'));
      return;
    case 'PASSKEY_REJECTED':
      return passkeyFailed('Your passkey couldn’t be verified.');
    default:
      say('error', answer.message ?? 'Something went wrong. Try again.');
  }
}

/** The passkey did not work out: never a dead end — offer the next factor right there. */
function passkeyFailed(what: string): void {
  if (passkeyButton) busy(passkeyButton, false);
  const fallback = available.find((m) => m !== 'passkey');
  if (fallback) {
    setMode(fallback, true);
    say('error', `${what} ${fallback === 'totp' ? 'Enter a code from your authenticator app instead, or try your passkey again.' : 'Use a recovery code instead, or try your passkey again.'}`);
  } else {
    say('error', `${what} Try again.`);
    focus(passkeyButton);
  }
}

function succeeded(): void {
  done = true;
  stopCountdown?.();
  say('success', 'Verified. Taking you back…');
  setCodesDisabled(true);
  if (passkeyButton) passkeyButton.disabled = true;
  if (d.embed && framed && d.publicOrigin) {
    // Only the page at the public origin may hear about it; never '*'.
    window.parent.postMessage({ type: 'stepgate:ok' }, d.publicOrigin);
    return;
  }
  if (d.stash) {
    // The stashed form is replayed by the page's own POST, once (SPEC §5). No ticket: the
    // verification just made spent it, and the grant it made belongs to this browser's session.
    const form = h('form', { method: 'post', action: `${d.prefix}/verify`, hidden: '' });
    for (const [name, value] of Object.entries({ stash: d.stash, return_to: d.returnTo })) {
      if (value) form.append(h('input', { type: 'hidden', name, value }));
    }
    document.body.append(form);
    form.submit();
    return;
  }
  location.assign(d.returnTo);
  offerWayBack();
}

/**
 * When `return_to` answers with an attachment (a download link), the browser saves the file and
 * stays on this page: after a moment, say so and offer the way back instead of "Taking you back…"
 * forever.
 */
function offerWayBack(): void {
  let leaving = false;
  window.addEventListener('pagehide', () => (leaving = true), { once: true });
  window.setTimeout(() => {
    if (leaving) return;
    const back = h('a', { href: '/', id: 'sg-back' }, 'Back to the application');
    // The page that sent the user here (the one with the link) is one step back in history.
    back.addEventListener('click', (event) => {
      if (history.length < 2) return;
      event.preventDefault();
      history.back();
    });
    say('success', 'Verified. If that was a download, it’s in your downloads. ', back);
  }, 1500);
}

async function usePasskey(): Promise<void> {
  if (!passkeyButton || done) return;
  busy(passkeyButton, true);
  say('info', 'Waiting for your passkey…');
  try {
    const options = await api<PublicKeyCredentialRequestOptionsJSON>(d.prefix, '/verify/passkey/options', withTicket({}));
    if (!options.ok) return showError(options, 'passkey');
    let response;
    try {
      response = await startAuthentication({ optionsJSON: options.data });
    } catch (err) {
      return passkeyFailed(isWebAuthnCancel(err) ? 'The passkey prompt was closed or timed out.' : 'Your passkey couldn’t be used.');
    }
    const answer = await api(d.prefix, '/verify/passkey', withTicket({ ...response }));
    if (answer.ok) return succeeded();
    showError(answer, 'passkey');
  } finally {
    if (!done) busy(passkeyButton, false);
  }
}

async function submitCode(kind: 'totp' | 'recovery', event: SubmitEvent): Promise<void> {
  // With a stashed form the native post is the one that replays it; let it go.
  if (d.stash) return;
  event.preventDefault();
  if (done) return;
  const input = inputs[kind];
  const button = forms[kind]?.querySelector<HTMLButtonElement>('button[type=submit]');
  if (!input || !button) return;
  const code = cleanCode(input.value);
  if (kind === 'totp' && !/^\d{6}$/.test(code)) return markInvalid(input, 'Enter the 6-digit code from your authenticator app.');
  if (kind === 'recovery' && code.replace(/-/g, '').length < 10) return markInvalid(input, 'Enter one of your recovery codes: 10 letters and digits.');
  input.removeAttribute('aria-invalid');
  busy(button, true);
  say('info', 'Checking…');
  const answer = await api(d.prefix, `/verify/${kind}`, withTicket({ code }));
  if (answer.ok) return succeeded();
  busy(button, false);
  showError(answer, kind);
}

function cancel(): void {
  if (framed && d.publicOrigin) window.parent.postMessage({ type: 'stepgate:cancel' }, d.publicOrigin);
  else if (history.length > 1) history.back();
  else location.assign('/');
}

// ---- wiring -------------------------------------------------------------------------------------

if (d.passkey && !passkeyUsable) show($('sg-passkey-unsupported'));
passkeyButton?.addEventListener('click', () => void usePasskey());
forms.totp?.addEventListener('submit', (e) => void submitCode('totp', e));
forms.recovery?.addEventListener('submit', (e) => void submitCode('recovery', e));
for (const input of [inputs.totp, inputs.recovery]) input?.addEventListener('input', () => input.removeAttribute('aria-invalid'));
for (const link of document.querySelectorAll<HTMLAnchorElement>('#sg-alt a[data-use]')) {
  link.addEventListener('click', (event) => {
    event.preventDefault();
    const use = link.dataset.use as Mode;
    if (!available.includes(use)) return;
    if (!stopCountdown) clearStatus();
    setMode(use, true);
  });
}
$('sg-cancel')?.addEventListener('click', cancel);
if (d.embed) {
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') cancel();
  });
}

const first: Mode | undefined = d.useRequested && available.includes(d.useRequested) ? d.useRequested : available[0];
if (first) setMode(first, false);
if (d.retryAfter) lockedOut(d.retryAfter);
// Focus: the code input when typing a code is the first thing to do, otherwise the heading, so
// screen readers start at the top of what changed (and, in the modal, focus is inside it).
if (first === 'totp' || first === 'recovery') focus(inputs[first]);
else focus($('sg-title'));
