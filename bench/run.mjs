// `npm run bench`: stepgate against the limit (direct), the Node baselines (bare undici proxy, bare
// http-proxy-3) and nginx, in ONE run, plus rule scaling, instructions per request (callgrind),
// a memory soak and a CPU profile.
//
//   npm run bench                 full run (~10 min when the machine is idle): 3 rounds x 5 s per
//                                 target, a 1-connection latency pass, 1M-request soak, profile
//   npm run bench -- --quick      smoke run (~3 min): 1 round x 2 s, 100k-request soak
//   options: --no-build (use the existing dist/), --no-profile, --no-soak, --no-rules,
//            --no-instructions
//   env: BENCH_SECONDS, BENCH_ROUNDS, BENCH_WARMUP_SECONDS, BENCH_CONNECTIONS,
//        BENCH_SOAK_REQUESTS, BENCH_SOAK_MAX_SECONDS, BENCH_PROFILE_SECONDS, BENCH_LATENCY_SECONDS,
//        BENCH_LOAD_CPU (default 0: wrk), BENCH_SERVER_CPU (default 1: proxies + upstream),
//        BENCH_MAX_FOREIGN_PCT (default 10), BENCH_RETRIES (default 2),
//        BENCH_QUIET_BUDGET_SECONDS (default 60: total time spent waiting for a quiet machine)
//
// Method: every target is its own child process pinned with taskset to the server CPU, together
// with the one upstream (100-byte answers, keep-alive); wrk (Debian's) runs pinned to the other
// CPU with 50 connections. Rounds are interleaved (each round visits every target, in a rotated
// order) so drift on a shared machine hits all targets alike; the reported figure is the median
// of the (undisturbed) rounds. "Proxy CPU µs/req" is the target process's utime+stime from /proc/PID/stat over
// the run, divided by the requests wrk completed (nginx: master + worker). At 50 connections every
// target is saturated, so its latency is mostly queueing (Little's law: p50 ≈ 50 / req/s); a
// second, short pass with ONE connection measures the latency each target adds per request when
// nothing queues. Results go to stdout and bench/results/latest.{md,json} (quick runs:
// quick.{md,json}). Timing is never asserted by `npm test`; this is the place for it.
// docs/performance.md explains the method and the targets.
//
// Noise: the machine may be shared. For every run the per-CPU busy time from /proc/stat is
// compared with the CPU time of our own processes; "foreign" CPU is what something else used on
// the two bench CPUs. Before each run the runner waits (up to a total budget) for the machine to be
// quiet; a run with more than BENCH_MAX_FOREIGN_PCT foreign CPU on either CPU is repeated (up to
// BENCH_RETRIES times); the noise is reported next to the figures either way.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuBusyTicks, cpuTicks, cpuTicksOf, CLK_TCK, killAllChildren, rssBytes, selfTicks, startPinned } from './lib/proc.mjs';
import { runWrk } from './lib/wrk.mjs';
import { NGINX, startNginx } from './lib/nginx.mjs';
import { probe, setupSessions } from './lib/grant.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, 'bench');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const envNum = (name, dflt) => (process.env[name] !== undefined && process.env[name] !== '' ? Number(process.env[name]) : dflt);

const CFG = {
  seconds: envNum('BENCH_SECONDS', quick ? 2 : 5),
  rounds: envNum('BENCH_ROUNDS', quick ? 1 : 3),
  warmup: envNum('BENCH_WARMUP_SECONDS', 1),
  connections: envNum('BENCH_CONNECTIONS', 50),
  soakRequests: envNum('BENCH_SOAK_REQUESTS', quick ? 100_000 : 1_000_000),
  soakMaxSeconds: envNum('BENCH_SOAK_MAX_SECONDS', quick ? 60 : 240),
  profileSeconds: envNum('BENCH_PROFILE_SECONDS', quick ? 3 : 8),
  latencySeconds: envNum('BENCH_LATENCY_SECONDS', quick ? 1 : 2),
  maxForeignPct: envNum('BENCH_MAX_FOREIGN_PCT', 10),
  retries: envNum('BENCH_RETRIES', 2),
  quietBudget: envNum('BENCH_QUIET_BUDGET_SECONDS', quick ? 10 : 60),
  loadCpu: envNum('BENCH_LOAD_CPU', 0),
  serverCpu: envNum('BENCH_SERVER_CPU', 1),
  build: !args.includes('--no-build'),
  profile: !args.includes('--no-profile'),
  soak: !args.includes('--no-soak'),
  rules: !args.includes('--no-rules'),
  instructions: !args.includes('--no-instructions'),
};

const TARGETS = [
  { key: 'direct', label: 'direct to upstream (the limit)', proc: 'upstream', path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'undici', label: 'bare undici proxy', proc: 'undici', path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'httpproxy3', label: 'bare http-proxy-3 proxy', proc: 'httpproxy3', path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'nginx', label: 'nginx proxy_pass, keep-alive', proc: 'nginx', path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'open', label: 'stepgate, not gated', proc: 'stepgate', path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'gated', label: 'stepgate, gated + valid grant', proc: 'stepgate', path: '/gated/x', cookie: 'sid=bench', expect: 200 },
  { key: 'challenge', label: 'stepgate, 403 STEP_UP_REQUIRED', proc: 'stepgate', path: '/gated/x', cookie: 'sid=bench2', expect: 403 },
];

const log = (...m) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...m);
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Preconditions: wrk + nginx (installed from Debian if missing), two CPUs, a fresh dist/.

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0 || spawnSync('sh', ['-c', `test -x /usr/sbin/${cmd}`]).status === 0;
}

function ensureTools() {
  const missing = [];
  if (!have('wrk')) missing.push('wrk');
  if (!have('nginx')) missing.push('nginx-light');
  if (!have('taskset')) missing.push('util-linux');
  if (CFG.instructions && !have('valgrind')) missing.push('valgrind');
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')} from Debian`);
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (install().status !== 0) {
    execFileSync('apt-get', ['update'], { stdio: 'inherit' });
    if (install().status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed`);
  }
}

function build() {
  if (!CFG.build) {
    log('--no-build: using the existing dist/');
    return 'skipped (--no-build)';
  }
  log('npm run build');
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed (src/ does not compile right now); fix it or rerun with --no-build to bench the existing dist/');
  return 'npm run build';
}

// ---------------------------------------------------------------------------------------------
// Targets

async function startTargets(tmp) {
  const node = process.execPath;
  const t = {};
  const pin = { cpu: CFG.serverCpu };
  t.upstream = await startPinned('upstream', [node, join(BENCH, 'targets/upstream.mjs')], pin);
  const UPSTREAM = t.upstream.info.url;
  t.undici = await startPinned('undici', [node, join(BENCH, 'targets/undici-proxy.mjs')], { ...pin, env: { UPSTREAM } });
  t.httpproxy3 = await startPinned('httpproxy3', [node, join(BENCH, 'targets/http-proxy3.mjs')], { ...pin, env: { UPSTREAM } });
  t.nginx = await startNginx(UPSTREAM, join(tmp, 'nginx'), CFG.serverCpu);
  t.stepgate = await startStepgate(tmp, UPSTREAM);
  return t;
}

function stepgateEnv(tmp, upstream) {
  return { UPSTREAM: upstream, DATA_DIR: join(tmp, 'stepgate-data'), STEPGATE_SECRET: SECRET, LOG_LEVEL: 'warn' };
}

async function startStepgate(tmp, upstream, nodeFlags = []) {
  mkdirSync(join(tmp, 'stepgate-data'), { recursive: true });
  // --expose-gc only makes global.gc() available: the MEM probe uses it to report the live heap.
  return startPinned('stepgate', [process.execPath, '--expose-gc', ...nodeFlags, join(BENCH, 'targets/stepgate.mjs')], { cpu: CFG.serverCpu, env: stepgateEnv(tmp, upstream) });
}

/** Every PID whose CPU counts as "the proxy" for a target (none for direct). */
function proxyPids(targets, key) {
  const proc = TARGETS.find((x) => x.key === key).proc;
  if (proc === 'upstream') return [];
  if (proc === 'nginx') return targets.nginx.pids();
  return [targets[proc].pid];
}

/** Every process of ours pinned to the server CPU. */
function serverPids(targets) {
  const pids = [];
  for (const [k, t] of Object.entries(targets)) pids.push(...(k === 'nginx' ? t.pids() : [t.pid]));
  return pids;
}

/** One bounded wrk run against one target, with CPU accounting of proxy, upstream and others. */
async function measureOnce(targets, key, seconds, connections = CFG.connections) {
  const def = TARGETS.find((x) => x.key === key);
  const url = targets[def.proc].info.url + def.path;
  const pids = proxyPids(targets, key);
  const ours = serverPids(targets);
  const busy0 = cpuBusyTicks();
  const me0 = selfTicks();
  const all0 = cpuTicksOf(ours);
  const up0 = cpuTicks(targets.upstream.pid);
  const px0 = cpuTicksOf(pids);
  const t0 = process.hrtime.bigint();
  const w = await runWrk({ url, seconds, connections, headers: { Cookie: def.cookie }, cpu: CFG.loadCpu });
  const wallTicks = (Number(process.hrtime.bigint() - t0) / 1e9) * CLK_TCK;
  const px1 = cpuTicksOf(pids);
  const up1 = cpuTicks(targets.upstream.pid);
  const all1 = cpuTicksOf(ours);
  const me1 = selfTicks();
  const busy1 = cpuBusyTicks();
  const usPerReq = (ticks) => ((ticks / CLK_TCK) * 1e6) / Math.max(1, w.requests);
  const pct = (ticks) => (100 * ticks) / wallTicks;
  const wrkTicks = me1.children - me0.children;
  const noise = {
    // Server CPU: everything that ran there minus our pinned processes.
    serverBusyPct: pct(busy1[CFG.serverCpu] - busy0[CFG.serverCpu]),
    serverForeignPct: pct(busy1[CFG.serverCpu] - busy0[CFG.serverCpu] - (all1 - all0)),
    // Load CPU: wrk (a reaped child of this runner) and this runner itself.
    wrkPct: pct(wrkTicks),
    loadForeignPct: pct(busy1[CFG.loadCpu] - busy0[CFG.loadCpu] - wrkTicks - (me1.self - me0.self)),
  };
  const problems = [];
  if (w.socketErrors > 0) problems.push(`${w.socketErrors} socket errors`);
  if (def.expect === 200 && w.non2xx > 0) problems.push(`${w.non2xx} non-2xx answers`);
  if (def.expect === 403 && w.non2xx !== w.requests) problems.push(`${w.requests - w.non2xx} answers were not 403`);
  return {
    key,
    rps: w.rps,
    requests: w.requests,
    p50us: w.p50us,
    p99us: w.p99us,
    proxyCpuUs: pids.length ? usPerReq(px1 - px0) : null,
    upstreamCpuUs: usPerReq(up1 - up0),
    noise,
    problems,
  };
}

let quietWaitedMs = 0;

/**
 * Waits (within the run's total budget) until other processes use less than
 * CFG.maxForeignPct of the two bench CPUs together; our targets are idle between runs.
 */
async function waitQuiet() {
  const cpusUsed = [CFG.loadCpu, CFG.serverCpu];
  while (quietWaitedMs < CFG.quietBudget * 1000) {
    const b0 = cpuBusyTicks();
    const t0 = Date.now();
    await sleep(500);
    const b1 = cpuBusyTicks();
    const wall = ((Date.now() - t0) / 1000) * CLK_TCK;
    const busy = cpusUsed.reduce((a, c) => a + b1[c] - b0[c], 0);
    if ((100 * busy) / wall <= CFG.maxForeignPct) return;
    quietWaitedMs += Date.now() - t0;
  }
}

/** measureOnce, repeated (up to CFG.retries times) while another process took a noticeable share of our CPUs. */
async function measure(targets, key, seconds, { retry = true, connections } = {}) {
  for (let attempt = 1; ; attempt++) {
    if (retry) await waitQuiet();
    const r = await measureOnce(targets, key, seconds, connections);
    const foreign = Math.max(r.noise.serverForeignPct, r.noise.loadForeignPct);
    if (!retry || foreign <= CFG.maxForeignPct || attempt > CFG.retries) return { ...r, attempts: attempt };
    log(`  ${key}: ${foreign.toFixed(0)}% foreign CPU during the run; repeating it`);
  }
}

// ---------------------------------------------------------------------------------------------
// Phases

async function checkTargets(targets) {
  for (const def of TARGETS) {
    const r = await probe(targets[def.proc].info.url, def.path, def.cookie);
    if (r.status !== def.expect) throw new Error(`${def.label}: expected ${def.expect}, got ${r.status} ${r.body.slice(0, 200)}`);
    if (def.key === 'challenge' && JSON.parse(r.body).code !== 'STEP_UP_REQUIRED') throw new Error(`challenge target answered ${r.body}`);
  }
}

const foreignPctOf = (r) => Math.max(r.noise.serverForeignPct, r.noise.loadForeignPct);
const undisturbed = (r) => foreignPctOf(r) <= CFG.maxForeignPct;

async function runMatrix(targets) {
  const runs = Object.fromEntries(TARGETS.map((d) => [d.key, []]));
  if (CFG.warmup > 0) {
    log(`warm-up: ${CFG.warmup} s per target`);
    for (const d of TARGETS) await measure(targets, d.key, CFG.warmup, { retry: false });
  }
  for (let round = 0; round < CFG.rounds; round++) {
    // Rotate the order each round so no target always runs first (or right after another).
    const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]);
    for (const d of order) {
      const r = await measure(targets, d.key, CFG.seconds);
      runs[d.key].push(r);
      log(`round ${round + 1}/${CFG.rounds} ${d.label.padEnd(32)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${fmtMs(r.p50us)}  p99 ${fmtMs(r.p99us)}  cpu ${r.proxyCpuUs === null ? '-' : r.proxyCpuUs.toFixed(1) + ' µs'}  wrk ${r.noise.wrkPct.toFixed(0)}%  foreign ${r.noise.serverForeignPct.toFixed(0)}%/${r.noise.loadForeignPct.toFixed(0)}%${r.problems.length ? '  !! ' + r.problems.join(', ') : ''}`);
    }
  }
  const summary = {};
  for (const d of TARGETS) {
    const all = runs[d.key];
    // Rounds disturbed by other processes are left out when at least one clean round exists.
    const clean = all.filter(undisturbed);
    const rs = clean.length > 0 ? clean : all;
    summary[d.key] = {
      cleanRounds: clean.length,
      label: d.label,
      rps: median(rs.map((r) => r.rps)),
      rpsMin: Math.min(...rs.map((r) => r.rps)),
      rpsMax: Math.max(...rs.map((r) => r.rps)),
      p50us: median(rs.map((r) => r.p50us)),
      p99us: median(rs.map((r) => r.p99us)),
      proxyCpuUs: rs[0].proxyCpuUs === null ? null : median(rs.map((r) => r.proxyCpuUs)),
      upstreamCpuUs: median(rs.map((r) => r.upstreamCpuUs)),
      requests: rs.reduce((a, r) => a + r.requests, 0),
      problems: rs.flatMap((r) => r.problems),
      wrkPct: median(rs.map((r) => r.noise.wrkPct)),
      serverBusyPct: median(rs.map((r) => r.noise.serverBusyPct)),
      foreignMaxPct: Math.max(...rs.map(foreignPctOf)),
      repeats: rs.reduce((a, r) => a + r.attempts - 1, 0),
      rounds: all,
    };
  }
  return summary;
}

/** One connection, closed loop: the per-request latency of each target without queueing. */
async function runLatency(targets) {
  const out = {};
  for (const d of TARGETS) {
    const r = await measure(targets, d.key, CFG.latencySeconds, { connections: 1 });
    out[d.key] = { rps: r.rps, p50us: r.p50us, p99us: r.p99us, problems: r.problems };
    log(`1 connection: ${d.label.padEnd(32)} p50 ${fmtMs(r.p50us)}  p99 ${fmtMs(r.p99us)}${r.problems.length ? '  !! ' + r.problems.join(', ') : ''}`);
  }
  return out;
}

function runRules() {
  log('rule scaling (10 / 1,000 / 10,000 rules, one process each)');
  const r = spawnSync(process.execPath, [join(BENCH, 'rules.mjs'), ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    env: { ...process.env, BENCH_RULES_CPU: String(CFG.serverCpu) },
  });
  if (r.status !== 0) throw new Error(`bench/rules.mjs failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** bench/instructions.mjs: user-space instructions per request under callgrind (both CPUs). */
function runInstructions() {
  log('instructions per request under callgrind (bare undici proxy without and with the SPEC §6 headers; stepgate not gated, gated, 403)');
  const r = spawnSync(process.execPath, [join(BENCH, 'instructions.mjs'), ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    env: { ...process.env, BENCH_SERVER_CPU: String(CFG.serverCpu), BENCH_LOAD_CPU: String(CFG.loadCpu) },
  });
  if (r.status !== 0) throw new Error(`bench/instructions.mjs failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/**
 * ≥ soakRequests requests through stepgate (not-gated and gated, alternating), in one or more
 * bounded wrk runs, sampling the gateway's RSS every second.
 */
async function runSoak(targets, estimateRps) {
  const pid = targets.stepgate.pid;
  const script = join(TMP, 'soak.lua');
  writeFileSync(
    script,
    `-- alternate a not-gated and a gated request (both with the granted session cookie)
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then return wrk.format("GET", "/static/x") end
  return wrk.format("GET", "/gated/x")
end
`,
  );
  const mem = async () => {
    process.kill(pid, 'SIGUSR2');
    const line = await targets.stepgate.nextLine();
    const m = JSON.parse(line.replace(/^MEM /, ''));
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v / 2 ** 20]));
  };
  const memStart = await mem();
  const samples = [];
  const t0 = Date.now();
  const sample = () => samples.push({ t: (Date.now() - t0) / 1000, rssMiB: rssBytes(pid) / 2 ** 20 });
  sample();
  const timer = setInterval(sample, 1000);
  let done = 0;
  let non2xx = 0;
  let socketErrors = 0;
  let rpsSeen = [];
  try {
    while (done < CFG.soakRequests) {
      const elapsed = (Date.now() - t0) / 1000;
      const left = CFG.soakMaxSeconds - elapsed;
      if (left < 2) break;
      const rate = rpsSeen.length ? median(rpsSeen) : estimateRps;
      const secs = Math.max(2, Math.min(Math.ceil(((CFG.soakRequests - done) / rate) * 1.05), Math.floor(left)));
      log(`soak: wrk ${secs} s (${done.toLocaleString('en')} of ${CFG.soakRequests.toLocaleString('en')} requests so far)`);
      const w = await runWrk({ url: targets.stepgate.info.url, seconds: secs, connections: CFG.connections, headers: { Cookie: 'sid=bench' }, script, cpu: CFG.loadCpu });
      done += w.requests;
      non2xx += w.non2xx;
      socketErrors += w.socketErrors;
      rpsSeen.push(w.rps);
    }
  } finally {
    clearInterval(timer);
  }
  sample();
  const memEnd = await mem();
  await sleep(1000);
  sample(); // a second after the load stopped
  const during = samples.slice(0, -1);
  const duration = during[during.length - 1].t;
  // RSS moves with every GC cycle, so "middle" and "end" are medians over a window (10% of the
  // soak, at least 3 samples) rather than single samples.
  const win = Math.max(3, Math.round(during.length / 10));
  const midIdx = during.findIndex((s) => s.t >= duration / 2);
  const midWin = during.slice(Math.max(0, midIdx - Math.floor(win / 2)), Math.max(0, midIdx - Math.floor(win / 2)) + win);
  const endWin = during.slice(-win);
  const secondHalf = during.filter((s) => s.t >= duration / 2);
  return {
    memStart,
    memEnd,
    requests: done,
    seconds: duration,
    rps: done / duration,
    non2xx,
    socketErrors,
    startMiB: samples[0].rssMiB,
    midMiB: median(midWin.map((s) => s.rssMiB)),
    endMiB: median(endWin.map((s) => s.rssMiB)),
    lastMiB: during[during.length - 1].rssMiB,
    windowSamples: win,
    afterMiB: samples[samples.length - 1].rssMiB,
    maxMiB: Math.max(...samples.map((s) => s.rssMiB)),
    secondHalfMaxMiB: Math.max(...secondHalf.map((s) => s.rssMiB)),
    samples,
  };
}

/** Restarts stepgate under `node --cpu-prof`, loads it with the soak mix, summarises the profile. */
async function runProfile(targets) {
  const { summarise } = await import('./cpuprofile-summary.mjs');
  const dir = join(TMP, 'cpuprof');
  mkdirSync(dir, { recursive: true });
  await targets.stepgate.stop();
  // Same data_dir and secret: the grant of sid=bench survives the restart. Start-up and a 2 s
  // warm-up are in the profile too; only the samples after them are summarised.
  const spawnedAt = Date.now();
  targets.stepgate = await startStepgate(TMP, targets.upstream.info.url, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const results = {};
  for (const d of TARGETS.filter((x) => x.proc === 'stepgate')) {
    const r = await probe(targets.stepgate.info.url, d.path, d.cookie);
    if (r.status !== d.expect) throw new Error(`profiled stepgate: ${d.label} answered ${r.status}`);
  }
  const script = join(TMP, 'soak.lua');
  await runWrk({ url: targets.stepgate.info.url, seconds: 2, connections: CFG.connections, headers: { Cookie: 'sid=bench' }, script, cpu: CFG.loadCpu });
  const skipMs = Date.now() - spawnedAt;
  log(`profile: ${CFG.profileSeconds} s of not-gated + gated requests under --cpu-prof`);
  const w = await runWrk({ url: targets.stepgate.info.url, seconds: CFG.profileSeconds, connections: CFG.connections, headers: { Cookie: 'sid=bench' }, script, cpu: CFG.loadCpu });
  results.rps = w.rps;
  await targets.stepgate.stop();
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('node --cpu-prof wrote no profile');
  const summary = summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')), { top: 25, skipMs });
  return { ...results, ...summary };
}

// ---------------------------------------------------------------------------------------------
// Report

const fmtMs = (us) => (Number.isFinite(us) ? `${(us / 1000).toFixed(2)} ms` : 'n/a');
const fmtK = (n) => (Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: 0 }) : 'n/a');
const fmtX = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');

/**
 * a's req/s over b's within each round where neither was disturbed: the spread that the ratio
 * of medians hides (on a shared VM it is often wider than the margin a target asks for).
 */
function perRound(a, b) {
  const ratios = a.rounds.flatMap((r, i) => (b.rounds[i] && undisturbed(r) && undisturbed(b.rounds[i]) ? [r.rps / b.rounds[i].rps] : []));
  return ratios.length > 1 ? ` (rounds ${Math.min(...ratios).toFixed(2)}–${fmtX(Math.max(...ratios))})` : '';
}

function checks(m, rules, soak, lat, ins) {
  const out = [];
  const add = (name, target, measured, pass) => out.push({ name, target, measured, pass });
  if (ins) {
    // The same ratio targets by work done: b's instructions per request over a's is the
    // throughput a would have relative to b if both were CPU-bound on the same core. The host's
    // noise does not move these, so they are the verdict to trust when req/s rounds disagree.
    const c = ins.instructions;
    const byWork = (name, a, b, min) => add(`${name} (by instructions per request)`, `≥ ${min.toFixed(2)}×`, fmtX(c[b] / c[a]), c[b] / c[a] >= min);
    byWork('not-gated vs bare undici proxy', 'open', 'undici', 1.0);
    byWork('not-gated vs bare undici proxy sending the SPEC §6 headers too', 'open', 'undiciSpec', 1.0);
    byWork('gated with grant vs not-gated', 'gated', 'open', 0.9);
    byWork('403 challenge vs gated pass', 'challenge', 'gated', 1.0);
  }
  if (m) {
    add('not-gated vs bare undici proxy (req/s)', '≥ 1.00×', fmtX(m.open.rps / m.undici.rps) + perRound(m.open, m.undici), m.open.rps / m.undici.rps >= 1.0);
    add('not-gated vs nginx (req/s)', '≥ 0.40×', fmtX(m.open.rps / m.nginx.rps) + perRound(m.open, m.nginx), m.open.rps / m.nginx.rps >= 0.4);
    const dp99 = m.open.p99us - m.undici.p99us;
    add('not-gated p99 vs bare undici proxy p99, 50 connections (saturated)', '≤ +1 ms', `${dp99 >= 0 ? '+' : ''}${(dp99 / 1000).toFixed(2)} ms`, dp99 <= 1000);
    if (lat) {
      const d1 = lat.open.p99us - lat.undici.p99us;
      add('not-gated p99 vs bare undici proxy p99, 1 connection', '≤ +1 ms', `${d1 >= 0 ? '+' : ''}${(d1 / 1000).toFixed(2)} ms`, d1 <= 1000);
    }
    add('gated with grant vs not-gated (req/s)', '≥ 0.90×', fmtX(m.gated.rps / m.open.rps) + perRound(m.gated, m.open), m.gated.rps / m.open.rps >= 0.9);
    add('403 challenge vs gated pass (req/s)', '≥ 1.00× (no slower)', fmtX(m.challenge.rps / m.gated.rps) + perRound(m.challenge, m.gated), m.challenge.rps / m.gated.rps >= 1.0);
  }
  if (rules) {
    const r10 = rules.find((r) => r.rules === 10);
    const r10k = rules.find((r) => r.rules === 10_000);
    add('match cost, 10,000 rules vs 10 (hit/miss mix)', '≤ 2×', fmtX(r10k.matchMixNs / r10.matchMixNs), r10k.matchMixNs / r10.matchMixNs <= 2);
    // A running gateway reads on a worker thread; requests wait only while the main thread compiles.
    add('reload of 10,000 rules: requests held (worker-thread read + compile)', '< 250 ms', `${r10k.reloadHeldMs.toFixed(0)} ms (worst ${r10k.reloadHeldMaxMs.toFixed(0)} ms; ${r10k.reloadOffThreadMs.toFixed(0)} ms from file to new table)`, r10k.reloadHeldMaxMs < 250);
    add('load of 10,000 rules on one thread (start-up, `check`: loadRouteTable)', '< 250 ms', `${r10k.reloadMs.toFixed(0)} ms`, r10k.reloadMs < 250);
  }
  if (soak) {
    const enough = soak.requests >= CFG.soakRequests;
    const short = enough ? '' : ` — soak incomplete: ${fmtK(soak.requests)} of ${fmtK(CFG.soakRequests)} requests`;
    add(`RSS after the soak (${fmtK(soak.requests)} requests)`, '< 150 MB', `${soak.endMiB.toFixed(1)} MiB (${(soak.endMiB * 1.048576).toFixed(1)} MB)${short}`, soak.endMiB * 1.048576 < 150 && enough);
    const growth = soak.endMiB - soak.midMiB;
    add('RSS growth, middle → end of the soak', 'flat (≤ +5%)', `${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB (${((100 * growth) / soak.midMiB).toFixed(1)}%)${short}`, growth <= 0.05 * soak.midMiB && enough);
    if (soak.memStart.liveHeap !== undefined) {
      const dl = soak.memEnd.liveHeap - soak.memStart.liveHeap;
      add('live JS heap (after a full GC), start → end of the soak', 'flat (≤ +5%)', `${soak.memStart.liveHeap.toFixed(1)} → ${soak.memEnd.liveHeap.toFixed(1)} MiB`, dl <= 0.05 * soak.memStart.liveHeap);
    }
  }
  return out;
}

function markdown(res) {
  const L = [];
  const m = res.matrix;
  L.push(`# stepgate bench results${quick ? ' (QUICK MODE: smoke test, not representative)' : ''}`, '');
  L.push(`- when: ${res.when}; host: ${res.host.cpus}× ${res.host.model}, Node ${process.version}, ${res.host.wrk}, ${res.host.nginx}`);
  L.push(`- load: wrk -t1 -c${CFG.connections} --latency pinned to CPU ${CFG.loadCpu}; upstream + proxy pinned to CPU ${CFG.serverCpu}; 100-byte answers, keep-alive`);
  L.push(`- ${CFG.rounds} interleaved round(s) × ${CFG.seconds} s per target after a ${CFG.warmup} s warm-up; figures are the median of the undisturbed rounds (see Noise)`);
  L.push(`- stepgate grant: ${res.grant}; build: ${res.build}`, '');
  if (m) {
    L.push('## Throughput, latency, CPU', '');
    L.push('| target | req/s (median) | req/s range | p50 | p99 | proxy CPU µs/req | upstream CPU µs/req | vs direct | vs undici | vs nginx |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const d of TARGETS) {
      const s = m[d.key];
      const warn = [...new Set(s.problems)];
      if (s.cleanRounds === 0) warn.push('no undisturbed round');
      const flag = warn.length ? ` ⚠ ${warn.join('; ')}` : '';
      L.push(
        `| ${d.label}${flag} | ${fmtK(s.rps)} | ${fmtK(s.rpsMin)}–${fmtK(s.rpsMax)} | ${fmtMs(s.p50us)} | ${fmtMs(s.p99us)} | ${s.proxyCpuUs === null ? '–' : s.proxyCpuUs.toFixed(1)} | ${s.upstreamCpuUs.toFixed(1)} | ${fmtX(s.rps / m.direct.rps)} | ${fmtX(s.rps / m.undici.rps)} | ${fmtX(s.rps / m.nginx.rps)} |`,
      );
    }
    L.push('');
  }
  if (res.latency) {
    L.push(`## Latency without queueing (1 connection, ${CFG.latencySeconds} s per target)`, '');
    L.push('| target | req/s | p50 | p99 | p99 minus bare undici proxy |', '|---|---:|---:|---:|---:|');
    for (const d of TARGETS) {
      const s = res.latency[d.key];
      const dd = s.p99us - res.latency.undici.p99us;
      L.push(`| ${d.label}${s.problems.length ? ' ⚠ ' + s.problems.join('; ') : ''} | ${fmtK(s.rps)} | ${fmtMs(s.p50us)} | ${fmtMs(s.p99us)} | ${dd >= 0 ? '+' : ''}${(dd / 1000).toFixed(2)} ms |`);
    }
    L.push('');
  }
  if (res.rules) {
    L.push('## Rule scaling', '');
    L.push('| rules | match, hit | match, miss | match, mix (1 hit : 3 misses) | canonicalise + match, mix | first compile |');
    L.push('|---:|---:|---:|---:|---:|---:|');
    for (const r of res.rules) L.push(`| ${fmtK(r.rules)} | ${r.matchHitNs.toFixed(0)} ns | ${r.matchMissNs.toFixed(0)} ns | ${r.matchMixNs.toFixed(0)} ns | ${r.decideMixNs.toFixed(0)} ns | ${r.compileMs.toFixed(0)} ms |`);
    const r10k = res.rules.find((r) => r.rules === 10_000);
    L.push('', `10,000 rules (${(r10k.yamlBytes / 1024).toFixed(0)} KiB of YAML): load at start-up ${r10k.loadStartupMs.toFixed(0)} ms; loaded again on one thread (loadRouteTable, median) ${r10k.reloadMs.toFixed(0)} ms, worst ${r10k.reloadMaxMs.toFixed(0)} ms; reloaded as a running gateway does (read on a worker thread, compiled on the main thread; median) ${r10k.reloadOffThreadMs.toFixed(0)} ms from file to new table, holding the main thread ${r10k.reloadHeldMs.toFixed(0)} ms at most (worst ${r10k.reloadHeldMaxMs.toFixed(0)} ms).`, '');
  }
  if (m) {
    L.push(`Noise: wrk CPU = how busy the load generator was (100% = wrk-bound); server CPU busy = everything on the server CPU; foreign = CPU used on either bench CPU by processes other than ours. A run with more than ${CFG.maxForeignPct}% foreign CPU was repeated up to ${CFG.retries} times (${(quietWaitedMs / 1000).toFixed(0)} s were also spent waiting for a quiet machine); the figures above are the median of the undisturbed rounds (all rounds if none was). Columns: median and max over the rounds used.`, '');
    L.push('| target | undisturbed rounds | wrk CPU | server CPU busy | foreign (max) | repeated runs |', '|---|---:|---:|---:|---:|---:|');
    for (const d of TARGETS) {
      const s = m[d.key];
      L.push(`| ${d.label} | ${s.cleanRounds}/${CFG.rounds} | ${s.wrkPct.toFixed(0)}% | ${s.serverBusyPct.toFixed(0)}% | ${s.foreignMaxPct.toFixed(0)}% | ${s.repeats} |`);
    }
    L.push('');
  }
  if (res.instructions) {
    const ins = res.instructions;
    const count = ins.instructions;
    L.push('## Instructions per request (callgrind, user space)', '');
    L.push(`Each case in a fresh process under valgrind's callgrind (V8 single-threaded), ${fmtK(ins.warmup)} requests of warm-up, then ${fmtK(ins.batch)} counted, ${ins.connections} connections. Unlike req/s and CPU time, these counts hardly move with the host's load (repeat runs on a quiet machine agree within ~1%). The kernel's share, the same system calls for every Node proxy here, is not counted: compare the ratios.`, '');
    L.push('| case | instructions / request | vs bare undici proxy | vs stepgate not gated |', '|---|---:|---:|---:|');
    const labels = { undici: 'bare undici proxy', undiciSpec: 'bare undici proxy + the SPEC §6 request headers', open: 'stepgate, not gated', gated: 'stepgate, gated + valid grant', challenge: 'stepgate, 403 STEP_UP_REQUIRED' };
    for (const [key, label] of Object.entries(labels)) {
      L.push(`| ${label} | ${fmtK(count[key])} | ${fmtX(count[key] / count.undici)} | ${fmtX(count[key] / count.open)} |`);
    }
    L.push('');
  }
  if (res.soak) {
    const s = res.soak;
    L.push('## Memory soak', '');
    L.push(`${fmtK(s.requests)} requests (not-gated and gated alternating) in ${s.seconds.toFixed(0)} s (${fmtK(s.rps)} req/s), ${s.non2xx} non-2xx, ${s.socketErrors} socket errors. Gateway RSS:`, '');
    L.push('| start | middle | end | 1 s after | max | max in 2nd half |', '|---:|---:|---:|---:|---:|---:|');
    L.push(`| ${s.startMiB.toFixed(1)} MiB | ${s.midMiB.toFixed(1)} MiB | ${s.endMiB.toFixed(1)} MiB | ${s.afterMiB.toFixed(1)} MiB | ${s.maxMiB.toFixed(1)} MiB | ${s.secondHalfMaxMiB.toFixed(1)} MiB |`, '');
    L.push(`Middle and end are medians of ${s.windowSamples} one-second samples around the middle and at the end. process.memoryUsage() at start → end: heapUsed ${s.memStart.heapUsed.toFixed(1)} → ${s.memEnd.heapUsed.toFixed(1)} MiB, heapTotal ${s.memStart.heapTotal.toFixed(1)} → ${s.memEnd.heapTotal.toFixed(1)} MiB, external ${s.memStart.external.toFixed(1)} → ${s.memEnd.external.toFixed(1)} MiB${s.memStart.liveHeap !== undefined ? `; live heap after a full GC ${s.memStart.liveHeap.toFixed(1)} → ${s.memEnd.liveHeap.toFixed(1)} MiB (the GC is forced only at these two points)` : ''}.`, '');
  }
  L.push('## Targets', '');
  L.push('| check | target | measured | result |', '|---|---|---:|---|');
  for (const c of res.checks) L.push(`| ${c.name} | ${c.target} | ${c.measured} | ${c.pass ? 'PASS' : '**MISS**'} |`);
  L.push('');
  if (res.profile) {
    const { summaryMarkdown } = res.profileFmt;
    L.push('## CPU profile (stepgate, not-gated + gated mix, node --cpu-prof)', '');
    L.push(`${fmtK(res.profile.rps)} req/s while profiling.`, '');
    L.push(summaryMarkdown(res.profile), '');
  }
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------

const SECRET = randomBytes(32).toString('base64');
let TMP = '';

async function main() {
  if (cpus().length < 2) log('warning: fewer than 2 CPUs; load generator and proxy will share one');
  ensureTools();
  // Keep this runner off the server CPU (it only waits on wrk and reads /proc).
  spawnSync('taskset', ['-pc', String(CFG.loadCpu), String(process.pid)], { stdio: 'ignore' });
  const started = Date.now();
  const res = {
    when: new Date().toISOString(),
    quick,
    config: CFG,
    host: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? '?',
      wrk: (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout || '').split('\n')[0].split(' [')[0].trim(),
      nginx: (spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr || '').trim().replace('nginx version: ', ''),
    },
  };
  res.build = build();
  TMP = mkdtempSync(join(tmpdir(), 'stepgate-bench-'));
  let targets = {};
  try {
    if (CFG.rules) {
      await waitQuiet();
      res.rules = runRules();
    }
    if (CFG.instructions) {
      await waitQuiet();
      res.instructions = runInstructions();
    }
    log('starting upstream, undici proxy, http-proxy-3 proxy, nginx, stepgate (pinned to CPU ' + CFG.serverCpu + ')');
    targets = await startTargets(TMP);
    res.grant = await setupSessions(targets.stepgate.info.url, { log });
    log(`grant for sid=bench: ${res.grant}`);
    await checkTargets(targets);
    res.matrix = await runMatrix(targets);
    res.latency = await runLatency(targets);
    if (CFG.soak) {
      // Baselines are idle from here on; stop them so the soak has the server CPU to itself.
      for (const k of ['undici', 'httpproxy3', 'nginx']) await targets[k].stop();
      const est = (res.matrix.open.rps + res.matrix.gated.rps) / 2;
      res.soak = await runSoak(targets, est);
    }
    if (CFG.profile) {
      res.profile = await runProfile(targets);
      res.profileFmt = await import('./cpuprofile-summary.mjs');
    }
  } finally {
    for (const t of Object.values(targets)) await t.stop?.();
    killAllChildren();
    rmSync(TMP, { recursive: true, force: true });
  }
  res.checks = checks(res.matrix, res.rules, res.soak, res.latency, res.instructions);
  res.quietWaitedSeconds = quietWaitedMs / 1000;
  res.elapsedSeconds = (Date.now() - started) / 1000;
  const md = markdown(res) + `\n_Total bench time: ${res.elapsedSeconds.toFixed(0)} s._\n`;
  console.log('\n' + md);
  const outDir = join(BENCH, 'results');
  mkdirSync(outDir, { recursive: true });
  const base = quick ? 'quick' : 'latest';
  writeFileSync(join(outDir, `${base}.md`), md);
  const { profileFmt, ...json } = res;
  writeFileSync(join(outDir, `${base}.json`), JSON.stringify(json, null, 2) + '\n');
  log(`wrote bench/results/${base}.md and ${base}.json`);
}

// Never leave a child behind: normal exit, Ctrl-C, kill, or a crash.
process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllChildren();
    if (TMP) rmSync(TMP, { recursive: true, force: true });
    process.exit(130);
  });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  killAllChildren();
  process.exitCode = 1;
});
