/**
 * Every failure leaves as `{error: {code, message}}` with a proper status: our ApiErrors as they are,
 * validation failures as 400 naming the fields, Fastify's own (bad JSON, body too large, wrong content
 * type) mapped, and anything unexpected as 500 with its details only in the (redacted) log.
 */
import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { ApiError } from '../api-error';
import { redact } from '../redact';

const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'body_too_large', 'the request body is too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'send the body as application/json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'the body is empty; send a JSON object'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'the body is not valid JSON'],
};

const BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'body_too_large',
  415: 'unsupported_media_type',
};
const BODY_LIMIT_TEXT = '16 KiB';

@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('payconnect-server');

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const request = host.switchToHttp().getRequest<{ method?: string; url?: string }>();
    const mapped = this.map(exception);
    const status = mapped[0];
    let [, code, message] = mapped;
    if (status === 404 && !(exception instanceof ApiError)) {
      // Fastify's own text repeats the whole URL, query included: a `?token=…` would come back in the
      // answer (and in whatever logs it). Name the path only.
      const path = (request?.url ?? '').split('?')[0];
      [code, message] = [
        'not_found',
        `no such endpoint: ${request?.method ?? ''} ${path}; see docs/server-api.md`,
      ];
    }
    if (status >= 500)
      this.logger.error(
        redact(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)),
      );
    const retryAfter = exception instanceof ApiError ? exception.extra.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
    void reply
      .status(status)
      .header('content-type', 'application/json; charset=utf-8')
      .send({ error: { code, message } });
  }

  private map(e: unknown): [number, string, string] {
    if (e instanceof ApiError) return [e.status, e.code, e.message];
    const fst = (e as { code?: string })?.code;
    if (fst && FASTIFY_CODES[fst]) return FASTIFY_CODES[fst];
    if (
      (e as { type?: string })?.type === 'entity.parse.failed' ||
      (e instanceof SyntaxError && /JSON/.test(e.message))
    ) {
      return [400, 'invalid_json', 'the body is not valid JSON'];
    }
    if (e instanceof HttpException) {
      const status = e.getStatus();
      const response = e.getResponse() as { message?: string | string[] } | string;
      const message =
        typeof response === 'string'
          ? response
          : Array.isArray(response.message)
            ? response.message.join('; ')
            : (response.message ?? e.message);
      if (status === 400 && /not valid JSON/i.test(message))
        return [400, 'invalid_json', 'the body is not valid JSON'];
      const code = BY_STATUS[status] ?? `http_${status}`;
      return [
        status,
        code,
        status === 413 ? `the request body is too large (limit ${BODY_LIMIT_TEXT})` : message,
      ];
    }
    const statusCode = (e as { statusCode?: number })?.statusCode;
    if (statusCode && statusCode >= 400 && statusCode < 500)
      return [statusCode, 'bad_request', (e as Error).message];
    return [500, 'internal_error', 'the server failed to handle this request; it has been logged'];
  }
}
