/**
 * Request bodies of the device apps' local APIs are DTO classes checked by class-validator, through this
 * pipe (global in device-http.ts). A failure answers 400 `{error: {code, message}}` like every other
 * device API error: the code comes from the failed constraint's `context.code` (default
 * `validation_failed`), the message is the constraint's own, written to name the field and say what to
 * send. Unknown fields are dropped, not refused: register software that sends an extra field today must
 * keep working.
 *
 * Not here: the body of POST /api/orders. It is the HTTP hook adapter's input, parsed by that adapter
 * (src/adapters/http-hook/parse.ts, every bad field named at once with the protocol's own amount rules),
 * so a bad order is also counted and shown as a rejected input like a bad order file.
 */
import { ValidationPipe } from '@nestjs/common';
import { ValidationError } from 'class-validator';
import { DeviceApiError } from './device-errors';

export function deviceValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    whitelist: true,
    forbidUnknownValues: false,
    exceptionFactory: (errors) => deviceValidationError(errors),
  });
}

export function deviceValidationError(errors: ValidationError[]): DeviceApiError {
  const first = firstFailure(errors);
  if (!first) return new DeviceApiError(400, 'validation_failed', 'the request body is not valid');
  return new DeviceApiError(400, first.code, first.message);
}

function firstFailure(errors: ValidationError[]): { code: string; message: string } | undefined {
  for (const e of errors) {
    const [name, message] = Object.entries(e.constraints ?? {})[0] ?? [];
    if (name && message) {
      const code = (e.contexts?.[name] as { code?: string } | undefined)?.code ?? 'validation_failed';
      return { code, message };
    }
    const nested = firstFailure(e.children ?? []);
    if (nested) return nested;
  }
  return undefined;
}

/** How a rejected value is described in a message: its kind, never its content (it may be a secret). */
export function describeKind(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return `a ${typeof v}`;
}
