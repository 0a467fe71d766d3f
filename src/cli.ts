#!/usr/bin/env node
// stepgate start | check | explain | migrate — the operator's entry points (SPEC §1).
import { ConfigError } from './config/errors.js';
import { loadGatewayConfig, resolveConfigPaths } from './config/load.js';
import { loadRouteTable } from './config/route-table.js';
import { formatDuration } from './config/units.js';
import { startGateway } from './gateway.js';
import { canonicalise } from './rules/canonical.js';
import { describeRules } from './rules/match.js';
import { reloadGatewayConfig, RoutesReloader, watchRoutes } from './reload.js';
import { openStore } from './store/open.js';
import { parseArgs } from 'node:util';
import { bufferedBody } from './proxy/body.js';
import { ConditionInput, matchWithConditions } from './rules/when.js';
import { auditCommand, usersCommand } from './admin-cli.js';

function fail(message: string): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(1);
}

function loadAll() {
  const { gatewayFile, routesFile } = resolveConfigPaths();
  const problems: string[] = [];
  let cfg;
  let routes;
  try {
    cfg = loadGatewayConfig(gatewayFile);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(err.message);
  }
  try {
    routes = loadRouteTable(routesFile);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(err.message);
  }
  if (!cfg || !routes) fail(problems.join('\n'));
  return { cfg, routes, routesFile };
}

async function start(): Promise<void> {
  const { cfg, routes, routesFile } = loadAll();
  const gw = await startGateway({ cfg, routes });
  const routesReloader = new RoutesReloader(gw.ctx, routesFile);
  const stopWatching = watchRoutes(routesReloader);
  process.on('SIGHUP', () => {
    reloadGatewayConfig(gw.ctx, gw.ctx.cfg.file);
    void routesReloader.reload();
  });
  const stop = (signal: string) => {
    gw.ctx.log.info({ signal }, 'shutting down');
    stopWatching();
    gw.close().then(
      () => process.exit(0),
      (err: Error) => fail(`shutdown failed: ${err.message}`),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

function check(): void {
  const { cfg, routes } = loadAll();
  process.stdout.write(`gateway: ${cfg.file} — listen ${cfg.listen.host}:${cfg.listen.port}, upstream ${cfg.upstream}, public origin ${cfg.publicOrigin}\n`);
  process.stdout.write(`routes:  ${routes.cfg.file} — ${routes.cfg.rules.length} rule(s), default max_age ${formatDuration(routes.cfg.defaults.maxAgeMs)}, ${routes.cfg.caseSensitive ? 'case-sensitive' : 'case-insensitive'}, encoded slashes: ${routes.cfg.encodedSlashes}\n\n`);
  process.stdout.write(describeRules(routes.cfg) + '\n');
}

async function explain(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { body: { type: 'string' }, 'content-type': { type: 'string' } } });
  const [method, target] = positionals;
  if (!method || !target) fail('usage: stepgate explain METHOD PATH [--body B --content-type T]');
  const { routes } = loadAll();
  const canon = canonicalise(target, routes.cfg.encodedSlashes);
  if (!canon.ok) {
    process.stdout.write(`${method.toUpperCase()} ${target}\n  → 400 BAD_REQUEST_PATH: ${canon.reason}\n`);
    return;
  }
  const methods = [method.toUpperCase(), ...(method.toUpperCase() === 'HEAD' ? ['GET'] : [])];
  process.stdout.write(`${method.toUpperCase()} ${target}\n  canonical: ${canon.forwardPath}${canon.query}\n  matched as: ${canon.matchPaths.join(' | ')}\n`);
  let match = routes.rules.match(methods, canon.matchPaths);
  if (match) {
    const body = values.body === undefined ? null : bufferedBody(Buffer.from(values.body));
    const input = new ConditionInput(canon.query, values['content-type'], () => Promise.resolve(body));
    match = await matchWithConditions(routes.rules, methods, canon.matchPaths, match, input, (rule, why) =>
      process.stdout.write(`  condition of ${rule.name}: ${why ? `matched (${why})` : 'not matched'}\n`),
    );
  }
  if (!match) {
    process.stdout.write('  → not gated: forwarded as is\n');
    return;
  }
  if (canon.hasMatrixParams) process.stdout.write('  → 400 BAD_REQUEST_PATH: ";" parameters on a gated path\n');
  process.stdout.write(
    `  → gated by ${match.name}: a verification within ${formatDuration(match.maxAgeMs)} with ${match.factors.join(', ') || 'no factor (the rules accept no common factor)'}` +
      `${match.once ? ', once (a fresh verification per request)' : ''}; anonymous: ${match.anonymousAllowed ? 'allowed' : '401'}\n`,
  );
}

/** gateway.yaml alone: enough for the commands that only need the store. */
function loadGatewayOnly() {
  try {
    return loadGatewayConfig(resolveConfigPaths().gatewayFile);
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : String(err));
  }
}

async function migrate(): Promise<void> {
  const cfg = loadGatewayOnly();
  const { store, where } = await openStore(cfg, process.env, { exclusive: false });
  await store.close();
  process.stdout.write(`store schema up to date in ${cfg.store === 'postgres' ? `PostgreSQL at ${where}` : where}\n`);
}

const USAGE = `usage: stepgate <command>
  start                      run the gateway (config/gateway.yaml + config/routes.yaml)
  check                      validate both config files and print the rule table
  explain METHOD PATH [--body B --content-type T]
                             say which rule gates a request, after canonicalisation
  migrate                    create or upgrade the store's schema
  users show|reset|invite U  a user's factors and grants / remove them all (audited) / a 24 h enrolment code
  audit [--user U] [--since 1h] [--json]   audit events
environment: STEPGATE_CONFIG, STEPGATE_ROUTES, STEPGATE_LISTEN, STEPGATE_UPSTREAM, STEPGATE_PUBLIC_ORIGIN,
             STEPGATE_DATA_DIR, STEPGATE_STORE, STEPGATE_SECRET, LOG_LEVEL
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start();
    case 'check':
      return check();
    case 'explain':
      return explain(rest);
    case 'migrate':
      return migrate();
    case 'users':
      return usersCommand(loadGatewayOnly(), rest, process.stdout);
    case 'audit':
      return auditCommand(loadGatewayOnly(), rest, process.stdout);
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return;
    default:
      fail(`unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => fail(`stepgate: ${err.message}`));
