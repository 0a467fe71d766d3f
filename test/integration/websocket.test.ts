// WebSocket upgrades through a real gateway (SPEC §6): a free path is proxied (the 101 comes from
// the upstream, then frames flow both ways); a gated path is gated like a GET of its path — no
// 101 and nothing at the upstream without a grant, the trusted headers with one; and `Upgrade: h2c`
// is never passed on: such a request is answered as plain HTTP.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_ROUTES, signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { httpText, jsonOf, RawConnection, rawRequest } from '../helpers/raw.js';
import { closeUpgradesWithPeer, gatewayYamlFor, startScriptedUpstream } from '../helpers/scripted-upstream.js';
import { signInEnrolled, signInWithGrant } from '../helpers/stepup.js';

const ROUTES = `${DEFAULT_ROUTES}  - name: ws-admin
    match: GET /ws/admin
`;

let t: TestGateway;
let closeUpgrades = () => {};
beforeEach(async () => {
  t = await startTestGateway({ routes: ROUTES });
  closeUpgrades = closeUpgradesWithPeer(t.upstream.server);
});
afterEach(async () => {
  closeUpgrades();
  await t.close();
});

function handshake(path: string, key: string, headers: Record<string, string> = {}): string {
  return httpText('GET', path, {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...headers,
  });
}

const acceptFor = (key: string) => createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

/** A masked client text frame (RFC 6455 §5.2), payload < 126 bytes. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** Opens a WebSocket through the gateway; returns the connection and the answer to the handshake. */
async function openWs(path: string, headers: Record<string, string> = {}) {
  const key = randomBytes(16).toString('base64');
  const conn = await RawConnection.open(t.url);
  conn.write(handshake(path, key, headers));
  const res = await conn.readResponse();
  return { conn, res, key };
}

const upgradesSeen = (path: string) => t.upstream.seen.filter((r) => r.url === path);

describe('WebSocket upgrades', () => {
  it('proxies an upgrade on a free path: the upstream 101, then frames both ways', async () => {
    const { conn, res, key } = await openWs('/ws/chat?room=1');
    try {
      expect(res.status).toBe(101);
      expect(res.headers['upgrade']?.toLowerCase()).toBe('websocket');
      expect(res.headers['sec-websocket-accept']).toBe(acceptFor(key));
      const frame = textFrame('hello through the gate');
      conn.write(frame);
      expect((await conn.readBytes(frame.length))?.equals(frame)).toBe(true);
    } finally {
      conn.close();
    }
    const seen = upgradesSeen('/ws/chat?room=1');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['sec-websocket-key']).toBe(key);
    expect(seen[0]!.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('strips spoofed trusted headers from a free upgrade', async () => {
    const { conn, res } = await openWs('/ws/chat', { 'X-Stepgate-User': 'mallory', 'X-Original-URL': '/ws/admin' });
    conn.close();
    expect(res.status).toBe(101);
    const h = upgradesSeen('/ws/chat')[0]!.headers;
    expect(h['x-stepgate-user']).toBeUndefined();
    expect(h['x-original-url']).toBeUndefined();
  });

  it('does not upgrade a gated path for an anonymous client (401), and the upstream never sees it', async () => {
    const { conn, res } = await openWs('/ws/admin');
    conn.close();
    expect(res.status).toBe(401);
    expect(jsonOf(res)).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(t.upstream.appRequests()).toEqual([]);
  });

  it.each([['/ws/admin'], ['/WS/Admin/'], ['//ws/./admin'], ['/ws/x/../admin?token=1'], ['/ws/%61dmin']])(
    'does not upgrade %s for a signed-in user without a grant (403 challenge)',
    async (path) => {
      const cookie = await signInEnrolled(t, 'alice');
      const { conn, res } = await openWs(path, { Cookie: cookie });
      conn.close();
      expect(res.status).toBe(403);
      expect(res.headers['x-stepgate-challenge']).toBe('1');
      expect(jsonOf(res)).toMatchObject({ code: 'STEP_UP_REQUIRED', rule: 'ws-admin' });
      expect(t.upstream.appRequests()).toEqual([]);
    },
  );

  it('does not upgrade a gated path for a user with no factor either', async () => {
    const { conn, res } = await openWs('/ws/admin', { Cookie: signIn(t, 'bob') });
    conn.close();
    expect(res.status).toBe(403);
    expect(jsonOf(res)).toMatchObject({ code: 'STEP_UP_REQUIRED', enrolled: [] });
    expect(t.upstream.appRequests()).toEqual([]);
  });

  it('upgrades a gated path with a grant, with the trusted headers', async () => {
    const cookie = await signInWithGrant(t, 'alice');
    const { conn, res, key } = await openWs('/ws/admin', { Cookie: cookie, 'X-Stepgate-User': 'mallory' });
    try {
      expect(res.status).toBe(101);
      expect(res.headers['sec-websocket-accept']).toBe(acceptFor(key));
      const frame = textFrame('admin ping');
      conn.write(frame);
      expect((await conn.readBytes(frame.length))?.equals(frame)).toBe(true);
    } finally {
      conn.close();
    }
    const seen = upgradesSeen('/ws/admin');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-stepgate-user']).toBe('alice');
    expect(seen[0]!.headers['x-stepgate-factor']).toBe('totp');
    expect(seen[0]!.headers['x-stepgate-rule']).toBe('ws-admin');
  });
});

describe('the 101 comes from the upstream only', () => {
  it('relays an upstream that refuses the upgrade as its refusal, never as a 101', async () => {
    await t.close();
    const app = await startScriptedUpstream((req, res) => {
      req.resume();
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('upgrade refused');
    });
    try {
      t = await startTestGateway({ routes: ROUTES, gatewayYaml: gatewayYamlFor(app.url) });
      const { conn, res } = await openWs('/ws/chat');
      conn.close();
      expect(res.status).not.toBe(101);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(app.appRequests().map((r) => r.url)).toEqual(['/ws/chat']);
    } finally {
      await t.close();
      await app.close();
    }
  });
});

describe('Upgrade: h2c', () => {
  const h2c = { Connection: 'Upgrade, HTTP2-Settings', Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' };

  it('is answered as plain HTTP; the upstream sees no Upgrade', async () => {
    const res = await rawRequest(t.url, httpText('GET', '/free/h2c', h2c));
    expect(res.status).toBe(200);
    expect(jsonOf(res)).toMatchObject({ url: '/free/h2c' });
    const seen = t.upstream.appRequests();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.upgrade).toBeUndefined();
    expect(seen[0]!.headers['http2-settings']).toBeUndefined();
    expect(seen[0]!.headers.connection ?? '').not.toMatch(/upgrade/i);
  });

  it('is gated as plain HTTP on a gated path', async () => {
    const cookie = await signInEnrolled(t, 'alice');
    const res = await rawRequest(t.url, httpText('PATCH', '/internal/org/acme/billing', { ...h2c, Cookie: cookie }));
    expect(res.status).toBe(403);
    expect(jsonOf(res)).toMatchObject({ code: 'STEP_UP_REQUIRED' });
    expect(t.upstream.appRequests()).toEqual([]);
  });
});

describe('shutdown with an open WebSocket (SPEC §10: in-flight work is finished, bounded)', () => {
  it('closes the gateway within a bounded time while a WebSocket stays open', async () => {
    const { conn, res } = await openWs('/ws/chat');
    expect(res.status).toBe(101);
    try {
      const closed = t.gw.close().then(() => 'closed' as const);
      const outcome = await Promise.race([closed, new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), 15_000))]);
      expect(outcome).toBe('closed');
    } finally {
      conn.close();
    }
  }, 25_000);
});
