// The settings page ("Sign-in security"): list the user's methods, add a passkey, set up an
// authenticator app, show recovery codes once, regenerate them, remove a method. Once the user has
// a method, changes need a verification from the last 5 minutes: the API answers 403
// STEP_UP_REQUIRED and the page sends the user through the verify page and back (`?then=…`
// resumes what they were doing). `?invite=CODE` (the `users invite` link) rides along on
// enrolment calls; `?return_to=` (set by the verify page) chains a new method into a verification.
import { browserSupportsWebAuthn, startRegistration, type PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/browser';
import { api, type ApiAnswer } from './lib/api.js';
import { $, busy, cleanCode, clearStatus, countdown, focus, h, isWebAuthnCancel, must, pageData, say, show } from './lib/dom.js';

interface SettingsData {
  prefix: string;
  invite: string | null;
  returnTo: string | null;
  then: string | null;
  productName: string;
  hasFactors: boolean;
}

interface Factor {
  id: string;
  type: 'passkey' | 'totp';
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

const d = pageData<SettingsData>();
const LABELS: Record<string, string> = { passkey: 'Passkey', totp: 'Authenticator app' };
const dateFormat = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });

const el = {
  factors: must<HTMLUListElement>('sg-factors'),
  empty: must('sg-empty'),
  stepup: must('sg-stepup'),
  stepupLink: must<HTMLAnchorElement>('sg-stepup-link'),
  continuePanel: must('sg-continue'),
  addPasskey: must<HTMLButtonElement>('sg-add-passkey'),
  passkeyForm: must<HTMLFormElement>('sg-passkey-form'),
  passkeyName: must<HTMLInputElement>('sg-passkey-name'),
  addTotp: must<HTMLButtonElement>('sg-add-totp'),
  totpPanel: must('sg-totp-panel'),
  totpQr: must<HTMLImageElement>('sg-totp-qr'),
  totpSecret: must('sg-totp-secret'),
  totpUri: must<HTMLAnchorElement>('sg-totp-uri'),
  totpConfirm: must<HTMLFormElement>('sg-totp-confirm'),
  totpCode: must<HTMLInputElement>('sg-totp-code'),
  regenerate: must<HTMLButtonElement>('sg-regenerate'),
  regenerateConfirm: must('sg-regenerate-confirm'),
  regenerateYes: must<HTMLButtonElement>('sg-regenerate-yes'),
  recoveryLeft: must('sg-recovery-left'),
  codes: must('sg-codes'),
  codesList: must<HTMLOListElement>('sg-codes-list'),
};

let hasFactors = d.hasFactors;
let shownCodes: string[] = [];
let afterCodes: (() => void) | null = null;

function withInvite<T extends object>(body: T): T & { invite?: string } {
  return d.invite ? { ...body, invite: d.invite } : body;
}

// ---- the list -----------------------------------------------------------------------------------

function day(iso: string): string {
  return dateFormat.format(new Date(iso));
}

function factorItem(f: Factor): HTMLLIElement {
  const remove = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-remove': f.id, 'aria-label': `Remove ${f.name}` }, 'Remove');
  const label = LABELS[f.type] ?? f.type;
  const meta = `${f.name === label ? '' : `${label} · `}added ${day(f.createdAt)} · ${f.lastUsedAt ? `last used ${day(f.lastUsedAt)}` : 'never used'}`;
  return h(
    'li',
    { class: 'factor', 'data-id': f.id, 'data-type': f.type },
    h('span', { class: `factor-icon factor-${f.type}`, 'aria-hidden': 'true' }),
    h('div', { class: 'factor-text' }, h('strong', { class: 'factor-name' }, f.name), h('span', { class: 'muted small' }, meta)),
    remove,
  );
}

async function refresh(): Promise<void> {
  const answer = await api<{ factors: Factor[] }>(d.prefix, '/factors');
  if (!answer.ok) return;
  // Passkeys first (the preferred factor), then by age, as the server renders them.
  const rank = (t: string) => (t === 'passkey' ? 0 : 1);
  const list = [...answer.data.factors].sort((a, b) => rank(a.type) - rank(b.type) || a.createdAt.localeCompare(b.createdAt));
  hasFactors = list.length > 0;
  el.factors.replaceChildren(...list.map(factorItem));
  show(el.factors, hasFactors);
  show(el.empty, !hasFactors);
  show(el.regenerate, hasFactors);
  el.addTotp.textContent = list.some((f) => f.type === 'totp') ? 'Replace authenticator app' : 'Set up authenticator app';
}

// ---- errors and step-up -------------------------------------------------------------------------

/** Sends the user to verify, then back here to resume `then`. */
function stepUp(then: string): void {
  const back = new URLSearchParams({ then });
  if (d.invite) back.set('invite', d.invite);
  if (d.returnTo) back.set('return_to', d.returnTo);
  el.stepupLink.href = `${d.prefix}/verify?return_to=${encodeURIComponent(`${d.prefix}/settings?${back.toString()}`)}`;
  clearStatus();
  show(el.stepup);
  focus(el.stepup);
}

function showError(answer: ApiAnswer<unknown>, then: string, retry?: HTMLElement): void {
  switch (answer.code) {
    case 'STEP_UP_REQUIRED':
      return stepUp(then);
    case 'INVITE_REQUIRED':
      say('error', 'Setting up your first method needs an invitation. Open the link your administrator gave you.');
      return;
    case 'LAST_FACTOR':
      say('error', 'This is your only method. Add another one before removing it.');
      return;
    case 'AUTH_REQUIRED':
      say('error', 'You’re signed out. ', h('a', { href: '/' }, 'Sign in to the application'), ' and come back.');
      return;
    case 'RATE_LIMITED': {
      const timer = h('span', { class: 'timer', 'aria-live': 'off' });
      say('error', 'Too many failed attempts. Try again in ', timer, '.');
      countdown(timer, answer.retryAfter ?? 900, () => say('info', 'You can try again now.'));
      return;
    }
    default:
      say('error', answer.message ?? 'Something went wrong. Try again.');
      focus(retry ?? null);
  }
}

/** After a method was added: recovery codes first (if any), then back to what the user was doing. */
function added(recoveryCodes: string[] | undefined, totp: boolean): void {
  const next = () => {
    if (!d.returnTo) return;
    const p = el.continuePanel.querySelector('p');
    if (p) {
      p.textContent = totp
        ? 'Now confirm it’s you with your authenticator app. Wait until it shows a new code: the one you just entered can’t be used twice.'
        : 'Now confirm it’s you with your new passkey to finish what you were doing.';
    }
    show(el.continuePanel);
    focus(el.continuePanel);
  };
  if (recoveryCodes?.length) showCodes(recoveryCodes, next);
  else next();
}

// ---- passkeys -----------------------------------------------------------------------------------

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /iPhone/.test(ua) ? 'iPhone' : /iPad/.test(ua) ? 'iPad' : /Android/.test(ua) ? 'Android' : /Mac OS X/.test(ua) ? 'Mac' : /Windows/.test(ua) ? 'Windows' : /CrOS/.test(ua) ? 'ChromeOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

function openPasskeyForm(): void {
  el.passkeyName.value ||= deviceName();
  show(el.addPasskey, false);
  show(el.passkeyForm);
  el.passkeyName.focus();
  el.passkeyName.select();
}

function closePanel(id: string): void {
  const panel = $(id);
  show(panel, false);
  if (id === 'sg-passkey-form') {
    show(el.addPasskey);
    el.addPasskey.focus();
  } else if (id === 'sg-totp-panel') {
    show(el.addTotp);
    el.addTotp.focus();
  } else if (id === 'sg-regenerate-confirm') {
    show(el.regenerate);
    el.regenerate.focus();
  }
}

async function createPasskey(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const button = el.passkeyForm.querySelector<HTMLButtonElement>('button[type=submit]')!;
  const name = el.passkeyName.value.trim() || 'Passkey';
  busy(button, true);
  say('info', 'Follow your browser’s prompt to create the passkey…');
  try {
    const options = await api<PublicKeyCredentialCreationOptionsJSON>(d.prefix, '/enroll/passkey/options', withInvite({}));
    if (!options.ok) return showError(options, 'add-passkey', button);
    let response;
    try {
      response = await startRegistration({ optionsJSON: options.data });
    } catch (err) {
      const code = (err as { code?: string }).code;
      say(
        'error',
        isWebAuthnCancel(err)
          ? 'Creating the passkey was cancelled or timed out. Nothing was changed.'
          : code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED'
            ? 'This device already holds a passkey for your account.'
            : `Your browser couldn’t create the passkey (${(err as Error).message}).`,
      );
      return;
    }
    const answer = await api<{ id: string; name: string; recoveryCodes?: string[] }>(d.prefix, '/enroll/passkey', withInvite({ response, name }));
    if (!answer.ok) return showError(answer, 'add-passkey', button);
    show(el.passkeyForm, false);
    el.passkeyName.value = '';
    show(el.addPasskey);
    await refresh();
    say('success', `Passkey “${answer.data.name}” added.`);
    added(answer.data.recoveryCodes, false);
  } finally {
    busy(button, false);
  }
}

// ---- authenticator app --------------------------------------------------------------------------

async function startTotp(): Promise<void> {
  busy(el.addTotp, true);
  const answer = await api<{ secret: string; otpauthUri: string; qrSvg: string }>(d.prefix, '/enroll/totp', withInvite({}));
  busy(el.addTotp, false);
  if (!answer.ok) return showError(answer, 'add-totp', el.addTotp);
  clearStatus();
  // An <img> of the server's SVG: shown, never executed.
  el.totpQr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(answer.data.qrSvg)}`;
  el.totpSecret.textContent = answer.data.secret.replace(/(.{4})(?=.)/g, '$1 ');
  el.totpSecret.dataset.secret = answer.data.secret;
  el.totpUri.href = answer.data.otpauthUri;
  el.totpCode.value = '';
  show(el.addTotp, false);
  show(el.totpPanel);
  focus(el.totpPanel);
}

async function confirmTotp(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const button = el.totpConfirm.querySelector<HTMLButtonElement>('button[type=submit]')!;
  const code = cleanCode(el.totpCode.value);
  if (!/^\d{6}$/.test(code)) {
    say('error', 'Enter the 6-digit code your authenticator app shows.');
    el.totpCode.setAttribute('aria-invalid', 'true');
    el.totpCode.focus();
    return;
  }
  busy(button, true);
  const answer = await api<{ recoveryCodes?: string[] }>(d.prefix, '/enroll/totp/confirm', withInvite({ code }));
  busy(button, false);
  if (!answer.ok) {
    if (answer.code === 'INVALID_CODE') {
      say('error', `That code didn’t match. Check that the app shows the entry for ${d.productName}, and enter its current code.`);
      el.totpCode.value = '';
      el.totpCode.setAttribute('aria-invalid', 'true');
      el.totpCode.focus();
    } else if (answer.code === 'NO_CHALLENGE') {
      say('error', 'The setup expired. Start again.');
      closePanel('sg-totp-panel');
    } else {
      showError(answer, 'add-totp', el.totpCode);
    }
    return;
  }
  el.totpCode.removeAttribute('aria-invalid');
  show(el.totpPanel, false);
  show(el.addTotp);
  await refresh();
  say('success', 'Authenticator app added. The code you just entered is now used up: the next time you’re asked, wait for the app to show a new code.');
  added(answer.data.recoveryCodes, true);
}

// ---- recovery codes -----------------------------------------------------------------------------

const pretty = (code: string) => (code.length === 10 ? `${code.slice(0, 5)}-${code.slice(5)}` : code);

function showCodes(codes: string[], then?: () => void): void {
  shownCodes = codes;
  afterCodes = then ?? null;
  el.codesList.replaceChildren(...codes.map((c) => h('li', {}, h('code', {}, pretty(c)))));
  el.recoveryLeft.textContent = `${codes.length} of ${codes.length} unused. Use one when you can’t use your other methods.`;
  show(el.codes);
  focus(el.codes);
}

function codesText(): string {
  return `${d.productName} recovery codes\n\nEach code works once, when you can't use your passkey or authenticator app.\n\n${shownCodes.map(pretty).join('\n')}\n`;
}

async function copyCodes(): Promise<void> {
  try {
    await navigator.clipboard.writeText(codesText());
    say('success', 'Recovery codes copied.');
  } catch {
    const range = document.createRange();
    range.selectNodeContents(el.codesList);
    getSelection()?.removeAllRanges();
    getSelection()?.addRange(range);
    say('info', 'The codes are selected: copy them with your keyboard or menu.');
  }
}

function downloadCodes(): void {
  const url = URL.createObjectURL(new Blob([codesText()], { type: 'text/plain;charset=utf-8' }));
  const a = h('a', { href: url, download: `${d.productName.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-recovery-codes.txt`, hidden: '' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function codesSaved(): void {
  show(el.codes, false);
  el.codesList.replaceChildren();
  shownCodes = [];
  const then = afterCodes;
  afterCodes = null;
  if (then && d.returnTo) then();
  else focus($('sg-recovery-h'));
}

async function regenerate(): Promise<void> {
  busy(el.regenerateYes, true);
  const answer = await api<{ recoveryCodes: string[] }>(d.prefix, '/recovery/regenerate', {});
  busy(el.regenerateYes, false);
  if (!answer.ok) return showError(answer, 'regenerate', el.regenerateYes);
  show(el.regenerateConfirm, false);
  show(el.regenerate);
  say('success', 'New recovery codes created. The old ones no longer work.');
  showCodes(answer.data.recoveryCodes);
}

// ---- removing -----------------------------------------------------------------------------------

function askRemove(button: HTMLButtonElement): void {
  const item = button.closest<HTMLLIElement>('li.factor');
  if (!item || item.querySelector('.confirm-inline')) return;
  const name = item.querySelector('.factor-name')?.textContent ?? 'this method';
  const yes = h('button', { type: 'button', class: 'btn btn-danger btn-small' }, 'Remove');
  const no = h('button', { type: 'button', class: 'btn btn-secondary btn-small' }, 'Keep');
  const box = h('div', { class: 'confirm-inline', role: 'group', 'aria-label': `Remove ${name}?` }, h('span', { class: 'small' }, `Remove “${name}”?`), yes, no);
  button.hidden = true;
  item.append(box);
  yes.focus();
  no.addEventListener('click', () => {
    box.remove();
    button.hidden = false;
    button.focus();
  });
  yes.addEventListener('click', async () => {
    busy(yes, true);
    const id = item.dataset.id ?? '';
    const answer = await api(d.prefix, `/factors/${encodeURIComponent(id)}`, undefined, 'DELETE');
    busy(yes, false);
    if (!answer.ok) {
      box.remove();
      button.hidden = false;
      return showError(answer, `remove:${id}`, button);
    }
    await refresh();
    say('success', `Removed “${name}”.`);
    focus($('sg-methods-h'));
  });
}

// ---- wiring -------------------------------------------------------------------------------------

const webauthn = browserSupportsWebAuthn();
show(el.addPasskey, webauthn);
show($('sg-passkey-unsupported'), !webauthn);
show(el.addTotp);
show(el.regenerate, hasFactors);
for (const b of el.factors.querySelectorAll<HTMLButtonElement>('[data-remove]')) b.hidden = false;
for (const t of document.querySelectorAll<HTMLTimeElement>('time[datetime]')) t.textContent = day(t.dateTime);

el.addPasskey.addEventListener('click', openPasskeyForm);
el.passkeyForm.addEventListener('submit', (e) => void createPasskey(e));
el.addTotp.addEventListener('click', () => void startTotp());
el.totpConfirm.addEventListener('submit', (e) => void confirmTotp(e));
el.totpCode.addEventListener('input', () => el.totpCode.removeAttribute('aria-invalid'));
$('sg-totp-copy')?.addEventListener('click', () => {
  void navigator.clipboard
    .writeText(el.totpSecret.dataset.secret ?? '')
    .then(() => say('success', 'Setup key copied.'))
    .catch(() => say('info', 'Select the key and copy it.'));
});
el.regenerate.addEventListener('click', () => {
  show(el.regenerate, false);
  show(el.regenerateConfirm);
  el.regenerateYes.focus();
});
el.regenerateYes.addEventListener('click', () => void regenerate());
$('sg-codes-copy')?.addEventListener('click', () => void copyCodes());
$('sg-codes-download')?.addEventListener('click', downloadCodes);
$('sg-codes-done')?.addEventListener('click', codesSaved);
el.factors.addEventListener('click', (event) => {
  const button = (event.target as HTMLElement).closest<HTMLButtonElement>('button[data-remove]');
  if (button) askRemove(button);
});
for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-close]')) {
  b.addEventListener('click', () => closePanel(b.dataset.close ?? ''));
}

// Back from a step-up verification: resume what the user was doing.
if (d.then) {
  const url = new URL(location.href);
  url.searchParams.delete('then');
  history.replaceState(null, '', url.pathname + url.search);
  say('success', 'Thanks, that’s you. You can change your sign-in methods for the next 5 minutes.');
  const [action, arg] = d.then.split(':');
  if (action === 'add-passkey' && webauthn) openPasskeyForm();
  else if (action === 'add-totp') void startTotp();
  else if (action === 'regenerate') el.regenerate.click();
  else if (action === 'remove') el.factors.querySelector<HTMLButtonElement>(`li[data-id="${CSS.escape(arg ?? '')}"] button[data-remove]`)?.click();
  else focus($('sg-title'));
} else {
  focus($('sg-title'));
}
