// `stepgate users show|reset|invite USER` and `stepgate audit`: the operator's tools, working on
// the same store as a running gateway (SQLite in WAL mode allows it; no gateway lock is taken; or
// the shared PostgreSQL database, whose clock then dates invites like the gateways do).
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { GatewayConfig } from './config/types.js';
import { parseDuration } from './config/units.js';
import { loadSecrets } from './crypto/secrets.js';
import { inviteHash } from './factors/invite.js';
import { systemClock, type Clock } from './clock.js';
import { openStore } from './store/open.js';
import type { AuditEvent, Store } from './store/store.js';

const INVITE_TTL_MS = 24 * 3600_000;
const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

function cliEvent(user: string, event: string, detail: string | null = null): AuditEvent {
  return { at: Date.now(), user, event, factor: null, outcome: 'info', ip: null, userAgent: 'stepgate-cli', requestId: null, detail };
}

async function withStore<T>(cfg: GatewayConfig, fn: (store: Store, clock: Clock) => Promise<T>): Promise<T> {
  const { store, clock } = await openStore(cfg, process.env, { exclusive: false });
  try {
    return await fn(store, clock ?? systemClock);
  } finally {
    await store.close();
  }
}

export async function usersCommand(cfg: GatewayConfig, args: string[], out: NodeJS.WritableStream): Promise<void> {
  const [action, user] = args;
  if (!action || !user || !['show', 'reset', 'invite'].includes(action)) throw new Error('usage: stepgate users show|reset|invite USER');
  await withStore(cfg, async (store, clock) => {
    if (action === 'show') {
      const now = clock.now();
      const [factors, recovery, grants, lockout] = await Promise.all([store.listFactors(user), store.countUnusedRecoveryCodes(user), store.listGrants(user), store.getLockout(user, now)]);
      out.write(`user ${user}\n`);
      out.write(factors.length ? factors.map((f) => `  ${f.type.padEnd(8)} ${f.name}  (id ${f.id}, added ${iso(f.createdAt)}, last used ${iso(f.lastUsedAt)})\n`).join('') : '  no factors\n');
      out.write(`  recovery codes left: ${recovery}\n`);
      out.write(`  grants: ${grants.length ? grants.map((g) => `${g.factor} at ${iso(g.verifiedAt)}${g.onceConsumed ? ' (once used)' : ''}`).join('; ') : 'none'}\n`);
      out.write(`  lockout: ${lockout.disabled ? 'TOTP and recovery disabled (100 failures)' : lockout.lockedUntil ? `locked until ${iso(lockout.lockedUntil)}` : 'none'}\n`);
      return;
    }
    if (action === 'reset') {
      await store.resetUser(user);
      await store.audit(cliEvent(user, 'user.reset'));
      out.write(`reset ${user}: all factors, recovery codes, grants and lockouts removed; the next factor needs an invite (stepgate users invite ${user})\n`);
      return;
    }
    const secrets = loadSecrets(cfg.dataDir);
    const code = randomBytes(15).toString('base64url');
    await store.createInvite(user, inviteHash(secrets, code), clock.now() + INVITE_TTL_MS);
    await store.audit(cliEvent(user, 'user.invite'));
    out.write(`invite code for ${user} (single use, valid 24 h): ${code}\n`);
    out.write(`link: ${cfg.publicOrigin}${cfg.prefix}/settings?invite=${code}\n`);
  });
}

export async function auditCommand(cfg: GatewayConfig, args: string[], out: NodeJS.WritableStream): Promise<void> {
  const { values } = parseArgs({ args, options: { user: { type: 'string' }, since: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const since = values.since ? Date.now() - parseDuration(values.since) : 0;
  const events = await withStore(cfg, (store) => store.listAudit({ user: values.user, since }));
  for (const e of events) {
    if (values.json) {
      out.write(JSON.stringify({ at: iso(e.at), user: e.user, event: e.event, factor: e.factor, outcome: e.outcome, ip: e.ip, userAgent: e.userAgent, requestId: e.requestId }) + '\n');
    } else {
      out.write(`${iso(e.at)}  ${(e.user ?? '-').padEnd(16)} ${e.event.padEnd(16)} ${(e.factor ?? '-').padEnd(9)} ${e.outcome.padEnd(8)} ${e.ip ?? '-'}  ${e.detail ?? ''}\n`);
    }
  }
}
