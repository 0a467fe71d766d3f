// Reading a request body to look inside it, without losing a byte of it (SPEC §3).
// Only a few requests are inspected (a POST that may carry `_method`, an anonymous request on an
// `anonymous: allow` rule); everything else streams untouched. An inspected body is replayed to
// the upstream byte for byte: the buffered part first, then whatever was not read.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import busboy from 'busboy';

export type InspectFailure = 'too-large' | 'timeout' | 'aborted' | 'encoded';

export interface InspectedBody {
  /** The whole body when `failure` is null, else the part read before giving up. */
  bytes: Buffer;
  failure: InspectFailure | null;
  /** The body for forwarding: the bytes read, then the unread rest of the request. */
  replay(): Readable;
}

/** Limits for inspection; a body that cannot be read within them is treated as matching (fail closed). */
export interface InspectLimits {
  maxBytes: number;
  timeoutMs: number;
}

export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** A body already in hand (`stepgate explain --body`). */
export function bufferedBody(bytes: Buffer): InspectedBody {
  return { bytes, failure: null, replay: () => Readable.from([bytes]) };
}

export function inspectBody(req: IncomingMessage, limits: InspectLimits): Promise<InspectedBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  const result = (failure: InspectFailure | null, ended: boolean): InspectedBody => {
    const bytes = Buffer.concat(chunks, size);
    return {
      bytes,
      failure,
      replay: () => (ended ? Readable.from([bytes]) : Readable.from(prefixThenRest(bytes, req))),
    };
  };
  // A compressed body cannot be read without inflating it, which is its own attack surface.
  if (req.headers['content-encoding']) return Promise.resolve(result('encoded', false));
  return new Promise((resolve) => {
    const finish = (failure: InspectFailure | null, ended: boolean) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('aborted', onAborted).off('error', onAborted);
      if (!ended) req.pause();
      resolve(result(failure, ended));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limits.maxBytes) finish('too-large', false);
    };
    const onEnd = () => finish(null, true);
    const onAborted = () => finish('aborted', true);
    const timer = setTimeout(() => finish('timeout', false), limits.timeoutMs);
    req.on('data', onData).once('end', onEnd).once('aborted', onAborted).once('error', onAborted);
  });
}

async function* prefixThenRest(prefix: Buffer, rest: IncomingMessage): AsyncGenerator<Buffer> {
  if (prefix.length > 0) yield prefix;
  for await (const chunk of rest) yield chunk as Buffer;
}

export type BodyParams = { kind: 'params'; params: Array<[string, string]> } | { kind: 'uninspectable' } | { kind: 'empty' };

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * The name/value pairs of an urlencoded or multipart form body (file parts are not values),
 * decoded as the WHATWG urlencoded parser does. Anything else that is not empty cannot be
 * inspected.
 */
export async function formParams(bytes: Buffer, contentType: string | undefined): Promise<BodyParams> {
  if (bytes.length === 0) return { kind: 'empty' };
  const type = mediaType(contentType);
  if (type === 'application/x-www-form-urlencoded') {
    return { kind: 'params', params: [...new URLSearchParams(bytes.toString('utf8'))] };
  }
  if (type === 'multipart/form-data') return multipartFields(bytes, contentType!);
  return { kind: 'uninspectable' };
}

function multipartFields(bytes: Buffer, contentType: string): Promise<BodyParams> {
  return new Promise((resolve) => {
    const params: Array<[string, string]> = [];
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: bytes.length } });
    } catch {
      resolve({ kind: 'uninspectable' });
      return;
    }
    bb.on('field', (name, value, info) => {
      if (info.nameTruncated || info.valueTruncated) return;
      params.push([name, value]);
    });
    bb.on('file', (_name, stream) => stream.resume());
    bb.on('error', () => resolve({ kind: 'uninspectable' }));
    bb.on('close', () => resolve({ kind: 'params', params }));
    bb.end(bytes);
  });
}

/** Top-level keys of a JSON object body (for credential parameters); anything unparsable cannot be inspected. */
export function jsonTopLevelKeys(bytes: Buffer, contentType: string | undefined): BodyParams {
  if (bytes.length === 0) return { kind: 'empty' };
  const type = mediaType(contentType);
  if (type !== 'application/json' && !type.endsWith('+json')) return { kind: 'uninspectable' };
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (value === null || typeof value !== 'object') return { kind: 'params', params: [] };
    const objects = Array.isArray(value) ? value : [value];
    const params: Array<[string, string]> = [];
    for (const o of objects) if (o && typeof o === 'object') for (const k of Object.keys(o)) params.push([k, '']);
    return { kind: 'params', params };
  } catch {
    return { kind: 'uninspectable' };
  }
}
