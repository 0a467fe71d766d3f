// Raw HTTP/1.1 over `node:net`: the request goes out byte for byte (fetch and undici normalise
// targets and refuse headers such as Connection, Transfer-Encoding or Upgrade), and the answer is
// parsed just enough for assertions (status, headers, a Content-Length or chunked body).
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  /** 0 when the connection closed before a status line arrived. */
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** The status line and headers as received. */
  head: string;
}

/** Builds a request: `Host: localhost` unless given, and a Content-Length for a body unless framing is given. */
export function httpText(method: string, target: string, headers: Record<string, string> = {}, body = ''): string {
  const names = Object.keys(headers).map((n) => n.toLowerCase());
  const lines = [`${method} ${target} HTTP/1.1`];
  if (!names.includes('host')) lines.push('Host: localhost');
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body && !names.includes('content-length') && !names.includes('transfer-encoding')) lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
  return lines.join('\r\n') + '\r\n\r\n' + body;
}

/** One connection, read as a stream of responses (and, after a 101, of raw bytes). */
export class RawConnection {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    const onClose = () => {
      this.closed = true;
      this.wake();
    };
    socket.on('end', onClose);
    socket.on('close', onClose);
    socket.on('error', onClose);
  }

  static open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) }, () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `ready()` returns a value, the connection closes, or the time is up. */
  private async until<T>(ready: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = ready();
      if (value !== undefined || this.closed) return value;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Reads one response. `noBody` for answers to HEAD. A 101 returns at once; the rest stays readable with readBytes. */
  async readResponse(opts: { noBody?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    for (;;) {
      const headEnd = await this.until(() => {
        const i = this.buf.indexOf('\r\n\r\n');
        return i >= 0 ? i : undefined;
      }, timeoutMs);
      if (headEnd === undefined) {
        const partial = this.buf.toString('latin1');
        this.buf = Buffer.alloc(0);
        return { status: 0, headers: {}, body: partial, head: '' };
      }
      const head = this.buf.subarray(0, headEnd).toString('latin1');
      this.buf = this.buf.subarray(headEnd + 4);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
      }
      if (status >= 100 && status < 200 && status !== 101) continue; // 100 Continue and friends
      const response = { status, headers, head, body: '' };
      if (status === 101 || status === 204 || status === 304 || opts.noBody) return response;
      const body = await this.readBody(headers, timeoutMs);
      return { ...response, body: body.toString('utf8') };
    }
  }

  private async readBody(headers: Record<string, string>, timeoutMs: number): Promise<Buffer> {
    if (headers['content-length'] !== undefined) {
      return (await this.readBytes(Number(headers['content-length']), timeoutMs)) ?? Buffer.alloc(0);
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = await this.until(() => {
          const i = this.buf.indexOf('\r\n');
          return i >= 0 ? i : undefined;
        }, timeoutMs);
        if (lineEnd === undefined) return Buffer.concat(parts);
        const size = parseInt(this.buf.subarray(0, lineEnd).toString('latin1'), 16);
        this.buf = this.buf.subarray(lineEnd + 2);
        if (size === 0) {
          // The trailer section (usually empty) ends with an empty line.
          for (;;) {
            const end = await this.until(() => {
              const i = this.buf.indexOf('\r\n');
              return i >= 0 ? i : undefined;
            }, timeoutMs);
            if (end === undefined) return Buffer.concat(parts);
            this.buf = this.buf.subarray(end + 2);
            if (end === 0) return Buffer.concat(parts);
          }
        }
        const chunk = await this.readBytes(size + 2, timeoutMs);
        if (!chunk) return Buffer.concat(parts);
        parts.push(chunk.subarray(0, size));
      }
    }
    // Neither: the body runs until the connection closes.
    await this.until(() => undefined, timeoutMs);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** Exactly n bytes, or undefined if the connection closed or the time ran out first. */
  async readBytes(n: number, timeoutMs = 10_000): Promise<Buffer | undefined> {
    const ok = await this.until(() => (this.buf.length >= n ? true : undefined), timeoutMs);
    if (!ok) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** True once the peer closed the connection (within the time given). */
  async waitClosed(timeoutMs = 2_000): Promise<boolean> {
    await this.until(() => undefined, timeoutMs);
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends `text` on a fresh connection and reads one response; the connection is then closed. */
export async function rawRequest(url: string, text: string | Buffer, opts: { noBody?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
  const conn = await RawConnection.open(url);
  try {
    conn.write(text);
    return await conn.readResponse(opts);
  } finally {
    conn.close();
  }
}

/** The parsed JSON body of a raw response (undefined when it is not JSON). */
export function jsonOf(res: RawResponse): Record<string, any> | undefined {
  try {
    return JSON.parse(res.body) as Record<string, any>;
  } catch {
    return undefined;
  }
}
