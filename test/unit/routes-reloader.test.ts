// RoutesReloader's schedule: one read at a time, requests during a read coalesce into one more,
// and the table in use is always the one of the read that started last. The reads here are held
// open by the test (the real worker-thread read is tested in test/integration/routes-reload.test.ts).
import { describe, expect, it } from 'vitest';
import type { GatewayContext, RouteTable } from '../../src/context.js';
import { ConfigError } from '../../src/config/errors.js';
import { RoutesReloader } from '../../src/reload.js';

/** A read the test finishes by hand, with the content the "file" had when it started. */
interface HeldRead {
  content: string;
  finish: () => void;
  fail: (err: Error) => void;
}

function harness() {
  let fileContent = 'v0';
  const reads: HeldRead[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const logged: string[] = [];
  const ctx = {
    routes: { tag: 'v0' } as unknown as RouteTable,
    metrics: { reload: (ok: boolean) => logged.push(ok ? 'reload ok' : 'reload failed') },
    log: { info: () => {}, error: () => {} },
  } as unknown as GatewayContext;
  const load = (file: string) => {
    expect(file).toBe('routes.yaml');
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    return new Promise<RouteTable>((resolve, reject) => {
      const content = fileContent;
      const done = () => inFlight--;
      reads.push({
        content,
        finish: () => (done(), resolve({ tag: content, rules: { ruleCount: 1 } } as unknown as RouteTable)),
        fail: (err) => (done(), reject(err)),
      });
    });
  };
  const reloader = new RoutesReloader(ctx, 'routes.yaml', load);
  return {
    reloader,
    reads,
    logged,
    write: (content: string) => (fileContent = content),
    inUse: () => (ctx.routes as unknown as { tag: string }).tag,
    maxInFlight: () => maxInFlight,
  };
}

/** Lets the reloader's promise chain move on. */
const settle = () => new Promise((r) => setImmediate(r));

describe('RoutesReloader', () => {
  it('runs one read at a time; requests during a read become one more read of the latest content', async () => {
    const h = harness();
    h.write('v1');
    const first = h.reloader.reload();
    await settle();
    expect(h.reads.map((r) => r.content)).toEqual(['v1']);

    // Three edits while the first read runs: one more read, not three, and not before the first ends.
    h.write('v2');
    const second = h.reloader.reload();
    h.write('v3');
    expect(h.reloader.reload()).toBe(second);
    h.write('v4');
    expect(h.reloader.reload()).toBe(second);
    await settle();
    expect(h.reads).toHaveLength(1);

    h.reads[0]!.finish();
    expect(await first).toBe(true);
    expect(h.inUse()).toBe('v1');
    await settle();
    expect(h.reads.map((r) => r.content)).toEqual(['v1', 'v4']);
    h.reads[1]!.finish();
    expect(await second).toBe(true);
    expect(h.inUse()).toBe('v4');
    expect(h.maxInFlight()).toBe(1);
  });

  it('keeps the table in use when a read fails, and reads again on the next request', async () => {
    const h = harness();
    h.write('broken');
    const failed = h.reloader.reload();
    await settle();
    h.reads[0]!.fail(new ConfigError([{ file: 'routes.yaml', line: 2, col: 3, message: 'bad' }]));
    expect(await failed).toBe(false);
    expect(h.inUse()).toBe('v0');

    // A worker that could not answer at all is a failed reload too, never a crash.
    h.write('still broken');
    const crashed = h.reloader.reload();
    await settle();
    h.reads[1]!.fail(new Error('the routes reader stopped (exit code 1) before answering'));
    expect(await crashed).toBe(false);

    h.write('fixed');
    const fixed = h.reloader.reload();
    await settle();
    h.reads[2]!.finish();
    expect(await fixed).toBe(true);
    expect(h.inUse()).toBe('fixed');
    expect(h.logged).toEqual(['reload failed', 'reload failed', 'reload ok']);
  });
});
