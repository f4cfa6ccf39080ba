/**
 * A payment's history: what happened to it that its status alone does not say, in words an admin or
 * support can act on (e.g. "cancel refused by provider; charge kept"). Each note is written in the same
 * transaction as the change it explains, so a note never describes a change that did not commit, nor the
 * other way round. Notes are not signed and not pushed to devices (the signed events carry the payment);
 * they are read with `GET /v1/payments/:id/history`.
 */
import { Queryable } from './storage/db';

/** What a note is about. `cancel_refused`: the provider refused a cancel for good and the server decided
 * the payment from the provider's answer about the trade (see PaymentsService.settleRefusedCancel). */
export type PaymentNoteKind = 'cancel_refused';

export interface PaymentNote {
  paymentId: string;
  kind: PaymentNoteKind;
  message: string;
  /** ISO 8601. */
  at: string;
}

const INSERT_NOTE =
  'INSERT INTO payment_history (payment_id, store_id, kind, message, created_at) VALUES ($1, $2, $3, $4, $5)';

export class PaymentHistory {
  constructor(private readonly db: Queryable) {}

  /** Writes a note inside the caller's transaction. */
  async record(q: Queryable, storeId: string, note: PaymentNote): Promise<void> {
    await q.run(INSERT_NOTE, [note.paymentId, storeId, note.kind, note.message, note.at]);
  }

  /** The notes of a payment of this store, oldest first. */
  async list(storeId: string, paymentId: string): Promise<PaymentNote[]> {
    const rows = await this.db.query<{ kind: PaymentNoteKind; message: string; created_at: string }>(
      'SELECT kind, message, created_at FROM payment_history WHERE payment_id = $1 AND store_id = $2 ORDER BY seq',
      [paymentId, storeId],
    );
    return rows.map((r) => ({ paymentId, kind: r.kind, message: r.message, at: r.created_at }));
  }
}
