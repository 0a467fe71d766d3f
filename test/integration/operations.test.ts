// The gateway as an operator runs it: the real CLI process with config files on disk.
// check/explain print what the running gateway does; routes.yaml edits apply live (a broken file
// is reported and ignored); /metrics counters move with traffic; SIGTERM lets an in-flight
// request finish; users/audit work beside the running gateway.
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCli, startCli, writeConfigDir, type ConfigDir, type GatewayProcess } from '../helpers/process.js';

let upstream: Server;
let upstreamUrl: string;
const seen: string[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === '/api/me') {
      const ok = /sid=s1/.test(req.headers.cookie ?? '');
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? '{"id":"alice","email":"alice@example.com"}' : '{}');
      return;
    }
    const delay = req.url?.startsWith('/slow') ? 1500 : 0;
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello');
    }, delay);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

async function configFor(routes: string): Promise<{ cfg: ConfigDir; url: string; admin: string }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const cfg = writeConfigDir(
    `listen: 127.0.0.1:${port}
upstream: ${upstreamUrl}
public_origin: http://localhost:${port}
data_dir: ./data
admin_listen: 127.0.0.1:${adminPort}
identity:
  source: upstream
  session_cookies: [sid]
`,
    routes,
  );
  cfg.env.STEPGATE_DATA_DIR = `${cfg.dir}/data`;
  return { cfg, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}` };
}

const ROUTES = `rules:\n  - name: billing\n    match: PATCH /billing\n`;
const patch = (url: string, path = '/billing') => fetch(url + path, { method: 'PATCH', headers: { cookie: 'sid=s1' } });

describe('stepgate CLI', () => {
  it('check prints the table, and reports every problem as file:line:col with exit 1', async () => {
    const { cfg } = await configFor(ROUTES);
    const ok = runCli(cfg, ['check']);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/billing\s+PATCH\s+\/billing/);
    writeFileSync(cfg.routesFile, `rules:\n  - name: billing\n    match: PATCH /billing\n    max_age: soon\n  - nmae: x\n`);
    const bad = runCli(cfg, ['check']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`${cfg.routesFile}:4:14:`);
    expect(bad.stderr).toMatch(new RegExp(`${cfg.routesFile}:5:\\d+: .*nmae`));
  });

  it('explain says which rule gates a spelling after canonicalisation', async () => {
    const { cfg } = await configFor(ROUTES);
    const r = runCli(cfg, ['explain', 'patch', '/x/../BILLING/']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('canonical: /BILLING/');
    expect(r.stdout).toContain('gated by billing');
    expect(runCli(cfg, ['explain', 'GET', '/billing']).stdout).toContain('not gated');
    expect(runCli(cfg, ['explain', 'PATCH', '/a%5cb']).stdout).toContain('400 BAD_REQUEST_PATH');
  });
});

describe('running gateway', () => {
  let gw: GatewayProcess;
  let env: { cfg: ConfigDir; url: string; admin: string };

  beforeAll(async () => {
    env = await configFor(ROUTES);
    gw = startCli(env.cfg);
    await gw.waitForLog(/stepgate listening/);
  });
  afterAll(async () => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });

  it('applies routes.yaml edits live and keeps the last good table on a broken file', async () => {
    expect((await patch(env.url, '/invites')).status).toBe(200);
    writeFileSync(env.cfg.routesFile, `${ROUTES}  - name: invites\n    match: PATCH /invites\n`);
    await gw.waitForLog(/routes reloaded/);
    expect((await patch(env.url, '/invites')).status).toBe(403);

    writeFileSync(env.cfg.routesFile, `rules:\n  - name: billing\n    match: PATCH /billing\n    factors: [sms]\n`);
    await gw.waitForLog(/routes reload failed/);
    expect(gw.output()).toContain(`${env.cfg.routesFile}:4:`);
    expect((await patch(env.url, '/invites')).status).toBe(403);

    writeFileSync(env.cfg.routesFile, `rules: []\n`);
    await gw.waitForLog(/"rules":0,"msg":"routes reloaded"/);
    expect((await patch(env.url, '/billing')).status).toBe(200);
    writeFileSync(env.cfg.routesFile, ROUTES);
    gw.child.kill('SIGHUP');
    await gw.waitForLog(/"rules":1,"msg":"routes reloaded"/);
    expect((await patch(env.url, '/billing')).status).toBe(403);
  });

  it('after a burst of edits and SIGHUPs, the table in use is the last content of the file', async () => {
    // Reloads run one at a time on a worker thread and read the file as it is when they start, so
    // the last one wins; an older read finishing late must never swap its table in.
    const burst = (n: number) => `rules:\n${Array.from({ length: n }, (_, i) => `  - name: burst-${i}\n    match: PATCH /burst/${i}\n`).join('')}`;
    for (let n = 1; n <= 12; n++) {
      writeFileSync(env.cfg.routesFile, burst(n * 50));
      gw.child.kill('SIGHUP');
    }
    await gw.waitForLog(/"rules":600,"msg":"routes reloaded"/);
    // Give any straggler (the file poller's reload) time to land, then check what is in force.
    await new Promise((r) => setTimeout(r, 1_500));
    const reloads = [...gw.output().matchAll(/"rules":(\d+),"msg":"routes reloaded"/g)].map((m) => Number(m[1]));
    expect(reloads.at(-1)).toBe(600);
    expect((await patch(env.url, '/burst/599')).status).toBe(403);
    expect((await patch(env.url, '/burst/0')).status).toBe(403);
    expect((await patch(env.url, '/burst/600')).status).toBe(200);

    writeFileSync(env.cfg.routesFile, ROUTES);
    gw.child.kill('SIGHUP');
    await gw.waitForLog(/"rules":1,"msg":"routes reloaded"[^\n]*\n(?![\s\S]*"rules":600)/);
    expect((await patch(env.url, '/burst/599')).status).toBe(200);
  });

  it('SIGHUP re-reads gateway.yaml: live settings apply, the others are reported and kept', async () => {
    const yaml = readFileSync(env.cfg.gatewayFile, 'utf8');
    writeFileSync(env.cfg.gatewayFile, yaml.replace(/listen: 127\.0\.0\.1:\d+\n/, 'listen: 127.0.0.1:1\n') + 'theme:\n  product_name: Zeta Corp\n');
    gw.child.kill('SIGHUP');
    await gw.waitForLog(/"needsRestart":\["listen"\]/);
    await gw.waitForLog(/"applied":\["theme"\]/);
    const page = await fetch(env.url + '/__stepup/verify', { headers: { cookie: 'sid=s1' } });
    expect(await page.text()).toContain('Zeta Corp');
    writeFileSync(env.cfg.gatewayFile, yaml);
  });

  it('exposes metrics, health and readiness on the admin listener only', async () => {
    const before = await (await fetch(env.admin + '/metrics')).text();
    const count = (text: string, decision: string) => Number(new RegExp(`stepgate_requests_total\\{decision="${decision}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    await fetch(env.url + '/free');
    await fetch(env.url + '/free');
    await patch(env.url);
    const after = await (await fetch(env.admin + '/metrics')).text();
    expect(count(after, 'passed') - count(before, 'passed')).toBe(2);
    expect(count(after, 'step_up_required') - count(before, 'step_up_required')).toBe(1);
    expect(after).toMatch(/stepgate_config_reloads_total\{outcome="failure"\} [1-9]/);
    expect(after).toMatch(/stepgate_upstream_response_seconds_count \d+/);
    expect(after).toMatch(/stepgate_identity_lookups_total\{result="hit"\} [1-9]/);
    expect((await fetch(env.admin + '/healthz')).status).toBe(200);
    expect((await fetch(env.admin + '/readyz')).status).toBe(200);
    // Not on the public listener: that path belongs to the app.
    await fetch(env.url + '/metrics');
    expect(seen).toContain('GET /metrics');
  });

  it('users invite/show/reset and audit work beside the running gateway', async () => {
    const invite = runCli(env.cfg, ['users', 'invite', 'alice']);
    expect(invite.status).toBe(0);
    expect(invite.stdout).toMatch(new RegExp(`/__stepup/settings\\?invite=[\\w-]+`));
    const show = runCli(env.cfg, ['users', 'show', 'alice']);
    expect(show.stdout).toContain('no factors');
    expect(runCli(env.cfg, ['users', 'reset', 'alice']).status).toBe(0);
    const audit = runCli(env.cfg, ['audit', '--user', 'alice', '--json']);
    const events = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => e.event)).toEqual(['user.invite', 'user.reset']);
    expect(Object.keys(events[0]!)).toEqual(['at', 'user', 'event', 'factor', 'outcome', 'ip', 'userAgent', 'requestId']);
    // The invite code itself is never stored in clear.
    const code = /invite=([\w-]+)/.exec(invite.stdout)![1]!;
    expect(readFileSync(`${env.cfg.dir}/data/stepgate.db`).includes(Buffer.from(code))).toBe(false);
  });

  it('SIGTERM lets an in-flight request finish, then exits 0', async () => {
    // A connection of its own: a pooled keep-alive socket may be closed by the server's idle timeout
    // just as the request goes out, which would test undici, not the shutdown.
    const dispatcher = new Agent();
    const slow = fetch(env.url + '/slow', { dispatcher } as RequestInit).then(async (r) => ({ status: r.status, body: await r.text() }));
    // In flight = the app already has it (a request still on the wire races the shutdown).
    while (!seen.includes('GET /slow')) await new Promise((r) => setTimeout(r, 20));
    gw.child.kill('SIGTERM');
    expect(await slow).toEqual({ status: 200, body: 'hello' });
    expect(await gw.exited).toBe(0);
  });
});
