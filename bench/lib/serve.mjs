// The lifecycle every Node bench target shares: listen on an ephemeral loopback port, announce
// `READY {"url":...}` for bench/lib/proc.mjs, and exit on SIGTERM/SIGINT or when the runner's
// stdin pipe closes (so a crashed runner never leaves targets behind).
/** `cleanup` (optional, may return a promise) runs before exiting, e.g. to destroy a client pool. */
export function serveUntilStopped(server, cleanup = () => {}) {
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
