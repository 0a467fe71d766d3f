// Live reload (SPEC §10). routes.yaml: on change (polled every second, so editors that replace
// the file are seen too) and on SIGHUP; the new table is built completely before it replaces the
// old one, and a bad file keeps the previous table and logs `file:line:col`. gateway.yaml: on
// SIGHUP; what can change live is applied, the rest is reported and kept until a restart.
import { unwatchFile, watchFile } from 'node:fs';
import { ConfigError } from './config/errors.js';
import { loadRouteTable } from './config/route-table.js';
import type { GatewayContext } from './context.js';
import { loadGatewayConfig } from './config/load.js';
import type { GatewayConfig } from './config/types.js';
import { addressSet } from './net/cidr.js';

export function reloadRoutes(ctx: GatewayContext, file: string): boolean {
  try {
    const table = loadRouteTable(file);
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

export function watchRoutes(ctx: GatewayContext, file: string): () => void {
  const onChange = (cur: { mtimeMs: number }, prev: { mtimeMs: number }) => {
    if (cur.mtimeMs !== prev.mtimeMs) reloadRoutes(ctx, file);
  };
  watchFile(file, { interval: 1000, persistent: false }, onChange);
  return () => unwatchFile(file, onChange);
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
