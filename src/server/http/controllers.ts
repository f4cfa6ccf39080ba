/**
 * The server's HTTP API (DESIGN.md, "Server HTTP API"). Controllers are thin: read the caller and the
 * body, call one service method, shape the answer.
 */
import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Inject,
  Ip,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Res,
  UseGuards,
} from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { ApiError } from '../api-error';
import { reconcile, ReportsService } from '../reports.service';
import { Device } from '../stores.service';
import { AdminGuard, AdminOrDeviceGuard, Caller, CurrentCaller, CurrentDevice, DeviceGuard } from './auth';
import { CreatePaymentInput } from '../payments.service';
import { ShapePipe } from './body-shape';
import {
  CANCEL_ORDER_SHAPE,
  CREATE_PAYMENT_SHAPE,
  CreateStoreDto,
  RefundDto,
  RegisterDeviceDto,
  RegistrationCodeDto,
  UpdateStoreDto,
} from './dto';
import { SERVER_CONTEXT, ServerContext } from './server-context';

function idempotencyKey(value: string | undefined): string {
  if (!value)
    throw ApiError.badRequest(
      'idempotency_key_required',
      'send an Idempotency-Key header (any unique string up to 255 characters) so a retry can never charge twice',
    );
  if (value.length > 255 || !/^[\x21-\x7e]+$/.test(value)) {
    throw ApiError.badRequest(
      'invalid_idempotency_key',
      'Idempotency-Key must be 1-255 printable ASCII characters without spaces',
    );
  }
  return value;
}

@Controller('v1/stores')
@UseGuards(AdminGuard)
export class StoresController {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  @Post()
  create(@Body() dto: CreateStoreDto) {
    return this.ctx.stores.createStore(dto.name, dto.maxPaymentValue);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.ctx.stores.getStore(id);
  }

  @Patch(':id')
  update(@Param('id') id: string, @Body() dto: UpdateStoreDto) {
    return this.ctx.stores.updateStore(id, { maxPaymentValue: dto.maxPaymentValue });
  }

  @Get(':id/registration-codes')
  codes(@Param('id') id: string) {
    return this.ctx.stores.listRegistrationCodes(id);
  }

  @Post(':id/registration-codes')
  code(@Param('id') id: string, @Body() dto: RegistrationCodeDto) {
    return this.ctx.stores.createRegistrationCode(id, dto.role);
  }

  @Post(':id/lan-keys/rotate')
  @HttpCode(200)
  rotate(@Param('id') id: string) {
    return this.ctx.stores.rotateLanKey(id);
  }

  @Post(':id/lan-keys/retire-old')
  @HttpCode(200)
  retire(@Param('id') id: string) {
    return this.ctx.stores.retireOldLanKeys(id);
  }

  /** The store's wallet accounts: ids, file paths, and whether each can be used now (never a key). */
  @Get(':id/wallets')
  async wallets(@Param('id') id: string) {
    await this.ctx.stores.getStore(id);
    return this.ctx.wallets.list(id);
  }

  /** Sets the store's account for `alipay` or `wechat`; every file is checked first (422 naming it). */
  @Put(':id/wallets/:provider')
  async putWallet(@Param('id') id: string, @Param('provider') provider: string, @Body() body: unknown) {
    await this.ctx.stores.getStore(id);
    return this.ctx.wallets.put(id, provider, body);
  }

  @Delete(':id/wallets/:provider')
  @HttpCode(204)
  async deleteWallet(@Param('id') id: string, @Param('provider') provider: string) {
    await this.ctx.stores.getStore(id);
    await this.ctx.wallets.remove(id, provider);
  }

  /** One signed harmless call per account: whether the credentials work, in plain words. */
  @Post(':id/wallets/check')
  @HttpCode(200)
  async checkWallets(@Param('id') id: string) {
    await this.ctx.stores.getStore(id);
    return this.ctx.wallets.check(id);
  }
}

@Controller('v1/devices')
export class DevicesController {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  @Post('register')
  @HttpCode(201)
  register(@Body() dto: RegisterDeviceDto, @Ip() ip: string) {
    return this.ctx.stores.register(dto, ip);
  }

  @Get('me')
  @UseGuards(DeviceGuard)
  async me(@CurrentDevice() device: Device) {
    return {
      ...device,
      lanKeys: await this.ctx.stores.lanKeys(device.storeId),
      serverPublicKey: this.ctx.serverPublicKey,
    };
  }
}

@Controller('v1/payments')
@UseGuards(DeviceGuard)
export class PaymentsController {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  @Post()
  async create(
    @CurrentDevice() device: Device,
    @Headers('idempotency-key') key: string | undefined,
    @Body(new ShapePipe<CreatePaymentInput>(CREATE_PAYMENT_SHAPE)) body: CreatePaymentInput,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const r = await this.ctx.payments.create(device, idempotencyKey(key), body);
    reply.status(r.status);
    if (r.replayed) {
      reply.header('Idempotent-Replayed', 'true');
      this.ctx.metrics.inc('payconnect_idempotent_replays_total');
    } else {
      this.ctx.metrics.inc('payconnect_payments_created_total');
    }
    return r.body;
  }

  /** `?orderId=` or `?idempotencyKey=`; `&signed=true` wraps each as `{payment, signature}`. */
  @Get()
  async list(
    @CurrentDevice() device: Device,
    @Query('orderId') orderId: string | undefined,
    @Query('idempotencyKey') key: string | undefined,
    @Query('signed') signed: string | undefined,
  ) {
    if (!orderId && !key) {
      throw ApiError.badRequest(
        'order_id_required',
        'say which payments: GET /v1/payments?orderId=… or ?idempotencyKey=…',
      );
    }
    const list = orderId
      ? await this.ctx.payments.listByOrder(device, orderId)
      : await this.ctx.payments.findByIdempotencyKey(device, key!);
    return signed === 'true' ? list.map((p) => this.ctx.payments.signed(device, p)) : list;
  }

  @Get(':id')
  async get(
    @CurrentDevice() device: Device,
    @Param('id') id: string,
    @Query('signed') signed: string | undefined,
  ) {
    const payment = await this.ctx.payments.get(device, id);
    return signed === 'true' ? this.ctx.payments.signed(device, payment) : payment;
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@CurrentDevice() device: Device, @Param('id') id: string) {
    return this.ctx.payments.cancel(device, id);
  }

  @Post(':id/refunds')
  async refund(
    @CurrentDevice() device: Device,
    @Param('id') id: string,
    @Headers('idempotency-key') key: string | undefined,
    @Body() dto: RefundDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const r = await this.ctx.refunds.refund(device, id, idempotencyKey(key), dto);
    reply.status(r.status);
    if (r.replayed) reply.header('Idempotent-Replayed', 'true');
    return r.body;
  }
}

/** Orders as the register sees them: a cancel closes the order to new payments (the plugin only). */
@Controller('v1/orders')
@UseGuards(DeviceGuard)
export class OrdersController {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  @Post('cancel')
  @HttpCode(200)
  cancel(
    @CurrentDevice() device: Device,
    @Body(new ShapePipe<{ orderId: string }>(CANCEL_ORDER_SHAPE)) body: { orderId: string },
  ) {
    return this.ctx.payments.closeOrder(device, body.orderId);
  }
}

/** A payment's history notes (why it ended as it did, beyond its status): the admin, or its store's devices. */
@Controller('v1/payments')
@UseGuards(AdminOrDeviceGuard)
export class PaymentHistoryController {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  @Get(':id/history')
  history(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    return this.ctx.payments.history(caller.kind === 'device' ? caller.device : undefined, id);
  }
}

@Controller('v1/reports')
export class ReportsController {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  /** The store a report is about: a device's own; the admin names it with ?storeId=. */
  private async reportStore(caller: Caller, storeId: string | undefined): Promise<string> {
    if (caller.kind === 'admin') {
      if (!storeId)
        throw ApiError.badRequest('store_id_required', 'the admin must name the store: ?storeId=…');
      return (await this.ctx.stores.getStore(storeId)).id;
    }
    if (storeId && storeId !== caller.device.storeId)
      throw ApiError.forbidden("a device can read only its own store's report");
    return caller.device.storeId;
  }

  /** A device gets its own store's report; the admin names the store with ?storeId=. */
  @Get('settlement')
  @UseGuards(AdminOrDeviceGuard)
  async settlement(
    @CurrentCaller() caller: Caller,
    @Query('date') date: string | undefined,
    @Query('storeId') storeId: string | undefined,
    @Query('format') format: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const store = await this.reportStore(caller, storeId);
    const report = await this.ctx.reports.settlement(
      store,
      date ?? new Date(this.ctx.clock.now()).toISOString().slice(0, 10),
    );
    if (format === 'csv') {
      reply.header('content-type', 'text/csv; charset=utf-8');
      return ReportsService.toCsv(report);
    }
    if (format !== undefined && format !== 'json')
      throw ApiError.badRequest('invalid_format', 'format must be json or csv');
    return report;
  }

  /**
   * Our ledger against each wallet provider's bill for one China-time day, trade by trade (the nightly
   * reconciliation): a device gets its own store; the admin names it with ?storeId=.
   */
  @Get('reconciliation')
  @UseGuards(AdminOrDeviceGuard)
  async reconciliation(
    @CurrentCaller() caller: Caller,
    @Query('date') date: string | undefined,
    @Query('storeId') storeId: string | undefined,
  ) {
    const store = await this.reportStore(caller, storeId);
    // Default: yesterday in China time, the last day whose bills are complete.
    const day =
      date ?? new Date(this.ctx.clock.now() + 8 * 3_600_000 - 86_400_000).toISOString().slice(0, 10);
    const wallets = this.ctx.wallets;
    return reconcile(
      this.ctx.db,
      { providers: (s) => wallets.providerNames(s), bill: (s, p, d) => wallets.bill(s, p, d) },
      store,
      day,
    );
  }
}

@Controller()
export class HealthController {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  @Get('healthz')
  async health() {
    await this.ctx.db.query('SELECT 1 AS ok');
    return { status: 'ok', database: this.ctx.db.kind };
  }

  /** Prometheus text, for the admin's scraper only (`Authorization: Bearer <admin token>`): it tells traffic. */
  @Get('metrics')
  @UseGuards(AdminGuard)
  async metrics(@Res({ passthrough: true }) reply: FastifyReply) {
    reply.header('content-type', 'text/plain; version=0.0.4');
    return this.ctx.metrics.render();
  }
}
