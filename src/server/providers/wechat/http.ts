/**
 * One HTTPS call to WeChat Pay (node:https), with what a payment call needs and nothing more: a trust anchor
 * for a local gateway (`ca`), the merchant's certificate for mutual TLS (v2 /secapi), a hard timeout, and a
 * failure that says which kind it was — the provider turns every kind into "outcome unknown" for payment
 * calls, while `probe()` names it in plain words.
 */
import * as https from 'node:https';

export type TransportKind = 'timeout' | 'unreachable' | 'tls' | 'reset';

export class WechatTransportError extends Error {
  constructor(
    readonly kind: TransportKind,
    message: string,
    readonly osCode?: string,
  ) {
    super(message);
  }
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface HttpCall {
  url: URL;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  ca?: string;
  cert?: string;
  key?: string;
  timeoutMs: number;
  maxBytes?: number;
}

const TLS_CODES =
  /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|EPROTO|HOSTNAME_MISMATCH|ERR_OSSL)/;
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

function classify(err: NodeJS.ErrnoException, secure: boolean): WechatTransportError {
  const code = err.code ?? '';
  if (UNREACHABLE.has(code)) return new WechatTransportError('unreachable', `cannot connect (${code})`, code);
  if (TLS_CODES.test(code) || /certificate|ssl|tls/i.test(err.message)) {
    return new WechatTransportError('tls', `TLS handshake failed (${code || 'TLS error'})`, code);
  }
  // A connection reset before the TLS session was up is a refused handshake (mutual TLS without our certificate).
  if (!secure && (code === 'ECONNRESET' || code === 'EPIPE')) {
    return new WechatTransportError(
      'tls',
      `the connection was closed during the TLS handshake (${code})`,
      code,
    );
  }
  return new WechatTransportError('reset', `the connection broke (${code || 'no code'})`, code);
}

export function httpsCall(c: HttpCall): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    let secure = false;
    let done = false;
    const finish = (f: () => void): void => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        f();
      }
    };
    const req = https.request(
      c.url,
      {
        method: c.method,
        headers:
          c.body === undefined
            ? c.headers
            : { ...c.headers, 'Content-Length': String(Buffer.byteLength(c.body)) },
        ca: c.ca,
        cert: c.cert,
        key: c.key,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > (c.maxBytes ?? 4 * 1024 * 1024)) {
            req.destroy();
            finish(() => reject(new WechatTransportError('reset', 'the reply is too large')));
          } else chunks.push(d);
        });
        res.on('end', () =>
          finish(() =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          ),
        );
        res.on('error', (e) => finish(() => reject(classify(e, true))));
      },
    );
    req.on('socket', (s) => s.on('secureConnect', () => (secure = true)));
    const timer = setTimeout(() => {
      req.destroy();
      finish(() => reject(new WechatTransportError('timeout', `no answer within ${c.timeoutMs} ms`)));
    }, c.timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish(() => reject(classify(e, secure))));
    req.end(c.body);
  });
}
