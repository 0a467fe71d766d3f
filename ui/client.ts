// stepgate's drop-in client (SPEC §5), served at {prefix}/client.js and optionally injected into
// the app's pages. It lets an UNMODIFIED app's fetch/XHR calls survive a step-up: a 403 that the
// gateway marked (X-Stepgate-Challenge: 1, code STEP_UP_REQUIRED) opens one modal with the verify
// page; on success the request is sent again and the app only ever sees the retried answer. The
// app's own 403s are never touched. No dependencies; safe to load twice.

interface Challenge {
  code: string;
  verifyUrl: string;
}

interface StepgateApi {
  fetch: typeof fetch;
  /** Opens the modal for a verify URL; resolves true once the user verified. */
  stepUp(verifyUrl: string): Promise<boolean>;
}

declare global {
  interface Window {
    stepgate?: StepgateApi;
  }
}

(() => {
  if (window.stepgate) return; // idempotent: the script may be injected and also included by hand

  const nativeFetch = window.fetch.bind(window);
  const NativeXHR = window.XMLHttpRequest;
  /** When the latest successful verification happened (requests sent before it are simply retried). */
  let lastVerifiedAt = 0;
  let pending: Promise<boolean> | null = null;

  function isChallengeStatus(status: number, header: string | null): boolean {
    return status === 403 && header === '1';
  }

  function parseChallenge(text: string): Challenge | null {
    try {
      const body = JSON.parse(text) as Partial<Challenge>;
      return body && body.code === 'STEP_UP_REQUIRED' && typeof body.verifyUrl === 'string' ? (body as Challenge) : null;
    } catch {
      return null;
    }
  }

  /** Only same-origin relative verify URLs are opened (the body could come from anywhere). */
  function embedUrl(verifyUrl: string): string | null {
    const url = new URL(verifyUrl, location.href);
    if (url.origin !== location.origin) return null;
    url.searchParams.set('embed', '1');
    return url.href;
  }

  // ----- the modal: one at a time, shared by every challenged request -----

  function stepUp(verifyUrl: string): Promise<boolean> {
    if (pending) return pending;
    const src = embedUrl(verifyUrl);
    if (!src) return Promise.resolve(false);
    pending = new Promise<boolean>((resolve) => {
      const previousFocus = document.activeElement as HTMLElement | null;
      const backdrop = document.createElement('div');
      backdrop.setAttribute('data-stepgate', 'modal');
      backdrop.style.cssText =
        'position:fixed;inset:0;z-index:2147483647;background:rgba(15,23,42,.55);display:flex;align-items:center;justify-content:center;padding:16px';
      const dialog = document.createElement('div');
      dialog.setAttribute('role', 'dialog');
      dialog.setAttribute('aria-modal', 'true');
      dialog.setAttribute('aria-label', 'Confirm it’s you');
      dialog.style.cssText =
        'position:relative;width:min(440px,100%);height:min(560px,calc(100vh - 32px));background:Canvas;color:CanvasText;border-radius:12px;box-shadow:0 20px 50px rgba(0,0,0,.35);overflow:hidden';
      const frame = document.createElement('iframe');
      frame.src = src;
      frame.title = 'Confirm it’s you';
      frame.style.cssText = 'border:0;width:100%;height:100%';
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.textContent = 'Cancel';
      cancel.setAttribute('data-stepgate', 'cancel');
      cancel.style.cssText =
        'position:absolute;top:8px;right:8px;font:inherit;font-size:14px;padding:6px 10px;border-radius:6px;border:1px solid rgba(128,128,128,.5);background:Canvas;color:CanvasText;cursor:pointer';
      dialog.append(frame, cancel);
      backdrop.append(dialog);

      const finish = (ok: boolean) => {
        window.removeEventListener('message', onMessage);
        document.removeEventListener('keydown', onKey, true);
        backdrop.remove();
        pending = null;
        if (ok) lastVerifiedAt = Date.now();
        previousFocus?.focus?.();
        window.dispatchEvent(new CustomEvent(ok ? 'stepup:ok' : 'stepup:cancel'));
        resolve(ok);
      };
      const onMessage = (event: MessageEvent) => {
        // Only the verify page we opened, on our own origin, may end the step-up.
        if (event.origin !== location.origin || event.source !== frame.contentWindow) return;
        const type = (event.data as { type?: unknown } | null)?.type;
        if (type === 'stepgate:ok') finish(true);
        else if (type === 'stepgate:cancel') finish(false);
      };
      const onKey = (event: KeyboardEvent) => {
        if (event.key === 'Escape') {
          event.preventDefault();
          finish(false);
        }
      };
      cancel.addEventListener('click', () => finish(false));
      window.addEventListener('message', onMessage);
      document.addEventListener('keydown', onKey, true);
      document.body.append(backdrop);
      frame.addEventListener('load', () => frame.focus());
      frame.focus();
    });
    return pending;
  }

  // ----- fetch -----

  /** The app's AbortSignal still works while the user is in the modal: the promise rejects at once, as fetch's would. */
  function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async function stepgateFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    // Kept before sending: a body can be read only once.
    const retry = request.clone();
    const sentAt = Date.now();
    const response = await nativeFetch(request);
    if (!isChallengeStatus(response.status, response.headers.get('x-stepgate-challenge'))) return response;
    const challenge = parseChallenge(await response.clone().text());
    if (!challenge) return response;
    // Sent before a verification that has happened since: it only needs sending again.
    const verified = sentAt < lastVerifiedAt || (await untilAborted(stepUp(challenge.verifyUrl), request.signal));
    if (!verified) return response;
    // Retried once; a second challenge is handed to the app as it is (no loop).
    return nativeFetch(retry);
  }

  // ----- XMLHttpRequest -----

  type Listener = EventListenerOrEventListenerObject;
  const EVENTS = ['readystatechange', 'loadstart', 'progress', 'abort', 'error', 'load', 'timeout', 'loadend'] as const;

  /**
   * Looks like an XMLHttpRequest to the app; underneath, one native XHR per attempt. Once a
   * challenge is recognised (status and header at HEADERS_RECEIVED), that attempt's events are
   * held back; after a step-up a new native XHR replays method, URL, headers, body, responseType,
   * withCredentials and timeout, and its events reach the app. The app's `on*` handlers and
   * listeners get events dispatched on this object (so `e.target` is the object they know); the
   * object may be reused (each open() starts a new request); abort() while the user is in the
   * modal ends that request as a native abort would, and it is not retried.
   */
  class StepgateXHR extends EventTarget {
    static readonly UNSENT = 0;
    static readonly OPENED = 1;
    static readonly HEADERS_RECEIVED = 2;
    static readonly LOADING = 3;
    static readonly DONE = 4;
    readonly UNSENT = 0;
    readonly OPENED = 1;
    readonly HEADERS_RECEIVED = 2;
    readonly LOADING = 3;
    readonly DONE = 4;

    onreadystatechange: ((this: XMLHttpRequest, ev: Event) => unknown) | null = null;
    onloadstart: ((ev: ProgressEvent) => unknown) | null = null;
    onprogress: ((ev: ProgressEvent) => unknown) | null = null;
    onabort: ((ev: ProgressEvent) => unknown) | null = null;
    onerror: ((ev: ProgressEvent) => unknown) | null = null;
    onload: ((ev: ProgressEvent) => unknown) | null = null;
    ontimeout: ((ev: ProgressEvent) => unknown) | null = null;
    onloadend: ((ev: ProgressEvent) => unknown) | null = null;

    private inner = new NativeXHR();
    private openArgs: [string, string, boolean, string | null | undefined, string | null | undefined] | null = null;
    private headers: Array<[string, string]> = [];
    private body: Document | XMLHttpRequestBodyInit | null | undefined = null;
    private mime: string | null = null;
    private settings = { responseType: '' as XMLHttpRequestResponseType, withCredentials: false, timeout: 0 };
    private holding = false;
    private retried = false;
    private sentAt = 0;
    /** Bumped by open() and abort(): a step-up that ends after either must not retry anything. */
    private generation = 0;
    /** After abort() during a step-up: the readyState reported (DONE while its events fire, then UNSENT). */
    private aborted: number | null = null;

    constructor() {
      super();
      // The on* handlers run as part of dispatch, like native event handler attributes.
      for (const type of EVENTS) {
        this.addEventListener(type, (event) => {
          const handler = (this as unknown as Record<string, unknown>)[`on${type}`];
          if (typeof handler === 'function') (handler as (e: Event) => void).call(this, event);
        });
      }
      this.attach(this.inner);
    }

    /** Nothing to show the app: the request is held for a step-up, or was aborted during one. */
    private get blank(): boolean {
      return this.holding || this.aborted !== null;
    }

    get upload(): XMLHttpRequestUpload {
      return this.inner.upload;
    }
    get readyState(): number {
      return this.aborted ?? (this.holding ? 1 : this.inner.readyState);
    }
    get status(): number {
      return this.blank ? 0 : this.inner.status;
    }
    get statusText(): string {
      return this.blank ? '' : this.inner.statusText;
    }
    get response(): unknown {
      if (this.blank) return this.settings.responseType === '' || this.settings.responseType === 'text' ? '' : null;
      return this.inner.response;
    }
    get responseText(): string {
      return this.blank ? '' : this.inner.responseText;
    }
    get responseXML(): Document | null {
      return this.blank ? null : this.inner.responseXML;
    }
    get responseURL(): string {
      return this.inner.responseURL;
    }
    get responseType(): XMLHttpRequestResponseType {
      return this.settings.responseType;
    }
    set responseType(v: XMLHttpRequestResponseType) {
      this.settings.responseType = v;
      this.inner.responseType = v;
    }
    get withCredentials(): boolean {
      return this.settings.withCredentials;
    }
    set withCredentials(v: boolean) {
      this.settings.withCredentials = v;
      this.inner.withCredentials = v;
    }
    get timeout(): number {
      return this.settings.timeout;
    }
    set timeout(v: number) {
      this.settings.timeout = v;
      this.inner.timeout = v;
    }

    open(method: string, url: string | URL, async = true, user?: string | null, password?: string | null): void {
      this.openArgs = [method, String(url), async, user, password];
      this.headers = [];
      this.holding = false;
      this.retried = false;
      this.aborted = null;
      this.generation++;
      this.inner.open(method, String(url), async, user, password);
    }
    setRequestHeader(name: string, value: string): void {
      this.headers.push([name, value]);
      this.inner.setRequestHeader(name, value);
    }
    overrideMimeType(mime: string): void {
      this.mime = mime;
      this.inner.overrideMimeType(mime);
    }
    send(body?: Document | XMLHttpRequestBodyInit | null): void {
      this.body = body;
      this.sentAt = Date.now();
      this.inner.send(body);
    }
    abort(): void {
      this.generation++;
      if (!this.holding) {
        this.inner.abort();
        return;
      }
      // The challenged attempt is over; only the step-up was pending. What a native abort() of a
      // request in flight does: DONE with status 0, readystatechange, abort, loadend, then UNSENT.
      this.holding = false;
      this.aborted = 4;
      for (const type of ['readystatechange', 'abort', 'loadend']) this.emit(type, type === 'readystatechange' ? new Event(type) : new ProgressEvent(type));
      this.aborted = 0;
    }
    getResponseHeader(name: string): string | null {
      return this.blank ? null : this.inner.getResponseHeader(name);
    }
    getAllResponseHeaders(): string {
      return this.blank ? '' : this.inner.getAllResponseHeaders();
    }

    private attach(xhr: XMLHttpRequest): void {
      for (const type of EVENTS) {
        xhr.addEventListener(type, (event) => {
          if (xhr !== this.inner || this.aborted !== null) return; // a superseded attempt
          // Each request (each open()) is watched for a challenge until it has been retried once.
          if (type === 'readystatechange' && xhr.readyState === 2 && !this.retried) {
            this.holding = isChallengeStatus(xhr.status, xhr.getResponseHeader('x-stepgate-challenge'));
          }
          if (this.holding) {
            if (type === 'loadend') void this.afterChallenge(xhr);
            return;
          }
          // The retry's start was already announced by the first attempt.
          if (this.retried && (type === 'loadstart' || (type === 'readystatechange' && xhr.readyState === 1))) return;
          this.emit(type, event);
        });
      }
    }

    /** A copy of a native event, dispatched on this object (the on* handlers run from the constructor's listeners). */
    private emit(type: string, source: Event): void {
      const copy =
        source instanceof ProgressEvent
          ? new ProgressEvent(type, { lengthComputable: source.lengthComputable, loaded: source.loaded, total: source.total })
          : new Event(type);
      this.dispatchEvent(copy);
    }

    private async afterChallenge(first: XMLHttpRequest): Promise<void> {
      const generation = this.generation;
      const challenge = parseChallenge(await responseText(first));
      const verified = challenge !== null && (this.sentAt < lastVerifiedAt || (await stepUp(challenge.verifyUrl)));
      // The app aborted, or reused this object for another request, while the user was verifying.
      if (generation !== this.generation) return;
      if (!verified || !this.openArgs) {
        // Cancelled (or not ours after all): the app gets the original 403 and its events.
        this.holding = false;
        for (const type of ['readystatechange', 'load', 'loadend']) this.emit(type, type === 'readystatechange' ? new Event(type) : new ProgressEvent(type));
        return;
      }
      const retry = new NativeXHR();
      this.inner = retry;
      this.holding = false;
      this.retried = true;
      this.attach(retry);
      retry.open(...this.openArgs);
      retry.responseType = this.settings.responseType;
      retry.withCredentials = this.settings.withCredentials;
      retry.timeout = this.settings.timeout;
      if (this.mime) retry.overrideMimeType(this.mime);
      for (const [name, value] of this.headers) retry.setRequestHeader(name, value);
      retry.send(this.body);
    }
  }

  /** The challenge body, whatever responseType the app asked for. */
  async function responseText(xhr: XMLHttpRequest): Promise<string> {
    switch (xhr.responseType) {
      case '':
      case 'text':
        return xhr.responseText;
      case 'json':
        return JSON.stringify(xhr.response);
      case 'blob':
        return (xhr.response as Blob | null)?.text() ?? '';
      case 'arraybuffer':
        return xhr.response ? new TextDecoder().decode(xhr.response as ArrayBuffer) : '';
      default:
        return '';
    }
  }

  window.fetch = stepgateFetch;
  window.XMLHttpRequest = StepgateXHR as unknown as typeof XMLHttpRequest;
  window.stepgate = { fetch: stepgateFetch, stepUp };
})();

export {};
