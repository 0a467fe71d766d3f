// Small DOM helpers shared by the hosted pages: finding elements, the live status region,
// countdowns, and reading the data block the server rendered.

export function $(id: string): HTMLElement | null {
  return document.getElementById(id);
}

export function must<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
}

/** The server's `<script type="application/json" id="sg-data">` block. */
export function pageData<T>(): T {
  return JSON.parse(must('sg-data').textContent ?? '{}') as T;
}

export function show(el: HTMLElement | null, visible = true): void {
  if (el) el.hidden = !visible;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  el.append(...children);
  return el;
}

export type Tone = 'error' | 'info' | 'success';

/**
 * Writes one message into the page's aria-live region (`#sg-status`), replacing the previous one.
 * Errors use role=alert so screen readers announce them at once.
 */
export function say(tone: Tone, ...content: (Node | string)[]): HTMLElement {
  const region = must('sg-status');
  const p = h('p', { class: `msg msg-${tone}` }, ...content);
  if (tone === 'error') p.setAttribute('role', 'alert');
  region.replaceChildren(p);
  return p;
}

export function clearStatus(): void {
  $('sg-status')?.replaceChildren();
}

export function mmss(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * A visible countdown (role=timer, which screen readers do not announce every second; the message
 * around it was announced once). Calls `done` at zero. Returns a function that stops it.
 */
export function countdown(into: HTMLElement, seconds: number, done: () => void): () => void {
  const end = Date.now() + seconds * 1000;
  into.setAttribute('role', 'timer');
  const tick = () => {
    const left = (end - Date.now()) / 1000;
    into.textContent = mmss(left);
    if (left <= 0) {
      clearInterval(timer);
      done();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  return () => clearInterval(timer);
}

/** Moves keyboard and screen-reader focus to an element (made focusable if it is not). */
export function focus(el: HTMLElement | null): void {
  if (!el) return;
  if (!el.hasAttribute('tabindex') && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) el.setAttribute('tabindex', '-1');
  el.focus();
}

export function busy(button: HTMLButtonElement, on: boolean): void {
  button.disabled = on;
  if (on) button.setAttribute('aria-busy', 'true');
  else button.removeAttribute('aria-busy');
}

/** Spaces are ignored in codes (SPEC §8). */
export function cleanCode(value: string): string {
  return value.replace(/\s+/g, '');
}

/** Did the user (or the browser) dismiss the WebAuthn prompt? */
export function isWebAuthnCancel(err: unknown): boolean {
  const e = err as { name?: string; code?: string; cause?: { name?: string } } | null;
  const name = e?.cause?.name ?? e?.name;
  return name === 'NotAllowedError' || name === 'AbortError' || e?.code === 'ERROR_CEREMONY_ABORTED';
}
