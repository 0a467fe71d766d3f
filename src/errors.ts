// Every error the gateway answers with, in one list: code → HTTP status and a default message.
// Handlers throw `GatewayError`; `sendError` is the one place that writes an error response, so
// every answer has the same `{"code","message","requestId"}` shape and the `X-Request-Id` header.
import type { ServerResponse } from 'node:http';

export const ERRORS = {
  BAD_REQUEST: [400, 'The request is malformed.'],
  BAD_REQUEST_PATH: [400, 'The request path is ambiguous or malformed.'],
  INVALID_CODE: [400, 'That code is not valid.'],
  PASSKEY_REJECTED: [400, 'The passkey could not be verified.'],
  AMBIGUOUS_IDENTITY: [400, 'The request carries credentials of two different users.'],
  AUTH_REQUIRED: [401, 'Sign in to the application first.'],
  STEP_UP_REQUIRED: [403, 'This action needs a fresh verification.'],
  ENROLLMENT_REQUIRED: [403, 'This action needs a second factor; none is set up for this account.'],
  CROSS_ORIGIN: [403, 'Cross-origin requests to this endpoint are not allowed.'],
  FACTOR_DISABLED: [403, 'This factor is disabled after too many failed attempts. Use a passkey or ask an administrator.'],
  INVITE_REQUIRED: [403, 'Setting up the first factor needs an invitation code.'],
  NOT_FOUND: [404, 'Not found.'],
  METHOD_NOT_ALLOWED: [405, 'Method not allowed.'],
  NO_CHALLENGE: [409, 'There is nothing pending to confirm.'],
  LAST_FACTOR: [409, 'The last factor cannot be removed.'],
  TOO_LARGE: [413, 'The request body is too large.'],
  UNSUPPORTED_MEDIA_TYPE: [415, 'Send application/json.'],
  RATE_LIMITED: [429, 'Too many failed attempts. Try again later.'],
  INTERNAL: [500, 'Internal error.'],
  UPSTREAM_UNAVAILABLE: [502, 'The application is not reachable.'],
  IDENTITY_UNAVAILABLE: [503, 'Could not determine who is signed in. Try again shortly.'],
  STORE_UNAVAILABLE: [503, 'The gateway store is unavailable. Try again shortly.'],
  UPSTREAM_TIMEOUT: [504, 'The application did not answer in time.'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERRORS;

export class GatewayError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? ERRORS[code][1]);
    this.status = ERRORS[code][0];
  }
}

export function errorBody(code: ErrorCode, message: string, requestId: string): string {
  return JSON.stringify({ code, message, requestId });
}

/** Writes a JSON error answer. Safe to call when headers were already sent: then it only ends the response. */
export function sendError(res: ServerResponse, err: GatewayError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(err.code, err.message, requestId);
  res.writeHead(err.status, {
    ...err.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}
