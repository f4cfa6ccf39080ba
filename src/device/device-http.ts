/**
 * The local HTTP side of a device app (the plugin's API and status page, a unit's API and touch page):
 * NestJS on Fastify with the app's error filter, listening on the configured port (0 = any free port).
 */
import { ExceptionFilter, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';

export interface DeviceHttp {
  app: NestFastifyApplication;
  url: string;
  port: number;
}

export async function startDeviceHttp(
  module: Type<unknown>,
  o: { port: number; host?: string; bodyLimit: number; filter: ExceptionFilter; logger?: boolean },
): Promise<DeviceHttp> {
  const app = await NestFactory.create<NestFastifyApplication>(
    module,
    new FastifyAdapter({ bodyLimit: o.bodyLimit }),
    {
      logger: o.logger === false ? false : ['error', 'warn'],
    },
  );
  app.useGlobalFilters(o.filter);
  const host = o.host ?? '127.0.0.1';
  await app.listen(o.port, host);
  const address = app.getHttpAdapter().getInstance().server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  return { app, url: `http://${host}:${port}`, port };
}

/** What the server answers a device that registers (POST /v1/devices/register). */
export interface DeviceRegistration {
  deviceId: string;
  storeId: string;
  token: string;
  lanKey: { id: number; version: number; key: string };
  lanKeys: { id: number; version: number; key: string }[];
  serverPublicKey: string;
}
