// Runs the real `stepgate` CLI (dist/cli.js, built by `npm test`) as a child process with config
// files in a temp dir: what an operator runs, including signals and file edits.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface ConfigDir {
  dir: string;
  gatewayFile: string;
  routesFile: string;
  env: NodeJS.ProcessEnv;
}

export function writeConfigDir(gatewayYaml: string, routesYaml: string): ConfigDir {
  const dir = mkdtempSync(join(tmpdir(), 'stepgate-cli-'));
  const gatewayFile = join(dir, 'gateway.yaml');
  const routesFile = join(dir, 'routes.yaml');
  writeFileSync(gatewayFile, gatewayYaml);
  writeFileSync(routesFile, routesYaml);
  return { dir, gatewayFile, routesFile, env: { ...process.env, STEPGATE_CONFIG: gatewayFile, STEPGATE_ROUTES: routesFile, LOG_LEVEL: 'info' } };
}

export function runCli(cfg: ConfigDir, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: cfg.env, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface GatewayProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

export function startCli(cfg: ConfigDir): GatewayProcess {
  const child = spawn(process.execPath, [CLI, 'start'], { env: cfg.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async waitForLog(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in:\n${out}`);
        if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}):\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
