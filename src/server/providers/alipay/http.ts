/**
 * One HTTP exchange with the Alipay gateway (or the bill download), bounded in time and size. Failures are
 * an AlipayTransportError whose `kind` says what the caller may conclude: `timeout` and `reset` mean the
 * request may have arrived (unknown outcome); `refused`, `dns` and `tls` mean it never did.
 */
import * as http from 'node:http';
import * as https from 'node:https';

export type TransportKind = 'timeout' | 'refused' | 'dns' | 'tls' | 'reset' | 'http' | 'too_large';

export class AlipayTransportError extends Error {
  constructor(
    readonly kind: TransportKind,
    message: string,
  ) {
    super(message);
    this.name = 'AlipayTransportError';
  }
}

export interface HttpAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|EPROTO|HOSTNAME/;

export function httpRequest(
  url: URL,
  opts: {
    method: 'GET' | 'POST';
    body?: string;
    headers?: Record<string, string>;
    timeoutMs: number;
    caPem?: string;
    maxBytes: number;
  },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const where = `${url.protocol}//${url.host}`;
    const lib = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = lib.request(
      url,
      {
        method: opts.method,
        headers,
        ...(url.protocol === 'https:' && opts.caPem ? { ca: opts.caPem } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > opts.maxBytes) {
            req.destroy(
              new AlipayTransportError('too_large', `${where} sent more than ${opts.maxBytes} bytes`),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks),
          });
        });
        res.on('error', fail);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new AlipayTransportError('timeout', `no answer from ${where} within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    function fail(e: unknown) {
      clearTimeout(timer);
      if (e instanceof AlipayTransportError) return reject(e);
      const code = String((e as NodeJS.ErrnoException).code ?? '');
      if (code === 'ECONNREFUSED')
        return reject(new AlipayTransportError('refused', `${where} refused the connection`));
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
        return reject(new AlipayTransportError('dns', `cannot resolve ${url.hostname}`));
      if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
        return reject(new AlipayTransportError('refused', `${where} is unreachable`));
      if (TLS_CODES.test(code))
        return reject(new AlipayTransportError('tls', `TLS with ${where} failed (${code})`));
      reject(new AlipayTransportError('reset', `the connection to ${where} broke (${code || 'closed'})`));
    }
    req.on('error', fail);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
