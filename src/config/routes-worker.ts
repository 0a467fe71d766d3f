// Worker-thread entry of config/routes-reader.ts: reads and validates one routes.yaml, answers
// once, and ends. Runs the same code as the synchronous load, so both read a file alike.
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from './errors.js';
import { readConfigFile, readRoutesData } from './load.js';
import type { RoutesReaderReply } from './routes-reader.js';

const { file } = workerData as { file: string };
let reply: RoutesReaderReply;
try {
  const text = readConfigFile(file);
  reply = { kind: 'read', text, data: readRoutesData(text, file) };
} catch (err) {
  reply = err instanceof ConfigError ? { kind: 'invalid', problems: err.problems } : { kind: 'failed', message: (err as Error).message };
}
parentPort!.postMessage(reply);
