// The stepgate target: the real gateway (startGateway from dist/, the same code `stepgate start`
// runs) in front of the bench upstream, with a SQLite store in a temp data_dir and the upstream
// identity source (`/api/me`, cookie `sid`). Rules: `GET /gated/*` needs a step-up within 12h;
// everything else (e.g. `/static/x`) is not gated.
//
// Usage (the bench runner does this; run `npm run build` first):
//   UPSTREAM=http://127.0.0.1:PORT DATA_DIR=/tmp/dir STEPGATE_SECRET=base64 LOG_LEVEL=warn \
//     node bench/targets/stepgate.mjs
// Prints `READY {"url":...}`; SIGUSR2 prints `MEM {...}` (bench/lib/serve.mjs); SIGTERM (or
// stdin closing) closes the gateway cleanly and exits 0, which also lets `node --cpu-prof` write
// its profile.
import { parseGatewayConfig, parseRoutesConfig } from '../../dist/config/load.js';
import { buildRouteTable } from '../../dist/config/route-table.js';
import { startGateway } from '../../dist/gateway.js';
import { createLogger } from '../../dist/log.js';
import { answerMemoryProbe } from '../lib/serve.mjs';

const { UPSTREAM, DATA_DIR } = process.env;
if (!UPSTREAM || !DATA_DIR || !process.env.STEPGATE_SECRET) {
  console.error('stepgate target: UPSTREAM, DATA_DIR and STEPGATE_SECRET are required');
  process.exit(2);
}

const GATEWAY_YAML = `
listen: 127.0.0.1:0
upstream: ${UPSTREAM}
public_origin: http://localhost:8080
data_dir: ${DATA_DIR}
admin_listen: null
upstream_timeout: 30s
identity:
  source: upstream
  session_cookies: [sid]
  upstream: { path: /api/me, user_field: id, name_field: email, cache_ttl: 10m }
unenrolled: enroll
enrollment: self
`;

const ROUTES_YAML = `
defaults:
  max_age: 10m
rules:
  - name: gated
    match: GET /gated/*
    max_age: 12h
`;

const env = process.env;
const gw = await startGateway({
  cfg: parseGatewayConfig(GATEWAY_YAML, 'gateway.yaml', env),
  routes: buildRouteTable(parseRoutesConfig(ROUTES_YAML, 'routes.yaml')),
  log: createLogger(env.LOG_LEVEL ?? 'warn'),
  env,
});
process.stdout.write(`READY ${JSON.stringify({ url: gw.url })}\n`);

answerMemoryProbe();

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  gw.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
