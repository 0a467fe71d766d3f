// Rule scaling: how matching and (re)loading cost grow with the size of routes.yaml.
//
//   node bench/rules.mjs [--quick] [--rounds R] → runs each size in its own child process (pinned
//                                             to CPU 1 when taskset exists), R rounds (default 2,
//                                             quick 1) in interleaved order, and prints one JSON line:
//                                             per size the minimum over rounds of each match timing
//                                             (noise only ever adds time) and the median reload time
//   node bench/rules.mjs --size N [--quick] → one size, in this process (what the children run)
//
// For each size (10, 1,000, 10,000 generated rules) it compiles the table with
// buildRouteTable(parseRoutesConfig(yaml)) from dist/, then times `rules.match(methods, paths)`
// with process.hrtime.bigint() over a fixed mix of hit and miss requests (paths canonicalised
// beforehand, as the pipeline does), and separately canonicalise + match (the whole per-request
// decision). For 10,000 rules it also times loading the file, loadRouteTable(file) (read + parse +
// validate + compile, all on this thread: start-up and `stepgate check`; the first run is the
// start-up), and the reload a running gateway does, loadRouteTableOffThread(file) (read + parse +
// validate on a worker thread, compile here): its total time and how long it holds this thread.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const SIZES = [10, 1_000, 10_000];
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const sizeArg = argv.indexOf('--size');

/** Deterministic PRNG so every run (and every size) picks the same kind of requests. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Rule i in one of four shapes, with a few factor-restricted, once and anonymous rules mixed in. */
function ruleOf(i) {
  const shape = i % 4;
  const pattern = [
    `POST /api/v${i % 3}/res${i}/:id/archive`,
    `PATCH /orgs/:org/settings/s${i}`,
    `DELETE /portal/p${i}/*`,
    `* /admin/a${i}/:x/:y`,
  ][shape];
  let extra = '';
  if (i % 50 === 7) extra += '\n    factors: [passkey, totp]';
  if (i % 97 === 3) extra += '\n    once: true';
  if (i % 89 === 5) extra += '\n    anonymous: allow';
  return `  - name: r${i}\n    match: "${pattern}"\n    max_age: ${1 + (i % 30)}m${extra}`;
}

/** A request that rule i matches: [method, target]. */
function hitOf(i) {
  switch (i % 4) {
    case 0:
      return ['POST', `/api/v${i % 3}/res${i}/abc123/archive`];
    case 1:
      return ['PATCH', `/orgs/acme/settings/s${i}`];
    case 2:
      return ['DELETE', `/portal/p${i}/devices/d-42`];
    default:
      return ['GET', `/admin/a${i}/one/two`];
  }
}

/** Requests no rule matches: typical app traffic, plus near misses that walk deep into the trie. */
const MISSES = [
  ['GET', '/'],
  ['GET', '/static/app.3f9a1c.js'],
  ['GET', '/assets/img/logo.png'],
  ['GET', '/api/v1/users/42/profile'],
  ['POST', '/api/v1/res5/abc/unarchive'],
  ['GET', '/orgs/acme/settings/s1'], // right path, wrong method
  ['PATCH', '/orgs/acme/settings/nope'],
  ['GET', '/portal'],
  ['GET', '/a/b/c/d/e/f/g/h'],
  ['OPTIONS', '/admin/a3/one/two'], // `*` excludes OPTIONS
];

export function routesYaml(n) {
  const lines = ['defaults:', '  max_age: 10m', 'rules:'];
  for (let i = 0; i < n; i++) lines.push(ruleOf(i));
  return lines.join('\n') + '\n';
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** ns per call of fn over `items`, median of `reps` timed passes of `iters` calls each. */
function timePerOp(items, fn, iters, reps) {
  let sink = 0;
  for (let i = 0; i < iters; i++) sink += fn(items[i % items.length]); // warm-up
  const samples = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) sink += fn(items[i % items.length]);
    samples.push(Number(process.hrtime.bigint() - t0) / iters);
  }
  if (sink === -1) console.log(sink); // keep the results alive
  return median(samples);
}

async function runSize(n) {
  const { parseRoutesConfig } = await import('../dist/config/load.js');
  const { buildRouteTable, loadRouteTable, loadRouteTableOffThread } = await import('../dist/config/route-table.js');
  const { canonicalise } = await import('../dist/rules/canonical.js');
  const yaml = routesYaml(n);

  const t0 = process.hrtime.bigint();
  const table = buildRouteTable(parseRoutesConfig(yaml, 'routes.yaml'));
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (table.rules.ruleCount !== n) throw new Error(`compiled ${table.rules.ruleCount} rules, expected ${n}`);

  // 64 hits spread over the whole table, the same count for every size.
  const rand = rng(42);
  const hitReqs = Array.from({ length: 64 }, () => hitOf(Math.floor(rand() * n)));
  const prep = ([method, target]) => {
    const c = canonicalise(target, table.cfg.encodedSlashes);
    if (!c.ok) throw new Error(`cannot canonicalise ${target}`);
    return { methods: [method], paths: c.matchPaths, method, target };
  };
  const hits = hitReqs.map(prep);
  const misses = MISSES.map(prep);
  for (const h of hits) if (!table.rules.match(h.methods, h.paths)) throw new Error(`expected a match: ${h.method} ${h.target}`);
  for (const m of misses) if (table.rules.match(m.methods, m.paths)) throw new Error(`expected no match: ${m.method} ${m.target}`);
  // The mix: one hit for every three misses (most traffic is not gated).
  const mix = [];
  for (let i = 0; i < hits.length; i++) mix.push(hits[i], misses[(3 * i) % misses.length], misses[(3 * i + 1) % misses.length], misses[(3 * i + 2) % misses.length]);

  const iters = quick ? 100_000 : 200_000;
  const reps = quick ? 3 : 5;
  const match = (r) => (table.rules.match(r.methods, r.paths) ? 1 : 0);
  const decide = (r) => {
    const c = canonicalise(r.target, table.cfg.encodedSlashes);
    return c.ok && table.rules.match([r.method], c.matchPaths) ? 1 : 0;
  };
  const result = {
    rules: n,
    compileMs,
    matchHitNs: timePerOp(hits, match, iters, reps),
    matchMissNs: timePerOp(misses, match, iters, reps),
    matchMixNs: timePerOp(mix, match, iters, reps),
    decideMixNs: timePerOp(mix, decide, iters, reps),
  };

  if (n === 10_000) {
    // The reload path exactly as src/reload.ts runs it: loadRouteTable(file).
    const dir = mkdtempSync(join(tmpdir(), 'stepgate-bench-rules-'));
    try {
      const file = join(dir, 'routes.yaml');
      writeFileSync(file, yaml);
      const runs = [];
      for (let i = 0; i < (quick ? 3 : 4); i++) {
        const t = process.hrtime.bigint();
        loadRouteTable(file);
        runs.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      result.loadStartupMs = runs[0];
      result.reloadMs = median(runs.slice(1));
      result.reloadMaxMs = Math.max(...runs.slice(1));
      result.yamlBytes = Buffer.byteLength(yaml);
      // What a running gateway does (src/reload.ts): read + validate on a worker thread, compile
      // here. `held` is the longest the event loop could not run anything (a request waiting on
      // the gateway waits at most that long), from a 1 ms-resolution event-loop delay monitor.
      const offThread = [];
      for (let i = 0; i < 3; i++) {
        const loop = monitorEventLoopDelay({ resolution: 1 });
        loop.enable();
        await new Promise((r) => setTimeout(r, 20));
        const t = process.hrtime.bigint();
        await loadRouteTableOffThread(file);
        const totalMs = Number(process.hrtime.bigint() - t) / 1e6;
        await new Promise((r) => setTimeout(r, 20));
        loop.disable();
        offThread.push({ totalMs, heldMs: loop.max / 1e6 });
      }
      result.reloadOffThreadMs = median(offThread.map((r) => r.totalMs));
      result.reloadHeldMs = median(offThread.map((r) => r.heldMs));
      result.reloadHeldMaxMs = Math.max(...offThread.map((r) => r.heldMs));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return result;
}

// Imported (the config tests reuse routesYaml): define, run nothing.
const isMain = process.argv[1] === fileURLToPath(import.meta.url);

if (isMain && sizeArg >= 0) {
  const n = Number(argv[sizeArg + 1]);
  console.log(JSON.stringify(await runSize(n)));
} else if (isMain) {
  // One fresh process per size, so no size inherits another's JIT state or heap.
  const self = fileURLToPath(import.meta.url);
  const hasTaskset = spawnSync('taskset', ['--version']).status === 0;
  const roundsArg = argv.indexOf('--rounds');
  const rounds = roundsArg >= 0 ? Number(argv[roundsArg + 1]) : quick ? 1 : 2;
  const runs = new Map(SIZES.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    for (const n of round % 2 ? [...SIZES].reverse() : SIZES) {
      const args = [process.execPath, self, '--size', String(n), ...(quick ? ['--quick'] : [])];
      const cmd = hasTaskset ? ['taskset', ['-c', process.env.BENCH_RULES_CPU ?? '1', ...args]] : [args[0], args.slice(1)];
      const r = spawnSync(cmd[0], cmd[1], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`rules bench for ${n} rules failed:\n${r.stderr}`);
      runs.get(n).push(JSON.parse(r.stdout.trim().split('\n').pop()));
    }
  }
  const results = SIZES.map((n) => {
    const rs = runs.get(n);
    const min = (k) => Math.min(...rs.map((r) => r[k]));
    const out = { rules: n, rounds: rs.length, compileMs: median(rs.map((r) => r.compileMs)) };
    for (const k of ['matchHitNs', 'matchMissNs', 'matchMixNs', 'decideMixNs']) out[k] = min(k);
    if (n === 10_000) {
      out.loadStartupMs = median(rs.map((r) => r.loadStartupMs));
      out.reloadMs = median(rs.map((r) => r.reloadMs));
      out.reloadMaxMs = Math.max(...rs.map((r) => r.reloadMaxMs));
      out.reloadOffThreadMs = median(rs.map((r) => r.reloadOffThreadMs));
      out.reloadHeldMs = median(rs.map((r) => r.reloadHeldMs));
      out.reloadHeldMaxMs = Math.max(...rs.map((r) => r.reloadHeldMaxMs));
      out.yamlBytes = rs[0].yamlBytes;
    }
    return out;
  });
  console.log(JSON.stringify(results));
}
