// The Dockerfile cannot be built here (no Docker engine), so this checks what can be checked:
// every file it copies from the context exists, and its CMD, run with its ENV against the shipped
// config, starts a gateway whose HEALTHCHECK command succeeds.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/process.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const root = join(import.meta.dirname, '..', '..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => /^[A-Z]+ /.test(l));

function jsonArgs(instruction: string): string[] {
  return JSON.parse(instruction.replace(/^(CMD|HEALTHCHECK .*?CMD)\s+/, '')) as string[];
}

describe('Dockerfile', () => {
  it('copies only files that exist in the build context', () => {
    const copies = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
    expect(copies.length).toBeGreaterThan(0);
    for (const line of copies) {
      const parts = line.split(/\s+/).slice(1, -1);
      for (const src of parts) expect(existsSync(join(root, src)), `${src} (from: ${line})`).toBe(true);
    }
    // What the runtime stage takes from the builder is what `npm run build` produces.
    expect(existsSync(join(root, 'dist', 'cli.js'))).toBe(true);
  });

  it('runs as a non-root user with a /data volume and a multi-stage build', () => {
    expect(instructions.filter((l) => l.startsWith('FROM ')).length).toBe(2);
    expect(instructions).toContain('USER node');
    expect(dockerfile).toMatch(/VOLUME \["\/data"\]/);
  });

  it('its CMD with its ENV starts a gateway that passes its HEALTHCHECK', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [, name, value] of dockerfile.matchAll(/(STEPGATE_[A-Z_]+|NODE_ENV)=(\S+)/g)) env[name!] = value!;
    // Outside the container: the shipped config, a temp /data, loopback ports.
    env.STEPGATE_CONFIG = join(root, 'config', 'gateway.yaml');
    env.STEPGATE_ROUTES = join(root, 'config', 'routes.yaml');
    env.STEPGATE_DATA_DIR = mkdtempSync(join(tmpdir(), 'stepgate-docker-'));
    env.STEPGATE_LISTEN = `127.0.0.1:${await freePort()}`;
    const cmd = jsonArgs(instructions.find((l) => l.startsWith('CMD '))!);
    const health = jsonArgs(instructions.find((l) => l.startsWith('HEALTHCHECK '))!);
    const child = spawn(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), { cwd: root, env, stdio: 'pipe' });
    try {
      let healthy = false;
      for (let i = 0; i < 50 && !healthy; i++) {
        await new Promise((r) => setTimeout(r, 100));
        healthy = spawnSync(process.execPath, health.slice(1), { timeout: 3000 }).status === 0;
      }
      expect(healthy).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
