/** Request bodies of the unit's local API (checked by src/device/device-validation.ts). */
import { IsString } from 'class-validator';
import { describeKind } from '../../device/device-validation';

/** POST /api/offers/:orderId/pay. */
export class PayDto {
  /**
   * The customer's payment code. Only a string: a JSON number has already passed through a float
   * (280000000000000001 arrives as …000), so the digits would not be the ones scanned.
   */
  @IsString({
    message: (a) =>
      `paymentCode must be the code's digits as a string ("paymentCode": "280000000000000000"); got ${describeKind(a.value)}`,
    context: { code: 'invalid_payment_code' },
  })
  paymentCode!: string;
}
