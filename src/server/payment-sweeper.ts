/**
 * Finishes every pending payment, also after a restart: the server never leaves a payment pending.
 *
 * Each tick it leases the payments whose next check is due (a lease, so several instances on one
 * PostgreSQL never work on the same payment at once) and asks the provider:
 * - succeeded / failed / closed: record it;
 * - the customer is still confirming: check again in 3-5 s, and at the deadline cancel, which closes the
 *   trade or, when the customer paid just as the cancel went out, reverses it;
 * - not found (the charge never reached the provider, or it failed with a 5xx): cancel, so a late charge
 *   cannot go through, and record the payment failed;
 * - the query itself fails: try again at the next check; the payment stays pending, never charged again;
 * - a cancel was asked for (PaymentsService.cancel) but the provider did not confirm it: cancel again, until
 *   it does; such a payment can only end canceled — unless the provider refuses the cancel for good
 *   (ProviderRejectedError): then the provider's answer about the trade decides it (paid: the charge is
 *   kept, `succeeded`; closed or failed: `canceled` or `failed`), noted in the payment's history
 *   (PaymentsService.settleRefusedCancel). While the trade is still open, it keeps asking.
 *
 * It also finishes refunds still pending whose request will not (502 refund_unknown not retried, a crash):
 * see RefundsService.resolvePending.
 */
import { Clock, TimerHandle } from '../protocol/clock';
import {
  canceledChange,
  closedByProviderChange,
  cancelFrom as earliestCancelAt,
  PaymentsService,
  PaymentTiming,
  Routing,
} from './payments.service';
import { PaymentProvider, ProviderRejectedError, ProviderUnknownError } from './providers/provider';
import { RefundsService } from './refunds.service';
import { Db } from './storage/db';

export interface SweeperStats {
  ticks: number;
  checks: number;
  resolved: number;
  cancels: number;
  /** Payments decided from the provider's answer after it refused their cancel for good. */
  cancelsRefused: number;
  /** Refunds whose answer never came, decided from the provider's answer. */
  refundsResolved: number;
  errors: number;
}

export class PaymentSweeper {
  readonly stats: SweeperStats = {
    ticks: 0,
    checks: 0,
    resolved: 0,
    cancels: 0,
    cancelsRefused: 0,
    refundsResolved: 0,
    errors: 0,
  };
  private timer?: TimerHandle;
  private running = false;
  private stopped = true;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly provider: PaymentProvider,
    private readonly payments: PaymentsService,
    private readonly timing: PaymentTiming,
    private readonly options: {
      tickMs: number;
      leaseMs: number;
      batch: number;
      log?: (msg: string) => void;
    } = {
      tickMs: 250,
      leaseMs: 30_000,
      batch: 50,
    },
    /** Finishes refunds whose answer never came (none if not given). */
    private readonly refunds?: RefundsService,
    /** Each provider's timing rules (providers/router.ts); without it, `timing` for every payment. */
    private readonly routing?: Pick<Routing, 'timingOf'>,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      void this.tick().finally(() => this.schedule());
    }, this.options.tickMs);
  }

  /** One pass over the due payments. Exposed for tests driving a FakeClock. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stats.ticks++;
    try {
      const now = this.clock.now();
      const due = await this.db.query<{ id: string }>(
        `SELECT id FROM payments WHERE status = 'pending' AND next_check_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
         ORDER BY next_check_at LIMIT $2`,
        [now, this.options.batch],
      );
      for (const { id } of due) {
        const leased = await this.db.run(
          `UPDATE payments SET lease_until = $1, checks = checks + 1
           WHERE id = $2 AND status = 'pending' AND next_check_at <= $3 AND (lease_until IS NULL OR lease_until < $3)`,
          [now + this.options.leaseMs, id, now],
        );
        if (leased.changes === 1) await this.check(id);
      }
      if (this.refunds) this.stats.refundsResolved += await this.refunds.resolvePending(this.options.batch);
      if (this.stats.ticks % 240 === 0) await this.payments.expireKeys();
    } catch (e) {
      this.stats.errors++;
      this.options.log?.(`payment sweeper: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async check(id: string): Promise<void> {
    this.stats.checks++;
    const row = (
      await this.db.query<{
        deadline_at: number;
        cancel_requested: number;
        provider: string;
        created_at: string;
      }>('SELECT deadline_at, cancel_requested, provider, created_at FROM payments WHERE id = $1', [id])
    )[0];
    const timing = this.routing?.timingOf(row.provider) ?? this.timing;
    const pastDeadline = this.clock.now() >= Number(row.deadline_at);
    // The provider takes no cancel sooner than this after the charge (WeChat Pay: 15 s): a cancel due before
    // then waits for it.
    const cancelFrom = earliestCancelAt(row.created_at, timing);
    const cancelNotYet = this.clock.now() < cancelFrom;
    if (Number(row.cancel_requested) === 1) {
      if (cancelNotYet) {
        await this.at(id, cancelFrom);
        return;
      }
      // A cancel was asked for and not confirmed by the provider: it may not succeed any more; cancel again.
      try {
        await this.cancelAtDeadline(id, 'register');
      } catch (e) {
        this.stats.errors++;
        if (e instanceof ProviderRejectedError) {
          // Refused for good: asking again would be refused forever. The trade's state decides.
          try {
            const outcome = await this.payments.settleRefusedCancel(id, e);
            if (outcome) {
              // Logged and counted by PaymentsService (onCancelRefused), noted in the payment's history.
              this.stats.cancelsRefused++;
              this.stats.resolved++;
              return;
            }
            this.options.log?.(
              `payment ${id}: cancel refused by provider (${e.message}); the trade is still open there: asking again`,
            );
          } catch (q) {
            this.options.log?.(
              `payment ${id}: cancel refused, and the query failed: ${(q as Error).message}`,
            );
          }
        } else {
          this.options.log?.(`payment ${id}: cancel not confirmed yet: ${(e as Error).message}`);
        }
        await this.later(id, timing);
      }
      return;
    }
    try {
      const q = await this.provider.query(id);
      switch (q.state) {
        case 'succeeded':
          await this.resolved(this.payments.transition(id, { status: 'succeeded', tradeNo: q.tradeNo }));
          return;
        case 'failed':
          await this.resolved(
            this.payments.transition(id, { status: 'failed', failure: { code: q.code, message: q.message } }),
          );
          return;
        case 'closed':
          await this.resolved(
            this.payments.transition(id, closedByProviderChange(Number(row.deadline_at), this.clock.now())),
          );
          return;
        case 'user_paying':
          if (pastDeadline && cancelNotYet) await this.at(id, cancelFrom);
          else if (pastDeadline) await this.cancelAtDeadline(id);
          else await this.later(id, timing, Number(row.deadline_at));
          return;
        case 'not_found':
          if (cancelNotYet) {
            await this.at(id, cancelFrom);
            return;
          }
          this.stats.cancels++;
          await this.provider.cancel(id);
          await this.resolved(
            this.payments.transition(id, {
              status: 'failed',
              failure: {
                code: 'provider_error',
                message: 'the provider has no record of the charge; the customer was not charged',
              },
            }),
          );
          return;
      }
    } catch (e) {
      if (!(e instanceof ProviderUnknownError)) this.options.log?.(`payment ${id}: ${(e as Error).message}`);
      this.stats.errors++;
      if (pastDeadline && !cancelNotYet) {
        // The query failed at the deadline: a cancel is safe either way (it closes or reverses).
        try {
          await this.cancelAtDeadline(id);
          return;
        } catch {
          // the provider is down: keep trying
        }
        await this.later(id, timing);
        return;
      }
      // Before the deadline: try again, but never later than the deadline (the check there cancels).
      await this.later(id, timing, Math.max(Number(row.deadline_at), cancelFrom));
    }
  }

  /** Cancels at the deadline, or a cancel someone asked for that the provider has not confirmed yet. */
  private async cancelAtDeadline(id: string, by: 'deadline' | 'register' = 'deadline'): Promise<void> {
    this.stats.cancels++;
    const { reversed } = await this.provider.cancel(id);
    await this.resolved(this.payments.transition(id, canceledChange(reversed, by)));
  }

  private async resolved(p: Promise<boolean>): Promise<void> {
    if (await p) this.stats.resolved++;
  }

  /** Schedules the next check in 3-5 s (the provider's checkEveryMs), never past the deadline (the check at
   * the deadline cancels). */
  private async later(id: string, timing: PaymentTiming, deadline = Infinity): Promise<void> {
    const [lo, hi] = timing.checkEveryMs;
    const now = this.clock.now();
    await this.at(id, Math.min(now + lo + Math.random() * (hi - lo), Math.max(deadline, now + 1)));
  }

  private async at(id: string, when: number): Promise<void> {
    await this.db.run(
      "UPDATE payments SET next_check_at = $1, lease_until = NULL WHERE id = $2 AND status = 'pending'",
      [Math.round(when), id],
    );
  }
}
