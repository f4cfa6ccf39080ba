import 'reflect-metadata';
import { Body, Controller, Get, Module, NotFoundException, Param, Post } from '@nestjs/common';
import {
  ManifestError,
  ProtocolError,
  ProviderError,
  TransportError,
  WriteBackError,
} from '../protocol/errors';
import { DeviceApiError, DeviceErrorFilter } from './device-errors';
import { DeviceHttp, startDeviceHttp } from './device-http';

const THROWN: Record<string, () => never> = {
  api: () => {
    throw new DeviceApiError(409, 'offer_taken', 'T2 has this order');
  },
  protocol: () => {
    throw new ProtocolError('money.too_many_decimals', 'amount: 12.505 has more decimals than CNY allows');
  },
  manifest: () => {
    throw new ManifestError('manifest.bad_field', 'options.inbox must be a folder');
  },
  transport: () => {
    throw new TransportError('lan.no_ack', 'T1 did not acknowledge the offer');
  },
  provider: () => {
    throw new ProviderError('provider.down', 'the payment server did not answer');
  },
  writeback: () => {
    throw new WriteBackError('http_hook.callback_failed', 'the register did not accept the result');
  },
  nest: () => {
    throw new NotFoundException('no such order');
  },
  bug: () => {
    throw new TypeError("Cannot read properties of undefined (reading 'x')");
  },
};

@Controller()
class ThrowingController {
  @Get('throw/:what')
  throw(@Param('what') what: string): never {
    return THROWN[what]();
  }

  @Post('echo')
  echo(@Body() body: unknown): unknown {
    return body;
  }
}

@Module({ controllers: [ThrowingController] })
class ThrowingModule {}

describe('DeviceErrorFilter: the plugin and the unit answer every failure the same way', () => {
  let http: DeviceHttp;

  beforeAll(async () => {
    http = await startDeviceHttp(ThrowingModule, {
      port: 0,
      bodyLimit: 1024,
      filter: new DeviceErrorFilter('the unit'),
      logger: false,
    });
  });
  afterAll(() => http.app.close());

  const get = async (path: string) => {
    const r = await fetch(`${http.url}${path}`);
    return { status: r.status, body: await r.json() };
  };

  it.each([
    ['api', 409, 'offer_taken', 'T2 has this order'],
    ['protocol', 400, 'money.too_many_decimals', 'amount: 12.505 has more decimals than CNY allows'],
    ['manifest', 400, 'manifest.bad_field', 'options.inbox must be a folder'],
    ['transport', 503, 'lan.no_ack', 'T1 did not acknowledge the offer'],
    ['provider', 502, 'provider.down', 'the payment server did not answer'],
    ['writeback', 502, 'http_hook.callback_failed', 'the register did not accept the result'],
    ['nest', 404, 'not_found', 'no such order'],
  ])('%s error → %i %s', async (what, status, code, message) => {
    expect(await get(`/throw/${what}`)).toEqual({ status, body: { error: { code, message } } });
  });

  it('answers a bug with 500 and no detail of it', async () => {
    const r = await get('/throw/bug');
    expect(r).toEqual({
      status: 500,
      body: { error: { code: 'internal_error', message: 'the unit failed to handle this request' } },
    });
  });

  it('answers malformed JSON with 400 invalid_json and an oversized body with 413 body_too_large', async () => {
    const post = async (body: string) => {
      const r = await fetch(`${http.url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      return { status: r.status, body: await r.json() };
    };
    expect(await post('{"x": 1}')).toEqual({ status: 201, body: { x: 1 } });
    expect(await post('{"orderId": ')).toEqual({
      status: 400,
      body: { error: { code: 'invalid_json', message: 'the body is not valid JSON' } },
    });
    const big = await post(JSON.stringify({ x: 'y'.repeat(2000) }));
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: { code: 'body_too_large' } });
  });
});
