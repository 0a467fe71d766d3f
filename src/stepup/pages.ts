// The gateway's HTML pages. Until the hosted UI lands (passkeys, settings, modal), these are plain
// server-rendered pages that already work without JavaScript: the verify page posts a code to
// `POST {prefix}/verify`, which grants and sends the user back to `return_to`.
import type { ThemeConfig } from '../config/types.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(theme: ThemeConfig, title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · ${escapeHtml(theme.productName)}</title>
<style>
:root{--accent:${theme.accent};color-scheme:light dark;font-family:system-ui,sans-serif}
body{max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
input,button{font:inherit;padding:.5rem .75rem;border-radius:.4rem;border:1px solid #8888}
button{background:var(--accent);color:#fff;border:0;cursor:pointer}
.error{color:#b91c1c}
</style></head><body><main>${body}</main></body></html>`;
}

export interface VerifyPageModel {
  theme: ThemeConfig;
  prefix: string;
  rule: string | null;
  ticket: string | null;
  returnTo: string;
  factors: readonly string[];
  error: string | null;
}

export function verifyPage(m: VerifyPageModel): string {
  const codeFactors = m.factors.filter((f) => f !== 'passkey');
  const what = m.rule ? `<p>This action (<strong>${escapeHtml(m.rule)}</strong>) needs a fresh verification.</p>` : '<p>Confirm it’s you to continue.</p>';
  const form = codeFactors.length
    ? `<form method="post" action="${escapeHtml(m.prefix)}/verify">
<label for="code">${codeFactors.includes('totp') ? 'Code from your authenticator app' : 'Recovery code'}${codeFactors.includes('totp') && codeFactors.includes('recovery') ? ' (or a recovery code)' : ''}</label><br>
<input id="code" name="code" autocomplete="one-time-code" inputmode="${codeFactors.includes('totp') ? 'numeric' : 'text'}" required autofocus>
<input type="hidden" name="return_to" value="${escapeHtml(m.returnTo)}">
${m.ticket ? `<input type="hidden" name="ticket" value="${escapeHtml(m.ticket)}">` : ''}
${m.rule ? `<input type="hidden" name="rule" value="${escapeHtml(m.rule)}">` : ''}
<button type="submit">Verify</button></form>`
    : '<p>This action accepts only a passkey.</p>';
  const error = m.error ? `<p class="error" role="alert">${escapeHtml(m.error)}</p>` : '';
  return layout(m.theme, 'Confirm it’s you', `<h1>Confirm it’s you</h1>${what}${error}${form}`);
}

export function messagePage(theme: ThemeConfig, title: string, html: string): string {
  return layout(theme, title, `<h1>${escapeHtml(title)}</h1>${html}`);
}
