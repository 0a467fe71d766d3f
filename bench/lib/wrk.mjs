// Running Debian's wrk pinned to the load-generator CPU and parsing its `--latency` report:
// requests, req/s, p50/p99 (from wrk's latency distribution), non-2xx answers and socket errors.
import { spawn } from 'node:child_process';
import { track } from './proc.mjs';

const UNIT_US = { us: 1, ms: 1_000, s: 1_000_000, m: 60_000_000 };

function toMicros(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read latency "${text}"`);
  return Number(m[1]) * UNIT_US[m[2]];
}

export function parseWrk(out) {
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out);
    return m ? toMicros(m[1]) : NaN;
  };
  const total = /^\s+(\d+) requests in ([\d.]+)(us|ms|s|m)/m.exec(out);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  if (!total || !rps) throw new Error(`wrk: unexpected output:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(total[1]),
    seconds: toMicros(total[2] + total[3]) / 1e6,
    rps: Number(rps[1]),
    p50us: pct(50),
    p99us: pct(99),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/**
 * Runs `wrk -t1 -c{connections} -d{seconds}s --latency` against url, pinned to `cpu`.
 * `headers` are sent with every request; `script` is an optional Lua file (-s).
 */
export function runWrk({ url, seconds, connections = 50, threads = 1, headers = {}, script, cpu = 0, timeoutSeconds }) {
  const args = ['-c', String(cpu), 'wrk', `-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', `${timeoutSeconds ?? 5}s`];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  if (script) args.push('-s', script);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = track(spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // wrk stops itself after -d; this is only a guard against a hung run.
    const guard = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(guard);
      if (code !== 0) return reject(new Error(`wrk exited ${code}:\n${out}`));
      try {
        resolve({ ...parseWrk(out), raw: out });
      } catch (err) {
        reject(err);
      }
    });
  });
}
