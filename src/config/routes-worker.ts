// Worker-thread entry of config/routes-reader.ts: reads and validates one routes.yaml, answers
// once, and ends. Runs the same code as the synchronous load, so both read a file alike.
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from './errors.js';
import { readConfigFile, readRoutesData, routesConfigFromData } from './load.js';
import { buildRouteTable } from './route-table.js';
import type { RoutesReaderReply } from './routes-reader.js';

const { file } = workerData as { file: string };
let reply: RoutesReaderReply;
try {
  const text = readConfigFile(file);
  const data = readRoutesData(text, file);
  // Compiled here too, only to find compile errors: their `file:line:col` needs the slow,
  // position-keeping read, which should not run where the requests are. The main thread then
  // compiles a table known to compile (the trie cannot cross threads).
  buildRouteTable(routesConfigFromData(data, text, file));
  reply = { kind: 'read', text, data };
} catch (err) {
  reply = err instanceof ConfigError ? { kind: 'invalid', problems: err.problems } : { kind: 'failed', message: (err as Error).message };
}
parentPort!.postMessage(reply);
