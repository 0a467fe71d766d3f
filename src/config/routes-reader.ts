// Reading routes.yaml on a worker thread, for live reloads. Parsing and validating 10,000 rules
// takes ~150 ms of CPU (js-yaml, the schema), and a broken file is read a second time with every
// position (`yaml`, ~800 ms): on the main thread every request in flight would wait for that.
// Here the main thread only receives the validated rules and compiles them (config/route-table.ts).
// Start-up and `stepgate check` keep the synchronous path: nothing is waiting on them. The worker
// also compiles once, so a file that reads but does not compile is reported (located the slow
// way, for its `file:line:col`) from there too.
// A worker per read: reloads are rare, and an idle V8 isolate between them would cost memory.
import { Worker } from 'node:worker_threads';
import { ConfigError, type ConfigProblem } from './errors.js';
import { routesConfigFromData, type RoutesData } from './load.js';
import type { RoutesConfig } from './types.js';

/** What the worker answers: the file's text and rules, its problems, or why it could not read it. */
export type RoutesReaderReply =
  | { kind: 'read'; text: string; data: RoutesData }
  | { kind: 'invalid'; problems: ConfigProblem[] }
  | { kind: 'failed'; message: string };

const WORKER_SCRIPT = new URL('./routes-worker.js', import.meta.url);

/** A read still running after this long is abandoned (the previous table stays in use). */
export const ROUTES_READ_TIMEOUT_MS = 60_000;

/**
 * The RoutesConfig of `file`, read and validated on a worker thread: the same value
 * parseRoutesConfig gives. Rejects with ConfigError for a file with problems (`file:line:col`),
 * and with an Error when the worker could not answer (it could not start, crashed, or timed out).
 */
export function readRoutesOffThread(file: string, timeoutMs = ROUTES_READ_TIMEOUT_MS): Promise<RoutesConfig> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SCRIPT, { workerData: { file } });
    // A reload in progress must not keep a stopping gateway alive.
    worker.unref();
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      outcome();
    };
    const timer = setTimeout(() => settle(() => reject(new Error(`reading ${file} took longer than ${timeoutMs} ms`))), timeoutMs);
    timer.unref();
    worker.once('message', (reply: RoutesReaderReply) =>
      settle(() => {
        if (reply.kind === 'invalid') reject(new ConfigError(reply.problems));
        else if (reply.kind === 'failed') reject(new Error(reply.message));
        else {
          // Inside an event listener a throw would be uncaught: it becomes a failed read instead.
          try {
            resolve(routesConfigFromData(reply.data, reply.text, file));
          } catch (err) {
            reject(err as Error);
          }
        }
      }),
    );
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) => settle(() => reject(new Error(`the routes reader stopped (exit code ${code}) before answering`))));
  });
}
