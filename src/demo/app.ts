/**
 * "Acme Portal": the bundled demo legacy app that `npm run demo` and the tests put stepgate in front of.
 *
 * It is deliberately an ordinary, unmodified web app: its own login form, in-memory sessions keyed by a
 * `sid` cookie, bearer tokens for API clients, a handful of sensitive routes (the ones the example rules
 * of routes.yaml gate) and server-rendered pages that reach them the three ways legacy front ends do:
 * buttons calling fetch (billing, devices, closing the account), an older XMLHttpRequest button (API
 * keys), plain HTML form posts (password change, team invites) and a download link (the CSV export).
 * It routes the way
 * Express does (case-insensitive, optional trailing slash) so the gateway is exercised against the
 * routing semantics it has to defend. The only nod to its environment is a generic debug echo of any
 * `X-Stepgate-*` request headers in its JSON answers, so tests and the demo can show what the app received.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoUser {
  id: string;
  email: string;
  password: string;
  name: string;
}

export const DEMO_USERS: readonly DemoUser[] = Object.freeze(
  [
    { id: 'u-alice', email: 'alice@example.com', password: 'alice-password', name: 'Alice Liddell' },
    { id: 'u-bob', email: 'bob@example.com', password: 'bob-password', name: 'Bob Marley' },
  ].map((user) => Object.freeze(user)),
);

export interface DemoApp {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
const SESSION_COOKIE = 'sid';

// ---------------------------------------------------------------------------------------------------
// Errors and responses
// ---------------------------------------------------------------------------------------------------

/** Thrown by handlers and body parsing; the dispatcher turns it into a JSON error answer. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly closeConnection = false,
  ) {
    super(code);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(html);
}

function redirect(res: ServerResponse, location: string, setCookie?: string): void {
  res.writeHead(303, setCookie === undefined ? { Location: location } : { Location: location, 'Set-Cookie': setCookie });
  res.end();
}

function sessionCookie(value: string, clear = false): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Lax${clear ? '; Max-Age=0' : ''}`;
}

/** The generic debug echo: every request header named `x-stepgate-*`, as received. */
function gatewayHeaders(req: IncomingMessage): Record<string, string> {
  const echoed: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-stepgate-') && value !== undefined) echoed[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return echoed;
}

// ---------------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------------

type Body = { kind: 'json'; value: unknown } | { kind: 'form'; value: URLSearchParams } | { kind: 'empty' };

/**
 * Reads the whole body, at most MAX_BODY_BYTES. Over the cap it stops reading (pausing rather than
 * destroying the request, which would take the socket and the 413 with it); the 413 then closes the
 * connection, since keeping it alive would mean reading and discarding the rest, however long it is.
 */
function readRaw(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return reject(new HttpError(413, 'payload_too_large', true));
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      req.off('data', onData);
      req.pause();
      reject(new HttpError(413, 'payload_too_large', true));
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new Error('client went away before sending the whole body'));
    });
  });
}

async function readBody(req: IncomingMessage): Promise<Body> {
  const raw = (await readRaw(req)).toString('utf8');
  if (raw.length === 0) return { kind: 'empty' };

  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return { kind: 'json', value: JSON.parse(raw) as unknown };
    } catch {
      throw new HttpError(400, 'bad_json');
    }
  }
  if (type === 'application/x-www-form-urlencoded') return { kind: 'form', value: new URLSearchParams(raw) };
  throw new HttpError(415, 'unsupported_media_type');
}

/** A string field of a form or of a JSON object body. */
function field(body: Body, name: string): string | undefined {
  if (body.kind === 'form') return body.value.get(name) ?? undefined;
  if (body.kind === 'json' && typeof body.value === 'object' && body.value !== null && !Array.isArray(body.value)) {
    const value: unknown = (body.value as Record<string, unknown>)[name];
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/** The body as plain data for echoing back: JSON as sent, a form as an object, nothing as null. */
function bodyData(body: Body): unknown {
  if (body.kind === 'json') return body.value;
  if (body.kind === 'form') return Object.fromEntries(body.value);
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Routing: a small Express-like route table
// ---------------------------------------------------------------------------------------------------

interface Auth {
  user: DemoUser;
  /** Present when the request was authenticated by the session cookie rather than a bearer token. */
  sid?: string;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  params: Readonly<Record<string, string>>;
  auth: Auth | undefined;
}

interface AuthedCtx extends Ctx {
  auth: Auth;
}

type Handler<C> = (c: C) => void | Promise<void>;

/** `open` routes serve everyone; `page` routes send strangers to the login form; `api` routes answer 401 JSON. */
type Route = { method: string; regex: RegExp; names: string[] } & (
  | { access: 'open'; handle: Handler<Ctx> }
  | { access: 'page' | 'api'; handle: Handler<AuthedCtx> }
);

/**
 * Compiles `/a/:name/b/*` to a regex with Express's defaults: case-insensitive, an optional trailing
 * slash, `:name` is one non-empty segment, and a final `*` is any rest (also none), captured as `*`.
 */
function compilePath(path: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const segments = path.split('/').filter((segment) => segment !== '');
  const source = segments
    .map((segment, index) => {
      if (segment === '*' && index === segments.length - 1) {
        names.push('*');
        return '(?:/(.*))?';
      }
      if (segment.startsWith(':')) {
        names.push(segment.slice(1));
        return '/([^/]+)';
      }
      return '/' + segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return { regex: new RegExp(`^${source}/?$`, 'i'), names };
}

function param(c: Ctx, name: string): string {
  const value = c.params[name];
  if (value === undefined) throw new Error(`route has no parameter ${name}`);
  return value;
}

function matchRoute(routes: readonly Route[], method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const match = route.regex.exec(path);
    if (match === null) continue;
    const params: Record<string, string> = {};
    route.names.forEach((name, index) => {
      try {
        params[name] = decodeURIComponent(match[index + 1] ?? '');
      } catch {
        throw new HttpError(400, 'bad_path');
      }
    });
    return { route, params };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------------

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const CSS = `
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1f2933; }
  header { background: #1e3a8a; color: #fff; padding: .75rem 1.5rem; display: flex; gap: 1.5rem; align-items: center; }
  header a { color: #dbeafe; text-decoration: none; }
  header .brand { font-weight: 700; color: #fff; margin-right: auto; }
  header form { margin: 0; }
  main { max-width: 46rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 8px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
  input, select { padding: .45rem .6rem; border: 1px solid #cbd2d9; border-radius: 4px; width: 100%; box-sizing: border-box; }
  button { margin-top: 1rem; padding: .5rem 1rem; border: 0; border-radius: 4px; background: #1e40af; color: #fff; cursor: pointer; }
  button.danger { background: #b91c1c; }
  button.small { margin: 0 0 0 .5rem; padding: .25rem .6rem; }
  header button { margin: 0; background: transparent; border: 1px solid #93c5fd; color: #dbeafe; }
  table { width: 100%; border-collapse: collapse; } td, th { text-align: left; padding: .4rem; border-bottom: 1px solid #e4e7eb; }
  pre { background: #0f172a; color: #e2e8f0; padding: .75rem; border-radius: 4px; overflow: auto; min-height: 1.5em; }
  .error { background: #fee2e2; color: #991b1b; padding: .5rem .75rem; border-radius: 4px; }
  .note { background: #fef9c3; padding: .5rem .75rem; border-radius: 4px; }
  .muted { color: #616e7c; font-size: .9em; }
`;

/** Shared by the pages whose buttons call the JSON routes: shows the status and answer in a <pre>. */
const CALL_SCRIPT = `<script>
async function call(method, url, body, outId) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  const out = document.getElementById(outId);
  try {
    const res = await fetch(url, init);
    const text = await res.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch {}
    out.textContent = res.status + ' ' + res.statusText + '\\n' + shown;
  } catch (err) {
    out.textContent = 'Request failed: ' + err;
  }
}
</script>`;

function layout(title: string, content: string, user?: DemoUser): string {
  const nav =
    user === undefined
      ? ''
      : `<a href="/">Home</a><a href="/account">Account</a><a href="/billing">Billing</a>` +
        `<a href="/portal/security">Devices</a><a href="/portal/org/users">Team</a>` +
        `<form method="post" action="/logout"><button>Sign out ${esc(user.name)}</button></form>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Acme Portal</title><style>${CSS}</style></head>
<body><header><span class="brand">Acme Portal</span>${nav}</header>
<main><h1>${esc(title)}</h1>${content}</main></body></html>`;
}

/** The HTML counterpart of the JSON `stepgate` echo, for confirmation pages of form posts. */
function gatewayNote(req: IncomingMessage): string {
  const echoed = gatewayHeaders(req);
  if (Object.keys(echoed).length === 0) return '';
  return `<p class="muted">Request headers from the gateway in front of this app:</p><pre>${esc(JSON.stringify(echoed, null, 2))}</pre>`;
}

function loginPage(error?: string, email = ''): string {
  const hint = DEMO_USERS.map((u) => `${esc(u.email)} / ${esc(u.password)}`).join('<br>');
  return layout(
    'Sign in',
    `${error === undefined ? '' : `<p class="error">${esc(error)}</p>`}
<form method="post" action="/login">
  <label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" value="${esc(email)}" required>
  <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
  <button>Sign in</button>
</form>
<p class="muted">Demo accounts:<br>${hint}</p>`,
  );
}

// ---------------------------------------------------------------------------------------------------
// The app
// ---------------------------------------------------------------------------------------------------

interface Device {
  id: string;
  name: string;
  trusted: boolean;
}

interface ApiKey {
  id: string;
  name: string;
  key: string;
  createdAt: string;
}

interface Invite {
  email: string;
  invitedBy: string;
  at: string;
}

/** Compares secrets in constant time; hashing first makes the lengths equal. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function token(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Everything one running app remembers; it lives as long as the server, like a dev server's memory store. */
function createState() {
  return {
    sessions: new Map<string, string>(), // sid → user id
    tokens: new Map<string, string>(), // bearer token → user id
    passwords: new Map(DEMO_USERS.map((u) => [u.id, u.password])), // changeable without touching DEMO_USERS
    devices: new Map<string, Map<string, Device>>(), // user id → device id → device
    apiKeys: new Map<string, Map<string, ApiKey>>(), // user id → key id → key
    invites: [] as Invite[],
    closedAt: new Map<string, string>(), // user id → when DELETE /me was called
  };
}

type State = ReturnType<typeof createState>;

function devicesOf(state: State, userId: string): Map<string, Device> {
  let devices = state.devices.get(userId);
  if (devices === undefined) {
    // Every user starts with the same two devices so the device pages have something to act on.
    devices = new Map([
      ['d-laptop', { id: 'd-laptop', name: 'MacBook Pro · Firefox', trusted: true }],
      ['d-phone', { id: 'd-phone', name: 'Pixel 8 · Chrome', trusted: false }],
    ]);
    state.devices.set(userId, devices);
  }
  return devices;
}

function apiKeysOf(state: State, userId: string): Map<string, ApiKey> {
  let keys = state.apiKeys.get(userId);
  if (keys === undefined) {
    keys = new Map();
    state.apiKeys.set(userId, keys);
  }
  return keys;
}

function authenticate(state: State, req: IncomingMessage): Auth | undefined {
  const userById = (id: string | undefined): DemoUser | undefined => DEMO_USERS.find((u) => u.id === id);
  // A bearer token is an explicit credential: when one is sent, it alone decides.
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (bearer !== null) {
    const user = userById(state.tokens.get(bearer[1] ?? ''));
    return user === undefined ? undefined : { user };
  }
  const sid = readCookie(req, SESSION_COOKIE);
  const user = sid === undefined ? undefined : userById(state.sessions.get(sid));
  return user === undefined || sid === undefined ? undefined : { user, sid };
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function buildRoutes(state: State): Route[] {
  const routes: Route[] = [];
  const open = (method: string, path: string, handle: Handler<Ctx>): void => {
    routes.push({ method, ...compilePath(path), access: 'open', handle });
  };
  const page = (method: string, path: string, handle: Handler<AuthedCtx>): void => {
    routes.push({ method, ...compilePath(path), access: 'page', handle });
  };
  const api = (method: string, path: string, handle: Handler<AuthedCtx>): void => {
    routes.push({ method, ...compilePath(path), access: 'api', handle });
  };

  // --- health, login, logout ---------------------------------------------------------------------

  open('GET', '/healthz', ({ res }) => {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('ok');
  });

  open('GET', '/login', ({ res, auth }) => {
    if (auth !== undefined) return redirect(res, '/');
    sendHtml(res, 200, loginPage());
  });

  open('POST', '/login', async ({ req, res }) => {
    const body = await readBody(req);
    const email = (field(body, 'email') ?? '').trim();
    const password = field(body, 'password') ?? '';
    const user = DEMO_USERS.find((u) => u.email.toLowerCase() === email.toLowerCase());
    if (user === undefined || !sameSecret(password, state.passwords.get(user.id) ?? '')) {
      return sendHtml(res, 401, loginPage('Wrong email or password.', email));
    }
    // A fresh session id on every login, so a sid planted before login is worthless afterwards.
    const previous = readCookie(req, SESSION_COOKIE);
    if (previous !== undefined) state.sessions.delete(previous);
    const sid = token();
    state.sessions.set(sid, user.id);
    redirect(res, '/', sessionCookie(sid));
  });

  open('POST', '/logout', ({ req, res }) => {
    const sid = readCookie(req, SESSION_COOKIE);
    if (sid !== undefined) state.sessions.delete(sid);
    redirect(res, '/login', sessionCookie('', true));
  });

  // --- pages ---------------------------------------------------------------------------------------

  page('GET', '/', ({ res, auth: { user } }) => {
    const closed = state.closedAt.get(user.id);
    sendHtml(
      res,
      200,
      layout(
        `Welcome, ${user.name}`,
        `${closed === undefined ? '' : `<p class="note">You closed this account at ${esc(closed)}. The demo keeps it so you can try again.</p>`}
<p>Signed in as <strong>${esc(user.email)}</strong>.</p>
<ul>
  <li><a href="/account">Account</a>: change your password, manage API keys, close the account</li>
  <li><a href="/billing">Billing</a>: change the plan of the Acme organisation</li>
  <li><a href="/portal/security">Devices</a>: trust or remove the devices you signed in from</li>
  <li><a href="/portal/org/users">Team</a>: invite people to the organisation</li>
  <li><a href="/reports/export.csv">Download invoices (CSV)</a>: this year's invoices, for your accountant</li>
  <li><a href="/api/me">/api/me</a>: who the API thinks you are</li>
</ul>`,
        user,
      ),
    );
  });

  page('GET', '/account', ({ res, auth: { user } }) => {
    const keys = [...apiKeysOf(state, user.id).values()]
      .map(
        (k) =>
          `<tr><td>${esc(k.name)}</td><td><code>${esc(k.key.slice(0, 10))}…</code></td><td>${esc(k.createdAt)}</td>` +
          `<td><button class="small danger" onclick="call('DELETE', '/account/api-keys/${encodeURIComponent(k.id)}', undefined, 'keys-out')">Delete</button></td></tr>`,
      )
      .join('');
    sendHtml(
      res,
      200,
      layout(
        'Account',
        `<h2>Change password</h2>
<form method="post" action="/account/password">
  <label for="current">Current password</label><input id="current" name="current_password" type="password" autocomplete="current-password" required>
  <label for="new">New password (at least 8 characters)</label><input id="new" name="new_password" type="password" autocomplete="new-password" minlength="8" required>
  <button>Change password</button>
</form>
<h2>API keys</h2>
<table><tr><th>Name</th><th>Key</th><th>Created</th><th></th></tr>${keys || '<tr><td colspan="4" class="muted">No keys yet.</td></tr>'}</table>
<label for="key-name">Name of the new key</label><input id="key-name" name="name" maxlength="64" placeholder="e.g. CI deploys">
<button type="button" id="create-key">Create API key</button>
<p class="muted">Reload the page to see the list change.</p>
<pre id="keys-out"></pre>
<h2>Close account</h2>
<button class="danger" onclick="call('DELETE', '/me', undefined, 'close-out')">Close my account</button>
<pre id="close-out"></pre>
${CALL_SCRIPT}
<script>
// This button predates fetch() in this app and still uses XMLHttpRequest, as old code does.
document.getElementById('create-key').addEventListener('click', function () {
  var out = document.getElementById('keys-out');
  var xhr = new XMLHttpRequest();
  xhr.open('POST', '/account/api-keys');
  xhr.responseType = 'json';
  xhr.setRequestHeader('Content-Type', 'application/json');
  xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
  xhr.onreadystatechange = function () {
    if (this.readyState !== 4 || this.status === 0) return;
    out.textContent = this.status + ' ' + this.statusText + '\\n' + JSON.stringify(this.response, null, 2);
  };
  xhr.onerror = function () { out.textContent = 'Request failed'; };
  xhr.send(JSON.stringify({ name: document.getElementById('key-name').value }));
});
</script>`,
        user,
      ),
    );
  });

  page('GET', '/billing', ({ res, auth: { user } }) => {
    sendHtml(
      res,
      200,
      layout(
        'Billing',
        `<p>Organisation <strong>acme</strong>.</p>
<form id="billing">
  <label for="plan">Plan</label>
  <select id="plan" name="plan"><option value="starter">Starter</option><option value="team" selected>Team</option><option value="enterprise">Enterprise</option></select>
  <label for="seats">Seats</label><input id="seats" name="seats" type="number" min="1" value="10">
  <button>Save billing settings</button>
</form>
<pre id="billing-out"></pre>
<h2>Invoices</h2>
<label for="invoice-to">Send the latest invoice to</label><input id="invoice-to" type="email" value="${esc(user.email)}">
<button type="button" id="send-invoice">Email the latest invoice</button>
<pre id="invoice-out"></pre>
${CALL_SCRIPT}
<script>
document.getElementById('billing').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target;
  call('PATCH', '/internal/org/acme/billing', { plan: form.plan.value, seats: Number(form.seats.value) }, 'billing-out');
});
document.getElementById('send-invoice').addEventListener('click', () => {
  call('POST', '/internal/org/acme/billing/invoices/send', { to: document.getElementById('invoice-to').value }, 'invoice-out');
});
</script>`,
        user,
      ),
    );
  });

  page('GET', '/portal/security', ({ res, auth: { user } }) => {
    const rows = [...devicesOf(state, user.id).values()]
      .map((d) => {
        const id = encodeURIComponent(d.id);
        return (
          `<tr><td>${esc(d.name)}</td><td>${d.trusted ? 'trusted' : 'not trusted'}</td><td>` +
          `<button class="small" onclick="call('PATCH', '/portal/security/devices/${id}/trust', { trusted: ${!d.trusted} }, 'devices-out')">${d.trusted ? 'Untrust' : 'Trust'}</button>` +
          `<button class="small danger" onclick="call('DELETE', '/portal/security/devices/${id}', undefined, 'devices-out')">Remove</button></td></tr>`
        );
      })
      .join('');
    sendHtml(
      res,
      200,
      layout(
        'Devices',
        `<table><tr><th>Device</th><th>Status</th><th></th></tr>${rows || '<tr><td colspan="3" class="muted">No devices.</td></tr>'}</table>
<p class="muted">Reload the page to see the list change.</p>
<pre id="devices-out"></pre>
${CALL_SCRIPT}`,
        user,
      ),
    );
  });

  page('GET', '/portal/org/users', ({ res, auth: { user } }) => {
    const members = DEMO_USERS.map((u) => `<tr><td>${esc(u.name)}</td><td>${esc(u.email)}</td><td>member</td></tr>`).join('');
    const invited = state.invites.map((i) => `<tr><td></td><td>${esc(i.email)}</td><td>invited by ${esc(i.invitedBy)}</td></tr>`).join('');
    sendHtml(
      res,
      200,
      layout(
        'Team',
        `<table><tr><th>Name</th><th>Email</th><th>Status</th></tr>${members}${invited}</table>
<h2>Invite someone</h2>
<form method="post" action="/portal/org/users/invite">
  <label for="invite-email">Email</label><input id="invite-email" name="email" type="email" required>
  <button>Send invitation</button>
</form>`,
        user,
      ),
    );
  });

  // A download: a plain link whose answer is an attachment, so the browser saves it and stays on the page.
  page('GET', '/reports/export.csv', ({ res }) => {
    const rows = [
      ['invoice', 'date', 'plan', 'seats', 'amount_eur'],
      ['INV-2025-001', '2025-01-31', 'team', '10', '490.00'],
      ['INV-2025-002', '2025-02-28', 'team', '10', '490.00'],
      ['INV-2025-003', '2025-03-31', 'team', '12', '588.00'],
    ];
    const csv = rows.map((row) => row.join(',')).join('\r\n') + '\r\n';
    res.writeHead(200, {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': 'attachment; filename="acme-invoices.csv"',
    });
    res.end(csv);
  });

  // --- JSON API --------------------------------------------------------------------------------------

  api('GET', '/api/me', ({ res, auth: { user } }) => {
    sendJson(res, 200, { id: user.id, email: user.email, name: user.name });
  });

  api('POST', '/api/tokens', ({ res, auth }) => {
    // Only a signed-in browser session may mint tokens; a token must not be able to mint more of itself.
    if (auth.sid === undefined) throw new HttpError(401, 'session_required');
    const issued = token();
    state.tokens.set(issued, auth.user.id);
    sendJson(res, 201, { token: issued });
  });

  // --- sensitive routes (the ones the example rules gate) ------------------------------------------

  api('PATCH', '/internal/org/:key/billing', async (c) => {
    const body = await readBody(c.req);
    sendJson(c.res, 200, { ok: true, org: param(c, 'key'), billing: bodyData(body), stepgate: gatewayHeaders(c.req) });
  });

  api('POST', '/internal/org/:key/billing/*', async (c) => {
    const body = await readBody(c.req);
    sendJson(c.res, 200, {
      ok: true,
      org: param(c, 'key'),
      action: param(c, '*'),
      billing: bodyData(body),
      stepgate: gatewayHeaders(c.req),
    });
  });

  api('PATCH', '/portal/security/devices/:id/trust', async (c) => {
    const body = await readBody(c.req);
    const device = devicesOf(state, c.auth.user.id).get(param(c, 'id'));
    if (device === undefined) throw new HttpError(404, 'no_such_device');
    // `{"trusted": false}` untrusts; an empty body means "trust it", which is what the button usually does.
    const data = bodyData(body);
    device.trusted = !(typeof data === 'object' && data !== null && (data as Record<string, unknown>).trusted === false);
    sendJson(c.res, 200, { ok: true, device, stepgate: gatewayHeaders(c.req) });
  });

  api('DELETE', '/portal/security/devices/:id', (c) => {
    const id = param(c, 'id');
    if (!devicesOf(state, c.auth.user.id).delete(id)) throw new HttpError(404, 'no_such_device');
    sendJson(c.res, 200, { ok: true, deleted: id, stepgate: gatewayHeaders(c.req) });
  });

  api('POST', '/portal/org/users/invite', async (c) => {
    const body = await readBody(c.req);
    const email = (field(body, 'email') ?? '').trim();
    const asHtml = body.kind === 'form';
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
      if (asHtml) return sendHtml(c.res, 400, layout('Invitation not sent', `<p class="error">That is not an email address.</p><p><a href="/portal/org/users">Back</a></p>`, c.auth.user));
      throw new HttpError(400, 'invalid_email');
    }
    const invite: Invite = { email, invitedBy: c.auth.user.email, at: new Date().toISOString() };
    state.invites.push(invite);
    if (asHtml) {
      return sendHtml(
        c.res,
        200,
        layout('Invitation sent', `<p>We sent an invitation to <strong>${esc(email)}</strong>.</p>${gatewayNote(c.req)}<p><a href="/portal/org/users">Back to the team</a></p>`, c.auth.user),
      );
    }
    sendJson(c.res, 201, { ok: true, invited: invite, stepgate: gatewayHeaders(c.req) });
  });

  api('DELETE', '/me', (c) => {
    // The demo records the closure instead of deleting the user, so the flow can be tried again.
    state.closedAt.set(c.auth.user.id, new Date().toISOString());
    sendJson(c.res, 200, { ok: true, closed: c.auth.user.id, stepgate: gatewayHeaders(c.req) });
  });

  api('POST', '/account/password', async (c) => {
    const body = await readBody(c.req);
    const asHtml = body.kind === 'form';
    const userId = c.auth.user.id;
    const current = field(body, 'current_password') ?? '';
    const next = field(body, 'new_password') ?? '';
    const problem = !sameSecret(current, state.passwords.get(userId) ?? '')
      ? 'wrong_current_password'
      : next.length < 8
        ? 'new_password_too_short'
        : undefined;
    if (problem !== undefined) {
      if (asHtml) {
        const message = problem === 'wrong_current_password' ? 'The current password is wrong.' : 'The new password needs at least 8 characters.';
        return sendHtml(c.res, 400, layout('Password not changed', `<p class="error">${message}</p><p><a href="/account">Back</a></p>`, c.auth.user));
      }
      throw new HttpError(400, problem);
    }
    state.passwords.set(userId, next);
    if (asHtml) {
      return sendHtml(c.res, 200, layout('Password changed', `<p>Your password was changed.</p>${gatewayNote(c.req)}<p><a href="/account">Back to your account</a></p>`, c.auth.user));
    }
    sendJson(c.res, 200, { ok: true, stepgate: gatewayHeaders(c.req) });
  });

  api('POST', '/account/api-keys', async (c) => {
    const body = await readBody(c.req);
    const name = (field(body, 'name') ?? '').trim().slice(0, 64) || 'Unnamed key';
    const key: ApiKey = { id: `k-${randomBytes(6).toString('hex')}`, name, key: `acme_${token(24)}`, createdAt: new Date().toISOString() };
    apiKeysOf(state, c.auth.user.id).set(key.id, key);
    sendJson(c.res, 201, { id: key.id, name: key.name, key: key.key, stepgate: gatewayHeaders(c.req) });
  });

  api('DELETE', '/account/api-keys/:id', (c) => {
    const id = param(c, 'id');
    if (!apiKeysOf(state, c.auth.user.id).delete(id)) throw new HttpError(404, 'no_such_key');
    sendJson(c.res, 200, { ok: true, deleted: id, stepgate: gatewayHeaders(c.req) });
  });

  return routes;
}

async function dispatch(state: State, routes: readonly Route[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  // The query string never takes part in routing; HEAD is served by the GET route (Node drops the body).
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
  const found = matchRoute(routes, method, path);
  if (found === undefined) {
    if ((req.headers.accept ?? '').includes('text/html')) return sendHtml(res, 404, layout('Not found', '<p><a href="/">Home</a></p>'));
    return sendJson(res, 404, { error: 'not_found' });
  }
  const { route, params } = found;
  const auth = authenticate(state, req);
  const ctx: Ctx = { req, res, params, auth };
  if (route.access === 'open') return route.handle(ctx);
  if (auth === undefined) {
    if (route.access === 'page') return redirect(res, '/login');
    return sendJson(res, 401, { error: 'unauthenticated' });
  }
  return route.handle({ ...ctx, auth });
}

export function startDemoApp(opts: { host?: string; port?: number } = {}): Promise<DemoApp> {
  const host = opts.host ?? '127.0.0.1';
  const state = createState();
  const routes = buildRoutes(state);

  const server = createServer((req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    dispatch(state, routes, req, res).catch((err: unknown) => {
      // Nobody left to answer (the client went away mid-body), or the answer is half sent: just hang up.
      if (res.headersSent || res.socket === null || res.socket.destroyed) return void res.destroy();
      if (err instanceof HttpError) {
        return sendJson(res, err.status, { error: err.code }, err.closeConnection ? { Connection: 'close' } : {});
      }
      // A bug: report it and answer, but never take the server down.
      console.error('demo app: request failed:', err);
      sendJson(res, 500, { error: 'internal_error' });
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      const urlHost = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${urlHost}:${port}`,
        port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err === undefined ? done() : fail(err)));
            // Keep-alive connections (fetch keeps them) would otherwise hold close() open.
            server.closeAllConnections();
          }),
      });
    });
  });
}
