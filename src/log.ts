// The one pino logger. Request logging goes through `requestLog`, which writes method, canonical
// path (never the query string: tokens live there), status and decision — never headers, so
// cookies and Authorization values cannot leak (SPEC §9.7). `redact` is a second line of defence
// for anything that passes objects in.
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'stepgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'code', '*.code', 'secret', '*.secret', 'cookie', '*.cookie', 'authorization', '*.authorization',
          'headers', '*.headers', 'query', '*.query', 'token', '*.token', 'invite', '*.invite',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
