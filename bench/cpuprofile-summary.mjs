// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, with dist/ frames
// mapped back to src/*.ts through the build's source maps, and self time per package.
//
//   node bench/cpuprofile-summary.mjs FILE.cpuprofile [--top 25] [--skip-ms 0] [--json]
//
// Self time of a function = the sampling intervals (timeDeltas) whose top-of-stack frame was it.
// Inclusive ("total") time, listed for stepgate's own functions only = the intervals in which the
// function was anywhere on the stack: what the request path spends in and under it.
import { readFileSync, existsSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { relative, resolve, dirname } from 'node:path';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const maps = new Map();

function sourceMapFor(file) {
  if (!maps.has(file)) {
    let map = null;
    try {
      if (existsSync(file + '.map')) map = new SourceMap(JSON.parse(readFileSync(file + '.map', 'utf8')));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  return maps.get(file);
}

/** Where a frame lives, for people: src/x.ts:line for our code, package or node:module otherwise. */
function locate({ url, lineNumber, columnNumber }) {
  if (!url) return { where: '', pkg: '(vm)' };
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith('node:') || !path.startsWith('/')) return { where: path, pkg: 'node core' };
  const rel = relative(ROOT, path);
  const nm = rel.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = rel.slice(nm + 'node_modules/'.length).split('/');
    const pkg = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    return { where: `${rel.slice(nm + 'node_modules/'.length)}:${lineNumber + 1}`, pkg };
  }
  if (rel.startsWith('dist/')) {
    const entry = sourceMapFor(path)?.findEntry(lineNumber, columnNumber);
    if (entry && entry.originalSource) {
      const src = relative(ROOT, entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(dirname(path), entry.originalSource));
      return { where: `${src}:${entry.originalLine + 1}`, pkg: 'stepgate' };
    }
    return { where: `${rel}:${lineNumber + 1}`, pkg: 'stepgate' };
  }
  return { where: `${rel}:${lineNumber + 1}`, pkg: rel.startsWith('bench/') ? 'bench' : 'other' };
}

/** top: how many functions to list; skipMs: ignore the first samples (start-up, warm-up). */
export function summarise(profile, { top = 25, skipMs = 0 } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const located = new Map();
  const locOf = (id) => {
    if (!located.has(id)) located.set(id, locate(byId.get(id).callFrame));
    return located.get(id);
  };
  const selfUs = new Map();
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < skipMs * 1000) continue;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  let total = 0;
  let idle = 0;
  const fns = new Map();
  const pkgs = new Map();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    const cf = node.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const { where, pkg } = locOf(id);
    const name = cf.functionName || '(anonymous)';
    const key = `${name}\0${where}`;
    const f = fns.get(key) ?? { name, where, pkg, us: 0 };
    f.us += us;
    fns.set(key, f);
    const p = name.startsWith('(') ? name : pkg;
    pkgs.set(p, (pkgs.get(p) ?? 0) + us);
  }
  // Inclusive time of stepgate functions: each sample counts once per function on its stack.
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      const { where, pkg } = locOf(cur);
      if (pkg !== 'stepgate') continue;
      const key = `${cf.functionName || '(anonymous)'}\0${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const f = incl.get(key) ?? { name: cf.functionName || '(anonymous)', where, us: 0 };
      f.us += us;
      incl.set(key, f);
    }
  }
  const busy = total - idle;
  const pct = (us) => Math.round((1000 * us) / busy) / 10;
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    functions: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top).map((f) => ({ ...f, ms: f.us / 1000, pct: pct(f.us) })),
    stepgateInclusive: [...incl.values()].sort((a, b) => b.us - a.us).slice(0, top).map((f) => ({ ...f, ms: f.us / 1000, pct: pct(f.us) })),
    packages: [...pkgs.entries()].sort((a, b) => b[1] - a[1]).map(([pkg, us]) => ({ pkg, ms: us / 1000, pct: pct(us) })),
  };
}

export function summaryMarkdown(s) {
  const lines = [];
  lines.push(`Busy (non-idle) CPU in the profile: ${s.busyMs.toFixed(0)} ms; percentages are of that.`, '');
  lines.push('| self % | self ms | function | where |', '|---:|---:|---|---|');
  for (const f of s.functions) lines.push(`| ${f.pct.toFixed(1)} | ${f.ms.toFixed(0)} | \`${f.name}\` | ${f.where} |`);
  lines.push('', '| self % | package |', '|---:|---|');
  for (const p of s.packages.slice(0, 12)) lines.push(`| ${p.pct.toFixed(1)} | ${p.pkg} |`);
  lines.push('', 'stepgate functions by inclusive time (the function and everything it called):', '');
  lines.push('| total % | total ms | function | where |', '|---:|---:|---|---|');
  for (const f of s.stepgateInclusive.slice(0, 15)) lines.push(`| ${f.pct.toFixed(1)} | ${f.ms.toFixed(0)} | \`${f.name}\` | ${f.where} |`);
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const file = args.find((a, i) => !a.startsWith('--') && !['--top', '--skip-ms'].includes(args[i - 1]));
  if (!file) {
    console.error('usage: node bench/cpuprofile-summary.mjs FILE.cpuprofile [--top N] [--json]');
    process.exit(2);
  }
  const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')), { top: opt('--top', 25), skipMs: opt('--skip-ms', 0) });
  console.log(args.includes('--json') ? JSON.stringify(s, null, 2) : summaryMarkdown(s));
}
