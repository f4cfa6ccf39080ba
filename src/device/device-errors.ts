/**
 * Errors of a device app's local HTTP API (the plugin's and a unit's), and the one filter that answers
 * them. Every failure is `{error: {code, message}}` with a status that says whose move it is: 4xx the
 * caller's (fix the request), 502/503 something beyond this device (try again, or look at the server, the
 * network or the host system), 500 this device's own fault.
 */
import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import {
  ManifestError,
  PayconnectError,
  ProtocolError,
  ProviderError,
  TransportError,
  WriteBackError,
} from '../protocol/errors';

/** An answer the API means to give: its status, a stable code and a message for the person acting on it. */
export class DeviceApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The status for an error payconnect raised on purpose, by the layer it names. */
export function statusOf(e: PayconnectError): number {
  if (e instanceof ProtocolError || e instanceof ManifestError) return 400; // the input is wrong
  if (e instanceof TransportError) return 503; // a network or peer is not there now: try again
  if (e instanceof ProviderError || e instanceof WriteBackError) return 502; // a system beyond us failed
  return 500;
}

@Catch()
export class DeviceErrorFilter implements ExceptionFilter {
  /** `who`: how the app names itself in a message, e.g. "the plugin", "the unit". */
  constructor(private readonly who: string) {}

  catch(e: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { status, code, message } = this.answer(e);
    void reply.status(status).send({ error: { code, message } });
  }

  answer(e: unknown): { status: number; code: string; message: string } {
    if (e instanceof DeviceApiError) return { status: e.status, code: e.code, message: e.message };
    if (e instanceof PayconnectError) return { status: statusOf(e), code: e.code, message: e.message };
    if (e instanceof HttpException) {
      const status = e.getStatus();
      if (/not valid JSON/i.test(e.message))
        return { status, code: 'invalid_json', message: 'the body is not valid JSON' };
      const code = status === 413 ? 'body_too_large' : status === 404 ? 'not_found' : `http_${status}`;
      return { status, code, message: e.message };
    }
    return { status: 500, code: 'internal_error', message: `${this.who} failed to handle this request` };
  }
}
