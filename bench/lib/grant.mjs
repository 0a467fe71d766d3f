// Giving the bench sessions their step-up state through stepgate's own JSON API, as a client
// would: session `sid=bench` enrols TOTP and verifies (a valid grant, 12h on `GET /gated/*`);
// session `sid=bench2` enrols TOTP but never verifies (so it gets 403 STEP_UP_REQUIRED).
// Codes come from otplib's generateSync. The verify code must belong to a later 30 s step than
// the confirm code (replay protection): we send the next step's code, which the gateway accepts
// (it allows ±1 step); if that is refused we wait for the next step boundary once (≤ 30 s).
import { generateSync } from 'otplib';

const STEP_MS = 30_000;

async function api(base, path, cookie, body) {
  const res = await fetch(`${base}/__stepup/api${path}`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, body: json };
}

const codeAt = (secret, ms) => generateSync({ secret, epoch: Math.floor(ms / 1000) });

async function enrol(base, cookie) {
  const start = await api(base, '/enroll/totp', cookie, {});
  if (start.status !== 200) throw new Error(`enroll/totp for ${cookie}: ${start.status} ${JSON.stringify(start.body)}`);
  const secret = start.body.secret;
  const confirm = await api(base, '/enroll/totp/confirm', cookie, { code: codeAt(secret, Date.now()) });
  if (confirm.status !== 200) throw new Error(`enroll/totp/confirm for ${cookie}: ${confirm.status} ${JSON.stringify(confirm.body)}`);
  return secret;
}

/** Returns how the grant was obtained ('next-step code' or 'waited N ms'). */
export async function setupSessions(base, { log = () => {} } = {}) {
  const secret = await enrol(base, 'sid=bench');
  await enrol(base, 'sid=bench2');
  let res = await api(base, '/verify/totp', 'sid=bench', { code: codeAt(secret, Date.now() + STEP_MS) });
  if (res.status === 200) return 'verified with the next step\'s code (no wait)';
  log(`verify with the next step's code answered ${res.status} ${res.body.code}; waiting for the next step boundary`);
  const wait = STEP_MS - (Date.now() % STEP_MS) + 1_000;
  await new Promise((r) => setTimeout(r, wait));
  res = await api(base, '/verify/totp', 'sid=bench', { code: codeAt(secret, Date.now()) });
  if (res.status !== 200) throw new Error(`verify/totp: ${res.status} ${JSON.stringify(res.body)}`);
  return `verified after waiting ${wait} ms for the next step`;
}

/** One request with `cookie`; resolves to { status, body }. */
export async function probe(base, path, cookie) {
  const res = await fetch(base + path, { headers: { cookie } });
  return { status: res.status, body: await res.text() };
}
