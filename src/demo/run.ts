// `npm run demo`: the bundled legacy app on 127.0.0.1:3000 and stepgate in front of it on
// 127.0.0.1:8080, with the shipped config/*.yaml (upstream pointed at the demo app, data in
// ./data/demo) and the drop-in client injected, so the app's fetch/XHR buttons show the verify
// modal instead of a bare 403 (docs/drop-in.md). Ctrl-C stops both.
import { join } from 'node:path';
import { loadGatewayConfig, resolveConfigPaths } from '../config/load.js';
import { loadRouteTable } from '../config/route-table.js';
import { ConfigError } from '../config/errors.js';
import { startGateway } from '../gateway.js';
import { RoutesReloader, watchRoutes } from '../reload.js';
import { DEMO_USERS, startDemoApp } from './app.js';

async function main(): Promise<void> {
  const appPort = Number(process.env.DEMO_APP_PORT ?? 3000);
  const app = await startDemoApp({ host: '127.0.0.1', port: appPort });
  const { gatewayFile, routesFile } = resolveConfigPaths();
  const env = { ...process.env, STEPGATE_UPSTREAM: app.url, STEPGATE_DATA_DIR: process.env.STEPGATE_DATA_DIR ?? join('data', 'demo') };
  // The loaded config is frozen: the demo's one difference from the shipped file is a new object.
  const cfg = { ...loadGatewayConfig(gatewayFile, env), injectClient: true };
  const gw = await startGateway({ cfg, routes: loadRouteTable(routesFile), env });
  const stopWatching = watchRoutes(new RoutesReloader(gw.ctx, routesFile));
  const shown = gw.ctx.cfg.publicOrigin;
  process.stdout.write(`
  stepgate demo
  ─────────────
  Open ${shown}/login   (the demo app, behind the gateway at ${gw.url})
  Demo users: ${DEMO_USERS.map((u) => `${u.email} / ${u.password}`).join(',  ')}
  Try: Billing → save (fetch, gated 5m: the verify modal), Account → create an API key (XMLHttpRequest:
  the modal), change the password (a form post: the verify page, then the form is sent once), close the
  account (asks every time), Team → invite (form post), Home → download invoices (a link: verify, then
  the CSV downloads).
  Your sign-in security: ${shown}${gw.ctx.cfg.prefix}/settings
  The app alone (no gate): ${app.url}
  Ctrl-C stops both.

`);
  const stop = () => {
    stopWatching();
    void Promise.all([gw.close(), app.close()]).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : (err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
