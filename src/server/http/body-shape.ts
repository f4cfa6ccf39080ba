/**
 * A request body's shape, checked by hand-written code instead of class-transformer + class-validator, for
 * the payment route: under load the ValidationPipe cost the server about 50 µs of its event loop per
 * payment (instances, metadata lookups, garbage), a sixth of all it did (docs/BENCHMARKS.md). Shape only,
 * like the DTOs: fields, types and no unknown field; money, ids and codes are checked by the services with
 * the protocol's rules. Failures are the same 400 `validation_failed` as the ValidationPipe's, every bad
 * field named.
 */
import { PipeTransform } from '@nestjs/common';
import { ApiError } from '../api-error';

export type FieldShape =
  | { type: 'string' | 'integer'; optional?: boolean; hint?: string }
  | { type: 'object'; fields: Record<string, FieldShape>; optional?: boolean };

export type BodyShape = Record<string, FieldShape>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every way `value` misses `shape`, as messages naming the field by its path (`amount.value`). */
export function shapeErrors(value: unknown, shape: BodyShape, prefix = ''): string[] {
  if (!isPlainObject(value)) return [`${prefix || 'the request body'} must be a JSON object`];
  const errors: string[] = [];
  for (const [name, field] of Object.entries(shape)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const v = value[name];
    if (v === undefined) {
      if (!field.optional) errors.push(`${path} is required`);
      continue;
    }
    if (field.type === 'object') {
      errors.push(...shapeErrors(v, field.fields, path));
    } else if (field.type === 'string' ? typeof v !== 'string' : !Number.isInteger(v)) {
      const what = field.type === 'string' ? 'a string' : 'an integer';
      errors.push(`${path} must be ${what}${field.hint ? ` ${field.hint}` : ''}`);
    }
  }
  for (const name of Object.keys(value)) {
    if (!Object.hasOwn(shape, name))
      errors.push(`${prefix ? `${prefix}.${name}` : name} is not a known field`);
  }
  return errors;
}

/** `@Body(new ShapePipe(SHAPE))`: passes a body of that shape on unchanged, refuses any other with 400. */
export class ShapePipe<T> implements PipeTransform<unknown, T> {
  constructor(private readonly shape: BodyShape) {}

  transform(value: unknown): T {
    const errors = shapeErrors(value, this.shape);
    if (errors.length) throw ApiError.badRequest('validation_failed', errors.join('; '));
    return value as T;
  }
}
