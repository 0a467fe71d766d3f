// Live reload (SPEC §10). routes.yaml: on change (polled every second, so editors that replace
// the file are seen too) and on SIGHUP; the new table is built completely before it replaces the
// old one, and a bad file keeps the previous table and logs `file:line:col`. gateway.yaml: on
// SIGHUP; what can change live is applied, the rest is reported and kept until a restart.
import { unwatchFile, watchFile } from 'node:fs';
import { ConfigError } from './config/errors.js';
import { loadRouteTableOffThread } from './config/route-table.js';
import type { GatewayContext, RouteTable } from './context.js';
import { loadGatewayConfig } from './config/load.js';
import type { GatewayConfig } from './config/types.js';
import { addressSet } from './net/cidr.js';

/** Reads routes.yaml into a table, or rejects (ConfigError for a bad file). */
export type RouteTableLoader = (file: string) => Promise<RouteTable>;

/**
 * Reads routes.yaml again and swaps the new table in; a bad file keeps the current one.
 * The file is read and validated on a worker thread (config/routes-reader.ts), so requests wait
 * only for the compile. Resolves with whether the new table is in use; never rejects.
 */
async function reloadRoutes(ctx: GatewayContext, file: string, load: RouteTableLoader = loadRouteTableOffThread): Promise<boolean> {
  try {
    const table = await load(file);
    ctx.routes = table;
    ctx.metrics.reload(true);
    ctx.log.info({ file, rules: table.rules.ruleCount }, 'routes reloaded');
    return true;
  } catch (err) {
    ctx.metrics.reload(false);
    const problems = err instanceof ConfigError ? err.message.split('\n') : [(err as Error).message];
    ctx.log.error({ file, problems }, 'routes reload failed; keeping the previous table');
    return false;
  }
}

/**
 * Reloads of one routes.yaml, one at a time and in order: a change seen (or a SIGHUP) while a
 * read runs starts one more read after it, so the table in use always ends up being the file's
 * latest content, and two reads finishing out of order cannot swap an older table in.
 */
export class RoutesReloader {
  /** The last reload started (or already settled). */
  private last: Promise<boolean> = Promise.resolve(true);
  /** A reload asked for and not started yet: later requests join it rather than queue more. */
  private next: Promise<boolean> | null = null;

  constructor(
    private readonly ctx: GatewayContext,
    readonly file: string,
    private readonly load: RouteTableLoader = loadRouteTableOffThread,
  ) {}

  /** Resolves once a read that started after this call has finished: with whether it was applied. */
  reload(): Promise<boolean> {
    if (!this.next) {
      const next = this.last.then(() => {
        this.next = null;
        return reloadRoutes(this.ctx, this.file, this.load);
      });
      this.next = next;
      this.last = next;
    }
    return this.next;
  }
}

/** Polls routes.yaml every second (editors that replace the file are seen too); returns the stop function. */
export function watchRoutes(reloader: RoutesReloader): () => void {
  const onChange = (cur: { mtimeMs: number }, prev: { mtimeMs: number }) => {
    if (cur.mtimeMs !== prev.mtimeMs) void reloader.reload();
  };
  watchFile(reloader.file, { interval: 1000, persistent: false }, onChange);
  return () => unwatchFile(reloader.file, onChange);
}

/** Settings read per request (or per page): safe to swap on a running gateway. */
const LIVE_SETTINGS = ['theme', 'unenrolled', 'enrollment', 'injectClient', 'trustProxy'] as const;

export function reloadGatewayConfig(ctx: GatewayContext, file: string, env: NodeJS.ProcessEnv = process.env): boolean {
  let next: GatewayConfig;
  try {
    next = loadGatewayConfig(file, env);
  } catch (err) {
    ctx.metrics.reload(false);
    const problems = err instanceof ConfigError ? err.message.split('\n') : [(err as Error).message];
    ctx.log.error({ file, problems }, 'gateway.yaml reload failed; keeping the current settings');
    return false;
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const current = ctx.cfg;
  const kept = (Object.keys(next) as Array<keyof GatewayConfig>).filter(
    (key) => key !== 'file' && !(LIVE_SETTINGS as readonly string[]).includes(key) && !same(next[key], current[key]),
  );
  const applied = LIVE_SETTINGS.filter((key) => !same(next[key], current[key]));
  const merged: GatewayConfig = { ...current };
  for (const key of LIVE_SETTINGS) (merged as unknown as Record<string, unknown>)[key] = next[key];
  ctx.cfg = Object.freeze(merged);
  ctx.headerPolicy = { ...ctx.headerPolicy, trustProxy: addressSet(merged.trustProxy) };
  ctx.metrics.reload(true);
  if (kept.length > 0) ctx.log.warn({ file, needsRestart: kept }, 'gateway.yaml: these settings change only on restart; keeping the running values');
  ctx.log.info({ file, applied }, 'gateway.yaml reloaded');
  return true;
}
