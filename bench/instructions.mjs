// Instructions per request: the noise-free view of what a request costs in user space.
//
//   node bench/instructions.mjs [--quick] [--cases open,gated] [--by-function N]
//   → prints one JSON line (bench/run.mjs runs all cases; --cases picks some, for an A/B of one
//   change). --by-function N also prints, per case, the N functions with the most self
//   instructions per request (bench/lib/callgrind-functions.mjs), JIT code and builtins named
//   through V8's --perf-basic-prof map; writing that map adds a little to the totals, so compare
//   such runs with each other only.
//
// req/s and CPU µs per request on a shared VM move ±15% between runs and even between the rounds
// of one run, which is wider than the margins the targets ask for. The number of instructions a
// process executes does not depend on what else the host runs: each case runs in a fresh process
// under valgrind's callgrind (which counts every instruction of every thread: JIT code, V8's GC
// and compiler, libuv, OpenSSL, SQLite), gets the same warm-up, and then only one batch of
// requests is counted (callgrind_control --zero before, --dump after). V8 runs single-threaded
// here (see underCallgrind); with the same schedule, repeated runs then agree within ~1% on an
// otherwise idle machine. (V8's GC also reacts to elapsed time: a process slowed down by other
// load counts a few % more, so bench/run.mjs waits for a quiet machine first.)
//
// Two things to know when reading the figures:
// - V8 keeps optimising long after the warm-up (the bare proxy's count still falls ~20% over the
//   next 6,000 requests), so the counts are for this schedule, not a steady state: compare the
//   ratios between cases, which share the schedule.
// - The kernel is left out: the system calls, which are the same for every Node proxy here
//   (strace counts one read and one write per side per request, for stepgate and the bare proxies
//   alike). So the ratio of instructions is the ratio of the work each proxy does of its own.
//
// Cases: the bare undici proxy (the baseline of the targets), the same proxy sending the four
// headers SPEC §6 requires on every forwarded request (what a bare proxy would have to add to do
// stepgate's not-gated job), and stepgate not gated, gated with a grant, and answering 403, each
// in front of the bench upstream over 8 keep-alive connections.
// Two cases run at a time, one per CPU (instruction counts do not mind).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { setupSessions } from './lib/grant.mjs';
import { selfInstructionsByFunction } from './lib/callgrind-functions.mjs';
import { killAllChildren, startPinned } from './lib/proc.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const WARMUP = quick ? 1_000 : 5_000;
const BATCH = quick ? 500 : 2_000;
const CONNECTIONS = 8;
const byFunctionArg = process.argv.indexOf('--by-function');
const BY_FUNCTION = byFunctionArg >= 0 ? Number(process.argv[byFunctionArg + 1]) || 40 : 0;
const CPUS = [Number(process.env.BENCH_SERVER_CPU ?? 1), Number(process.env.BENCH_LOAD_CPU ?? 0)];

const SCRIPTS = { undici: 'targets/undici-proxy.mjs', stepgate: 'targets/stepgate.mjs' };
const CASES = [
  { key: 'undici', proc: 'undici', path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'undiciSpec', proc: 'undici', env: { SPEC_HEADERS: '1' }, path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'open', proc: 'stepgate', path: '/static/x', cookie: 'sid=bench', expect: 200 },
  { key: 'gated', proc: 'stepgate', path: '/gated/x', cookie: 'sid=bench', expect: 200 },
  { key: 'challenge', proc: 'stepgate', path: '/gated/x', cookie: 'sid=bench2', expect: 403 },
];

/** `n` requests over CONNECTIONS keep-alive connections; throws on any unexpected status. */
async function requests(pool, { path, cookie, expect }, n) {
  let left = n;
  const worker = async () => {
    while (left-- > 0) {
      const res = await pool.request({ method: 'GET', path, headers: { cookie } });
      await res.body.dump();
      if (res.statusCode !== expect) throw new Error(`${path} (${cookie}) answered ${res.statusCode}, expected ${expect}`);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
}

/** Instructions callgrind counted since the last --zero, and the dump it wrote them to. */
function dumpedInstructions(pid, outDir) {
  const before = new Set(readdirSync(outDir));
  execFileSync('callgrind_control', ['--dump', String(pid)], { stdio: 'ignore' });
  const file = readdirSync(outDir).find((f) => f.startsWith('callgrind.') && !before.has(f));
  if (!file) throw new Error('callgrind wrote no dump');
  const totals = /^(?:totals|summary): (\d+)/m.exec(readFileSync(join(outDir, file), 'utf8'));
  if (!totals) throw new Error(`no totals in ${file}`);
  return { count: Number(totals[1]), file: join(outDir, file) };
}

/** Instructions per request of case `c` in a fresh process under callgrind, pinned to `cpu`. */
async function measure(c, { tmp, env, cpu }) {
  const dir = mkdtempSync(join(tmp, `${c.key}-`));
  mkdirSync(join(dir, 'data'));
  const proc = await startPinned(c.key, underCallgrind(dir, join(BENCH, SCRIPTS[c.proc])), { cpu, env: { ...env, ...c.env, DATA_DIR: join(dir, 'data') }, readyTimeoutMs: 300_000 });
  const pool = new Pool(proc.info.url, { connections: CONNECTIONS });
  try {
    if (c.proc === 'stepgate') await setupSessions(proc.info.url);
    await requests(pool, c, WARMUP);
    execFileSync('callgrind_control', ['--zero', String(proc.pid)], { stdio: 'ignore' });
    await requests(pool, c, BATCH);
    const { count, file } = dumpedInstructions(proc.pid, dir);
    if (BY_FUNCTION) printTopFunctions(c.key, file, proc.pid);
    return count / BATCH;
  } finally {
    await pool.close();
    await proc.stop();
  }
}

/** The case's BY_FUNCTION heaviest functions by self instructions per request, on stderr. */
function printTopFunctions(key, dumpFile, valgrindPid) {
  // Under valgrind, node runs inside valgrind's own process (taskset and valgrind exec in
  // place), so V8 names the map after the PID we started.
  const perfMap = `/tmp/perf-${valgrindPid}.map`;
  const rows = [...selfInstructionsByFunction(dumpFile, perfMap)].sort((a, b) => b[1] - a[1]);
  const lines = rows.slice(0, BY_FUNCTION).map(([name, n]) => `${String(Math.round(n / BATCH)).padStart(8)}  ${name.slice(0, 140)}`);
  console.error(`\n${key}: self instructions per request, top ${BY_FUNCTION}\n${lines.join('\n')}`);
  rmSync(perfMap, { force: true });
}

function underCallgrind(outDir, script) {
  return [
    'valgrind',
    '--tool=callgrind',
    // V8 writes and rewrites machine code at run time.
    '--smc-check=all-non-file',
    `--callgrind-out-file=${join(outDir, 'callgrind.%p')}`,
    '--dump-line=no',
    ...(BY_FUNCTION ? ['--dump-instr=yes'] : []),
    process.execPath,
    // No compiler or GC threads: optimised code is then ready after the same request in every
    // run, not whenever a background thread got its turn (±5% between runs with threads, ±0.5%
    // without). The work is the same; only its timing becomes repeatable.
    '--single-threaded',
    // Under callgrind a process runs ~50x slower, so it looks idle to V8's memory reducer, which
    // then starts full GCs on a timer (8 s after the last one): whether one fell inside the
    // counted batch decided the count (the same build measured 233k and 349k per request).
    '--no-memory-reducer',
    ...(BY_FUNCTION ? ['--perf-basic-prof'] : []),
    script,
  ];
}

/** The cases named by `--cases a,b` (all of them without it). */
function selectedCases() {
  const i = process.argv.indexOf('--cases');
  if (i < 0) return CASES;
  const keys = (process.argv[i + 1] ?? '').split(',');
  const unknown = keys.filter((k) => !CASES.some((c) => c.key === k));
  if (unknown.length > 0) throw new Error(`unknown case ${unknown.join(', ')}; cases: ${CASES.map((c) => c.key).join(', ')}`);
  return CASES.filter((c) => keys.includes(c.key));
}

async function main() {
  const cases = selectedCases();
  if (spawnSync('sh', ['-c', 'command -v valgrind && command -v callgrind_control'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('valgrind is not installed (Debian: apt-get install valgrind)');
  }
  const tmp = mkdtempSync(join(tmpdir(), 'stepgate-instr-'));
  const started = Date.now();
  try {
    // One upstream per CPU, so that each case has its upstream beside it.
    const upstreams = await Promise.all(CPUS.map((cpu) => startPinned('upstream', [process.execPath, join(BENCH, 'targets/upstream.mjs')], { cpu })));
    const out = {};
    const queue = [...cases];
    await Promise.all(
      CPUS.map(async (cpu, i) => {
        const env = { UPSTREAM: upstreams[i].info.url, STEPGATE_SECRET: randomBytes(32).toString('base64'), LOG_LEVEL: 'warn' };
        for (let c = queue.shift(); c; c = queue.shift()) {
          out[c.key] = Math.round(await measure(c, { tmp, env, cpu }));
        }
      }),
    );
    for (const u of upstreams) await u.stop();
    console.log(JSON.stringify({ warmup: WARMUP, batch: BATCH, connections: CONNECTIONS, seconds: (Date.now() - started) / 1000, instructions: out }));
  } finally {
    killAllChildren();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  killAllChildren();
  process.exit(1);
});
