// Live reload of routes.yaml (SPEC §10): on change (polled every second, so editors that replace
// the file are seen too) and on SIGHUP. The new table is built completely before it replaces the
// old one; a bad file keeps the previous table and logs `file:line:col`.
import { unwatchFile, watchFile } from 'node:fs';
import { ConfigError } from './config/errors.js';
import { loadRouteTable } from './config/route-table.js';
import type { GatewayContext } from './context.js';

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
