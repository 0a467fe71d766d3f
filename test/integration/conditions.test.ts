// `when` rules through a running gateway (SPEC §3): RPC-style requests are gated by their
// parameters or JSON method, bodies that cannot be inspected are gated, and a request that does
// not match passes with its body forwarded byte for byte.
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ROUTES = `
max_inspect_body: 64KiB
rules:
  - name: wiki-admin
    match: [POST /api.php/*, POST /index.php/*]
    when:
      param:
        action: [delete, userrights, block]
        title: ["Special:Block*"]
  - name: rpc-danger
    match: POST /rpc
    when:
      json:
        /method: [account.delete, billing.update]
`;

let t: TestGateway;
let cookie: string;
beforeAll(async () => {
  t = await startTestGateway({ routes: ROUTES });
  cookie = signIn(t, 'alice');
});
afterAll(() => t.close());

async function post(path: string, body: string | Buffer, headers: Record<string, string>) {
  const res = await request(t.url + path, { method: 'POST', headers: { cookie, ...headers }, body });
  const text = await res.body.text();
  return { status: res.statusCode, code: res.statusCode === 403 ? (JSON.parse(text) as { code: string }).code : null };
}
const form = { 'content-type': 'application/x-www-form-urlencoded' };
const json = { 'content-type': 'application/json' };
const seen = (path: string) => t.upstream.appRequests().filter((r) => r.url === path);

describe('param conditions', () => {
  it.each([
    ['/api.php?action=delete&title=X', 'token=abc'],
    ['/api.php?action=edit', 'action=delete&token=abc'],
    ['/api.php?action=edit', 'action=edit&action=delete'],
    ['/api.php', 'ACTION=Delete'],
    ['/api.php', '%61ction=delete'],
    ['/api.php', 'action[]=block'],
    ['/index.php?title=Special:BlockIP', 'wpTarget=bob'],
    ['/index.php/Main_Page?action=delete', ''],
  ])('%s with body %s is gated and never forwarded', async (path, body) => {
    const r = await post(path, body, form);
    expect(r).toEqual({ status: 403, code: 'STEP_UP_REQUIRED' });
    expect(seen(path)).toHaveLength(0);
  });

  it('multipart with a file part before the field is gated', async () => {
    const b = 'b0undary';
    const body = `--${b}\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01action=edit\r\n--${b}\r\nContent-Disposition: form-data; name="action"\r\n\r\ndelete\r\n--${b}--\r\n`;
    expect((await post('/api.php', body, { 'content-type': `multipart/form-data; boundary=${b}` })).status).toBe(403);
    expect(seen('/api.php')).toHaveLength(0);
  });

  it('fails closed on oversized, gzip-encoded, non-form and truncated bodies', async () => {
    expect((await post('/api.php', 'action=edit&x=' + 'a'.repeat(70 * 1024), form)).status).toBe(403);
    expect((await post('/api.php', gzipSync('action=edit'), { ...form, 'content-encoding': 'gzip' })).status).toBe(403);
    expect((await post('/api.php', '{"action":"edit"}', json)).status).toBe(403);
    expect(seen('/api.php')).toHaveLength(0);
  });

  it('forwards a non-matching action untouched, body byte for byte, chunked or not', async () => {
    const body = 'action=edit&title=Caf%C3%A9+au+lait&text=%E2%9C%93&x=a+b%2Bc';
    expect((await post('/api.php?format=json', body, form)).status).toBe(200);
    const chunked = Buffer.from('action=query&list=x');
    const res = await request(t.url + '/api.php?format=json', {
      method: 'POST',
      headers: { cookie, ...form },
      body: (async function* () {
        yield chunked.subarray(0, 5);
        yield chunked.subarray(5);
      })(),
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const forwarded = seen('/api.php?format=json');
    expect(forwarded.map((r) => r.body)).toEqual([body, chunked.toString()]);
    expect(forwarded[0]!.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(forwarded[1]!.headers['transfer-encoding']).toBe('chunked');
  });

  it('does not read bodies of requests no conditional rule covers', async () => {
    const big = 'x'.repeat(200 * 1024);
    expect((await post('/other', big, form)).status).toBe(200);
    expect(seen('/other')[0]!.body).toBe(big);
  });
});

describe('json conditions', () => {
  it.each([
    '{"jsonrpc":"2.0","method":"account.delete","id":1}',
    '{"method":"BILLING.UPDATE"}',
    '[{"method":"account.get"},{"method":"account.delete"}]',
    '{"method":"account.get","method":"account.delete"}',
    '{"method":"account.get"',
  ])('%s is gated', async (body) => {
    expect((await post('/rpc', body, json)).status).toBe(403);
    expect(seen('/rpc')).toHaveLength(0);
  });

  it('a form body on a json rule is gated; a harmless call passes intact', async () => {
    expect((await post('/rpc', 'method=account.get', form)).status).toBe(403);
    const body = '{"method":"account.get","params":{"note":"é ✓"}}';
    expect((await post('/rpc', body, json)).status).toBe(200);
    expect(seen('/rpc').map((r) => r.body)).toEqual([body]);
  });
});
