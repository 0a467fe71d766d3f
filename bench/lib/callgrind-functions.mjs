// Self instructions per function from a callgrind dump of a Node process, JIT code included.
//
// Debian's node binary has no symbols and V8's JIT code never had any, so callgrind alone puts
// nearly everything under one frame. With `--dump-instr=yes` the dump lists each instruction
// address; V8's `--perf-basic-prof` map (/tmp/perf-PID.map: start, size, name of every builtin,
// bytecode handler and compiled JS function) names the addresses. Whatever falls outside the map
// keeps callgrind's own name (C++ in node, libc, OpenSSL...).
import { readFileSync } from 'node:fs';

/** The perf map as sorted ranges; for an address reused by later code, the later entry wins. */
function readPerfMap(file) {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line, order) => {
      const [start, size, ...name] = line.split(' ');
      const from = parseInt(start, 16);
      return { from, to: from + parseInt(size, 16), name: name.join(' '), order };
    });
  return entries.sort((a, b) => a.from - b.from || a.order - b.order);
}

function nameAt(ranges, addr) {
  let lo = 0;
  let hi = ranges.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].from <= addr) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best >= 0 && addr < ranges[best].to ? ranges[best].name : null;
}

/**
 * Map of function → self instructions in `callgrindFile` (written with --dump-instr=yes).
 * Reads callgrind's format: `ob=`/`fn=` name the current object and function (with `(id) name`
 * compression), cost lines start with an absolute (`0x…`), relative (`+n`/`-n`) or repeated (`*`)
 * address, and the cost line after `calls=` is a call's inclusive cost, which is skipped.
 */
export function selfInstructionsByFunction(callgrindFile, perfMapFile) {
  const ranges = readPerfMap(perfMapFile);
  const ids = { ob: new Map(), fn: new Map() };
  const named = (kind, v) => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(v);
    if (!m) return v;
    if (m[2] !== undefined) ids[kind].set(m[1], m[2]);
    return ids[kind].get(m[1]) ?? v;
  };
  const totals = new Map();
  let obj = '';
  let fn = '';
  let addr = 0;
  let callCost = false;
  for (const line of readFileSync(callgrindFile, 'utf8').split('\n')) {
    if (line.startsWith('ob=')) obj = named('ob', line.slice(3));
    else if (line.startsWith('fn=')) fn = named('fn', line.slice(3));
    else if (line.startsWith('cob=')) named('ob', line.slice(4));
    else if (line.startsWith('cfn=')) named('fn', line.slice(4));
    else if (line.startsWith('calls=')) callCost = true;
    else {
      const m = /^(0x[0-9a-f]+|[+-]\d+|\*)\s+(\d+)/.exec(line);
      if (!m) continue;
      const pos = m[1];
      if (pos.startsWith('0x')) addr = parseInt(pos, 16);
      else if (pos[0] === '+') addr += Number(pos.slice(1));
      else if (pos[0] === '-') addr -= Number(pos.slice(1));
      if (callCost) {
        callCost = false;
        continue;
      }
      const name = nameAt(ranges, addr) ?? `${fn} [${obj.split('/').pop()}]`;
      totals.set(name, (totals.get(name) ?? 0) + Number(m[2]));
    }
  }
  return totals;
}
