// The lifecycle every Node bench target shares: listen on an ephemeral loopback port, announce
// `READY {"url":...}` for bench/lib/proc.mjs, answer the memory probe, and exit on SIGTERM/SIGINT
// or when the runner's stdin pipe closes (so a crashed runner never leaves targets behind).

/**
 * SIGUSR2: print `MEM {process.memoryUsage()}` so the bench can tell JS heap from native memory;
 * under --expose-gc the probe first runs a full GC and adds `liveHeap`: heapUsed right after it
 * (what is really retained).
 */
export function answerMemoryProbe() {
  process.on('SIGUSR2', () => {
    const mem = process.memoryUsage();
    if (typeof globalThis.gc === 'function') {
      globalThis.gc();
      mem.liveHeap = process.memoryUsage().heapUsed;
    }
    process.stdout.write(`MEM ${JSON.stringify(mem)}\n`);
  });
}

/** `cleanup` (optional, may return a promise) runs before exiting, e.g. to destroy a client pool. */
export function serveUntilStopped(server, cleanup = () => {}) {
  answerMemoryProbe();
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    process.stdout.write(`READY ${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
    Promise.resolve(cleanup()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}
