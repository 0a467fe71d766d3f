import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_USERS, startDemoApp, type DemoApp, type DemoUser } from '../../src/demo/app.js';

let app: DemoApp;

beforeAll(async () => {
  app = await startDemoApp({ port: 0 });
});

afterAll(async () => {
  await app.close();
});

function userNamed(id: string): DemoUser {
  const user = DEMO_USERS.find((u) => u.id === id);
  if (user === undefined) throw new Error(`no demo user ${id}`);
  return user;
}

const alice = userNamed('u-alice');

function post(path: string, form: Record<string, string>, cookie?: string): Promise<Response> {
  return fetch(app.url + path, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(cookie === undefined ? {} : { Cookie: cookie }) },
    body: new URLSearchParams(form).toString(),
  });
}

/** Signs in through the login form and returns the `sid=…` pair to send back as a Cookie header. */
async function login(user: DemoUser = alice): Promise<string> {
  const res = await post('/login', { email: user.email, password: user.password });
  expect(res.status).toBe(303);
  const pair = res.headers.getSetCookie()[0]?.split(';')[0];
  if (pair === undefined) throw new Error('login set no cookie');
  return pair;
}

describe('demo app: login and sessions', () => {
  it('answers the health check', async () => {
    const res = await fetch(`${app.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  it('sends strangers to the login page', async () => {
    const res = await fetch(`${app.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login');
    const form = await fetch(`${app.url}/login`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('<form method="post" action="/login">');
  });

  it('refuses a wrong password with a 401 page and no cookie', async () => {
    const res = await post('/login', { email: alice.email, password: 'nope' });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it('sets an HttpOnly, SameSite=Lax sid cookie on login and shows the home page', async () => {
    const res = await post('/login', { email: 'ALICE@example.com', password: alice.password });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    const [cookie] = res.headers.getSetCookie();
    expect(cookie).toMatch(/^sid=[A-Za-z0-9_-]{43}; /);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).toContain('Path=/');

    const home = await fetch(`${app.url}/`, { headers: { Cookie: cookie?.split(';')[0] ?? '' } });
    expect(home.status).toBe(200);
    const html = await home.text();
    expect(html).toContain(alice.name);
    expect(html).toContain('href="/billing"');
  });

  it('logout drops the session and clears the cookie', async () => {
    const cookie = await login();
    const res = await post('/logout', {}, cookie);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login');
    expect(res.headers.getSetCookie()[0]).toMatch(/^sid=; .*Max-Age=0/);

    const me = await fetch(`${app.url}/api/me`, { headers: { Cookie: cookie } });
    expect(me.status).toBe(401);
  });
});

describe('demo app: /api/me', () => {
  it('is 401 without credentials', async () => {
    const res = await fetch(`${app.url}/api/me`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'unauthenticated' });
  });

  it('knows the user from the session cookie', async () => {
    const cookie = await login();
    const res = await fetch(`${app.url}/api/me`, { headers: { Cookie: `theme=dark; ${cookie}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: alice.id, email: alice.email, name: alice.name });
  });

  it('knows the user from a bearer token issued to a session', async () => {
    const bob = userNamed('u-bob');
    const cookie = await login(bob);
    const issued = await fetch(`${app.url}/api/tokens`, { method: 'POST', headers: { Cookie: cookie } });
    expect(issued.status).toBe(201);
    const { token } = (await issued.json()) as { token: string };

    const me = await fetch(`${app.url}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
    expect(await me.json()).toEqual({ id: bob.id, email: bob.email, name: bob.name });

    // A token cannot mint more tokens, and an unknown token is nobody even next to a valid cookie.
    expect((await fetch(`${app.url}/api/tokens`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
    const forged = await fetch(`${app.url}/api/me`, { headers: { Authorization: 'Bearer forged', Cookie: cookie } });
    expect(forged.status).toBe(401);
  });
});

describe('demo app: sensitive routes', () => {
  it('PATCHes billing with the session and echoes the x-stepgate-* headers', async () => {
    const cookie = await login();
    const res = await fetch(`${app.url}/internal/org/acme/billing`, {
      method: 'PATCH',
      headers: {
        Cookie: cookie,
        'Content-Type': 'application/json',
        'X-Stepgate-User': alice.id,
        'X-Stepgate-Rule': 'billing',
        'X-Unrelated': 'not echoed',
      },
      body: JSON.stringify({ plan: 'team', seats: 10 }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      ok: true,
      org: 'acme',
      billing: { plan: 'team', seats: 10 },
      stepgate: { 'x-stepgate-user': alice.id, 'x-stepgate-rule': 'billing' },
    });
  });

  it('routes like Express: case-insensitive, trailing slash optional, wildcard rest', async () => {
    const cookie = await login();
    const patch = await fetch(`${app.url}/Internal/ORG/acme/Billing/`, { method: 'PATCH', headers: { Cookie: cookie } });
    expect(await patch.json()).toEqual({ ok: true, org: 'acme', billing: null, stepgate: {} });

    const post = await fetch(`${app.url}/internal/org/acme/billing/plan/upgrade?x=1`, { method: 'POST', headers: { Cookie: cookie } });
    expect(await post.json()).toMatchObject({ ok: true, org: 'acme', action: 'plan/upgrade' });
  });

  it('requires the app login on every sensitive route', async () => {
    const routes: Array<[string, string]> = [
      ['PATCH', '/internal/org/acme/billing'],
      ['POST', '/internal/org/acme/billing/cancel'],
      ['PATCH', '/portal/security/devices/d-phone/trust'],
      ['DELETE', '/portal/security/devices/d-phone'],
      ['POST', '/portal/org/users/invite'],
      ['DELETE', '/me'],
      ['POST', '/account/password'],
      ['POST', '/account/api-keys'],
      ['DELETE', '/account/api-keys/k-1'],
    ];
    for (const [method, path] of routes) {
      const res = await fetch(app.url + path, { method, headers: { 'X-Stepgate-User': alice.id } });
      expect([method, path, res.status]).toEqual([method, path, 401]);
      expect(await res.json()).toEqual({ error: 'unauthenticated' });
    }
  });

  it('trusts and removes devices, closes the account, creates and deletes API keys', async () => {
    const cookie = await login();
    const call = async (method: string, path: string, body?: unknown): Promise<[number, unknown]> => {
      const res = await fetch(app.url + path, {
        method,
        headers: { Cookie: cookie, 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return [res.status, await res.json()];
    };
    expect(await call('PATCH', '/portal/security/devices/d-phone/trust')).toEqual([
      200,
      { ok: true, device: { id: 'd-phone', name: expect.any(String), trusted: true }, stepgate: {} },
    ]);
    expect(await call('DELETE', '/portal/security/devices/d-phone')).toEqual([200, { ok: true, deleted: 'd-phone', stepgate: {} }]);
    expect(await call('DELETE', '/portal/security/devices/d-phone')).toEqual([404, { error: 'no_such_device' }]);
    expect(await call('DELETE', '/me')).toEqual([200, { ok: true, closed: alice.id, stepgate: {} }]);

    const [status, created] = await call('POST', '/account/api-keys');
    expect(status).toBe(201);
    const { id } = created as { id: string; key: string };
    expect(created).toEqual({ id: expect.stringMatching(/^k-/), name: 'Unnamed key', key: expect.stringMatching(/^acme_/), stepgate: {} });
    expect(await call('DELETE', `/account/api-keys/${id}`)).toEqual([200, { ok: true, deleted: id, stepgate: {} }]);
  });

  it('answers an invite with JSON for JSON and with a page for a form post', async () => {
    const cookie = await login();
    const json = await fetch(`${app.url}/portal/org/users/invite`, {
      method: 'POST',
      headers: { Cookie: cookie, 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'carol@example.com' }),
    });
    expect(json.status).toBe(201);
    expect(await json.json()).toMatchObject({ ok: true, invited: { email: 'carol@example.com' }, stepgate: {} });

    const form = await post('/portal/org/users/invite', { email: 'dave@example.com' }, cookie);
    expect(form.status).toBe(200);
    expect(form.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await form.text()).toContain('dave@example.com');
  });

  it('names API keys, as the XMLHttpRequest button of the account page sends them', async () => {
    const cookie = await login();
    const res = await fetch(`${app.url}/account/api-keys`, {
      method: 'POST',
      headers: { Cookie: cookie, 'Content-Type': 'application/json', 'X-Requested-With': 'XMLHttpRequest' },
      body: JSON.stringify({ name: '  CI deploys  ' }),
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ name: 'CI deploys', key: expect.stringMatching(/^acme_/) });
    const page = await (await fetch(`${app.url}/account`, { headers: { Cookie: cookie } })).text();
    expect(page).toContain('<td>CI deploys</td>');
    expect(page).toContain('new XMLHttpRequest()');
    expect(page).toContain("xhr.responseType = 'json'");
  });

  it('exports invoices as a CSV attachment linked from the home page, for signed-in users only', async () => {
    expect((await fetch(`${app.url}/reports/export.csv`, { redirect: 'manual' })).headers.get('location')).toBe('/login');
    const cookie = await login();
    const home = await (await fetch(`${app.url}/`, { headers: { Cookie: cookie } })).text();
    expect(home).toContain('<a href="/reports/export.csv">');
    const res = await fetch(`${app.url}/reports/export.csv`, { headers: { Cookie: cookie } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="acme-invoices.csv"');
    const lines = (await res.text()).trim().split('\r\n');
    expect(lines[0]).toBe('invoice,date,plan,seats,amount_eur');
    expect(lines).toHaveLength(4);
  });

  it('changes the password from the account form', async () => {
    const cookie = await login();
    const wrong = await post('/account/password', { current_password: 'nope', new_password: 'long-enough' }, cookie);
    expect(wrong.status).toBe(400);
    const res = await post('/account/password', { current_password: alice.password, new_password: 'alice-new-password' }, cookie);
    expect(res.status).toBe(200);
    expect((await post('/login', { email: alice.email, password: 'alice-new-password' })).status).toBe(303);
    expect((await post('/login', { email: alice.email, password: alice.password })).status).toBe(401);
    // Put it back so the other tests' logins keep working.
    await post('/account/password', { current_password: 'alice-new-password', new_password: alice.password }, cookie);
  });
});

describe('demo app: bad input', () => {
  it('answers bad JSON with 400 JSON', async () => {
    const cookie = await login();
    const res = await fetch(`${app.url}/internal/org/acme/billing`, {
      method: 'PATCH',
      headers: { Cookie: cookie, 'Content-Type': 'application/json' },
      body: '{"plan":',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'bad_json' });
  });

  it('answers unknown routes and wrong methods with 404', async () => {
    expect((await fetch(`${app.url}/nope`)).status).toBe(404);
    expect((await fetch(`${app.url}/healthz`, { method: 'DELETE' })).status).toBe(404);
  });

  it('refuses a body over 1 MiB with 413 and keeps serving', async () => {
    const cookie = await login();
    // Announce the size without sending it: the app must refuse from the header alone.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${app.url}/internal/org/acme/billing`, {
        method: 'PATCH',
        headers: { Cookie: cookie, 'Content-Type': 'application/json', 'Content-Length': String(1024 * 1024 + 1) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});
