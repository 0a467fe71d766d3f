// Child processes for the bench: start a target pinned to a CPU with `taskset`, wait for its
// `READY {json}` line, read its CPU time and RSS from /proc, and stop it by PID. Every child started
// here is remembered so the runner can stop all of them (and only them) on any exit path.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Every child we started and have not seen exit: pid → ChildProcess. */
const children = new Map();

/** Remembers a child started elsewhere (wrk) so killAllChildren covers it too. */
export function track(child) {
  children.set(child.pid, child);
  child.once('exit', () => children.delete(child.pid));
  return child;
}

/**
 * Stops every child still running, and their own children first (nginx workers would otherwise
 * outlive a killed master). SIGKILL, synchronous: safe in an 'exit' handler.
 */
export function killAllChildren() {
  for (const [pid, child] of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    for (const sub of childPidsOf(pid)) {
      try {
        process.kill(sub, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
}

/**
 * Spawns `argv` pinned to `cpu` (taskset execs, so the PID is the program's own) and resolves once
 * it printed `READY {...}` on stdout. stdin stays a pipe: the Node targets exit when it closes.
 */
export function startPinned(name, argv, { cpu, env = {}, readyTimeoutMs = 20_000 } = {}) {
  const child = spawn('taskset', ['-c', String(cpu), ...argv], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.set(child.pid, child);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => children.delete(child.pid));
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      reject(new Error(`${name}: not ready after ${readyTimeoutMs} ms\n${stderr}`));
      stopChild(child);
    }, readyTimeoutMs);
    const onData = (d) => {
      buf += d.toString('utf8');
      const m = /^READY (.*)$/m.exec(buf);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      // Later lines (`MEM {...}` answers to SIGUSR2) go to whoever waits for them.
      let rest = buf.slice(m.index + m[0].length);
      child.stdout.on('data', (d) => {
        rest += d.toString('utf8');
        let nl;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (!line) continue;
          const waiter = lineWaiters.shift();
          if (waiter) waiter(line);
        }
      });
      const lineWaiters = [];
      const nextLine = (timeoutMs = 5_000) =>
        new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error(`${name}: no answer`)), timeoutMs);
          lineWaiters.push((line) => {
            clearTimeout(t);
            res(line);
          });
        });
      resolve({ name, pid: child.pid, child, exited, info: JSON.parse(m[1]), nextLine, stderr: () => stderr, stop: () => stopChild(child, exited) });
    };
    child.stdout.on('data', onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name}: exited (code ${code}, signal ${signal}) before READY\n${stderr}`));
    });
  });
}

/** Spawns a program that does not print READY (nginx); the caller decides when it is ready. */
export function spawnPinned(name, argv, { cpu, env = {} } = {}) {
  const child = spawn('taskset', ['-c', String(cpu), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.set(child.pid, child);
  let output = '';
  const keep = (d) => {
    output = (output + d.toString('utf8')).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => children.delete(child.pid));
  return { name, pid: child.pid, child, exited, output: () => output, stop: () => stopChild(child, exited) };
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves when the process is gone. */
export async function stopChild(child, exited = new Promise((r) => child.once('exit', r)), graceMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    child.kill('SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** utime + stime of a process (all its threads), in clock ticks. */
export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5)
}

/** CPU ticks summed over several PIDs (nginx master + workers). */
export function cpuTicksOf(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += cpuTicks(pid);
    } catch {
      /* exited */
    }
  }
  return sum;
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Direct children of `pid` (nginx workers of the master). */
export function childPidsOf(pid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      /* raced with an exit */
    }
  }
  return out;
}

/**
 * Busy ticks of each CPU (everything but idle and iowait, stolen time included), from /proc/stat:
 * index = CPU number. Interrupt and softirq ticks are included because the kernel also charges
 * them to the process they interrupted (on loopback: mostly our own traffic), so that the busy
 * time of a CPU minus the CPU time of our processes is what other processes used.
 */
export function cpuBusyTicks() {
  const out = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const [user, nice, system, , , irq, softirq, steal] = m[2].trim().split(/\s+/).map(Number);
    out[Number(m[1])] = user + nice + system + irq + softirq + (steal || 0);
  }
  return out;
}

/** CPU ticks of this process itself and of its reaped children (wrk runs are reaped when they end). */
export function selfTicks() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}
