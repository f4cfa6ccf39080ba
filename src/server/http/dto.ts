/**
 * Request bodies, checked by the global ValidationPipe (whitelist, forbid unknown fields), except the
 * payment body (CREATE_PAYMENT_SHAPE, below). Shape only: money, ids and codes are then checked by the
 * services with the protocol's rules.
 */
import { Type } from 'class-transformer';
import type { BodyShape } from './body-shape';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../../protocol/ids';
import { MAX_PAYMENT_VALUE_CEILING } from '../stores.service';

/** Names people read (stores, devices): no control or invisible formatting characters, as for order ids. */
const PRINTABLE_NAME = /^[^\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]+$/u;
const PRINTABLE_NAME_MESSAGE = (field: string) =>
  `${field} must be printable text: no control characters (NUL, BEL, line breaks) or invisible formatting characters (such as U+202E)`;

export class CreateStoreDto {
  @IsString()
  @Length(1, 100)
  @Matches(PRINTABLE_NAME, { message: PRINTABLE_NAME_MESSAGE('name') })
  name!: string;

  @IsOptional()
  @IsInt({ message: 'maxPaymentValue must be a whole number of minor units (10000000 for 100,000.00)' })
  @Min(1, { message: 'maxPaymentValue must be at least 1' })
  @Max(MAX_PAYMENT_VALUE_CEILING, { message: `maxPaymentValue must be at most ${MAX_PAYMENT_VALUE_CEILING}` })
  maxPaymentValue?: number;
}

export class UpdateStoreDto {
  @IsInt({ message: 'maxPaymentValue must be a whole number of minor units (10000000 for 100,000.00)' })
  @Min(1, { message: 'maxPaymentValue must be at least 1' })
  @Max(MAX_PAYMENT_VALUE_CEILING, { message: `maxPaymentValue must be at most ${MAX_PAYMENT_VALUE_CEILING}` })
  maxPaymentValue!: number;
}

export class RegistrationCodeDto {
  @IsIn(['terminal', 'plugin'])
  role!: 'terminal' | 'plugin';
}

export class RegisterDeviceDto {
  @IsString()
  @Length(1, 40)
  code!: string;

  @IsString()
  @Matches(DEVICE_ID_PATTERN, { message: `deviceId must be ${DEVICE_ID_RULE}` })
  deviceId!: string;

  @IsIn(['terminal', 'plugin'])
  role!: 'terminal' | 'plugin';

  @IsString()
  @Length(1, 64)
  @Matches(PRINTABLE_NAME, { message: PRINTABLE_NAME_MESSAGE('name') })
  name!: string;
}

export class AmountDto {
  @IsInt({ message: 'amount.value must be an integer in minor units (1250 for 12.50)' })
  value!: number;

  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'amount.currency must be an ISO 4217 code like CNY' })
  currency!: string;
}

/**
 * POST /v1/payments, the hot path: checked by ShapePipe (body-shape.ts), not by the ValidationPipe, which
 * cost a sixth of the server's time per payment. The same rules as a DTO would state.
 */
export const CREATE_PAYMENT_SHAPE: BodyShape = {
  orderId: { type: 'string' },
  registerId: { type: 'string' },
  amount: {
    type: 'object',
    fields: {
      value: { type: 'integer', hint: 'in minor units (1250 for 12.50)' },
      currency: { type: 'string' },
    },
  },
  method: { type: 'object', fields: { type: { type: 'string' }, code: { type: 'string' } } },
};

export class RefundDto {
  @IsOptional()
  @ValidateNested()
  @Type(() => AmountDto)
  amount?: AmountDto;
}

/** `POST /v1/orders/cancel`: the order the register canceled (its id as the register gave it). */
export const CANCEL_ORDER_SHAPE: BodyShape = { orderId: { type: 'string' } };
