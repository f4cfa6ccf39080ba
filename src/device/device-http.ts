/**
 * The local HTTP side of a device app (the plugin's API and status page, a unit's API and touch page):
 * NestJS on Fastify with the app's error filter, listening on the configured port (0 = any free port).
 *
 * Who may call it (docs/plugin.md, "Who may call the local APIs"): the register's software and support
 * tools (curl, scripts: no Origin header), and the app's own pages (same origin). Not any web page the
 * cashier happens to open, and not a DNS-rebinding page that makes a name of its own point at us:
 * - the Host header must name this machine: `localhost`, an IP address (a rebinding attack needs a DNS
 *   name, so an address literal cannot be one), this computer's name, or a name in `allowedHosts`;
 * - a request that changes state (POST, PUT, PATCH, DELETE) from a browser must come from our own origin:
 *   an `Origin` other than `http://<Host>` is refused, as is `Sec-Fetch-Site: cross-site`;
 * - a request body must be `application/json`: a web page can send a form or text/plain body to any
 *   address without asking, but not JSON.
 */
import { DynamicModule, ExceptionFilter, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { LanEndpoint, ServerLan } from '../lan';
import { deviceValidationPipe } from './device-validation';
import { CLOSE_GRACE_MS, closeWithGrace } from '../protocol/close-grace';

export interface DeviceHttp {
  app: NestFastifyApplication;
  url: string;
  port: number;
}

export interface DeviceHttpOptions {
  port: number;
  host?: string;
  bodyLimit: number;
  filter: ExceptionFilter;
  logger?: boolean;
  /** Host names besides localhost, IP addresses and this computer's name (e.g. `kasse.shop.lan`). */
  allowedHosts?: string[];
}

/**
 * Creates the app (its providers are built; nothing is started or listening yet) with the error filter,
 * the DTO validation pipe and the local-request guard. A device app then connects its LAN transport
 * (ServerLan) and calls listenDeviceHttp.
 */
export async function createDeviceHttp(
  module: Type<unknown> | DynamicModule,
  o: DeviceHttpOptions,
): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    module,
    new FastifyAdapter({ bodyLimit: o.bodyLimit }),
    {
      logger: o.logger === false ? false : ['error', 'warn'],
      abortOnError: false,
    },
  );
  app.useGlobalFilters(o.filter);
  app.useGlobalPipes(deviceValidationPipe());
  const guard = localRequestGuard(o.allowedHosts ?? []);
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      const refusal = guard({
        method: req.method,
        host: req.headers.host,
        origin: req.headers.origin,
        fetchSite: req.headers['sec-fetch-site'] as string | undefined,
        contentType: req.headers['content-type'],
        hasBody:
          Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined,
      });
      if (refusal)
        await reply
          .status(refusal.status)
          .header('content-type', 'application/json; charset=utf-8')
          .send({ error: { code: refusal.code, message: refusal.message } });
    });
  return app;
}

/** Starts the app (its lifecycle hooks run) and listens on the configured port (0 = any free port). */
export async function listenDeviceHttp(
  app: NestFastifyApplication,
  o: DeviceHttpOptions,
): Promise<DeviceHttp> {
  const host = o.host ?? '127.0.0.1';
  await app.listen(o.port, host);
  const address = app.getHttpAdapter().getInstance().server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  return { app, url: `http://${host}:${port}`, port };
}

/**
 * A device app as a Nest hybrid application: its HTTP API plus the LAN as a custom transport (ServerLan
 * over `endpoint`, whose messages go to the module's @EventPattern/@MessagePattern controllers). Started in
 * this order: the LAN handlers subscribe, then the app's lifecycle hooks run, then HTTP listens. On a
 * failure anything started is closed again.
 */
export async function startDeviceApp(
  module: DynamicModule,
  endpoint: LanEndpoint,
  o: DeviceHttpOptions,
): Promise<DeviceHttp> {
  const app = await createDeviceHttp(module, o);
  app.connectMicroservice(
    { strategy: new ServerLan({ endpoint: () => endpoint }) },
    { inheritAppConfig: true },
  );
  try {
    await app.startAllMicroservices();
    return await listenDeviceHttp(app, o);
  } catch (e) {
    await app.close().catch(() => undefined);
    throw e;
  }
}

/** How long a stopping device app lets open requests finish before it closes their connections. */
export const DEVICE_CLOSE_GRACE_MS = CLOSE_GRACE_MS;

/**
 * Closes a device app (its lifecycle hooks, the LAN transport, HTTP) within the grace (closeWithGrace). The
 * page's live streams are ended properly before that (the controllers' shutdown hooks); the register's calls
 * are idempotent and retried, as after a crash.
 */
export function closeDeviceApp(app: NestFastifyApplication): Promise<void> {
  return closeWithGrace(app, DEVICE_CLOSE_GRACE_MS);
}

export async function startDeviceHttp(
  module: Type<unknown> | DynamicModule,
  o: DeviceHttpOptions,
): Promise<DeviceHttp> {
  return listenDeviceHttp(await createDeviceHttp(module, o), o);
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

export interface LocalRequest {
  method: string;
  host?: string;
  origin?: string;
  fetchSite?: string;
  contentType?: string;
  hasBody: boolean;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The rules above as a pure function: undefined lets the request in, else the refusal to answer. */
export function localRequestGuard(
  allowedHosts: string[],
): (r: LocalRequest) => { status: number; code: string; message: string } | undefined {
  const names = new Set(['localhost', hostname().toLowerCase(), `${hostname().toLowerCase()}.local`]);
  for (const h of allowedHosts) names.add(h.toLowerCase());
  return (r) => {
    const host = hostOnly(r.host ?? '');
    if (!host || !(names.has(host) || isIP(host) !== 0)) {
      return {
        status: 421,
        code: 'foreign_host',
        message: `this device answers only to its own address (localhost, an IP address, ${hostname()}), not to "${host}"; open it by its address`,
      };
    }
    if (STATE_CHANGING.has(r.method)) {
      if (r.origin !== undefined && r.origin !== `http://${r.host}` && r.origin !== `https://${r.host}`) {
        return {
          status: 403,
          code: 'cross_origin',
          message: `refused a ${r.method} from the web page ${r.origin}: only this device's own pages, the register software and support tools may change anything here`,
        };
      }
      if (r.fetchSite === 'cross-site') {
        return {
          status: 403,
          code: 'cross_origin',
          message: `refused a ${r.method} from another site: only this device's own pages may change anything here`,
        };
      }
      if (r.hasBody && !/^application\/json\s*(;|$)/i.test(r.contentType ?? '')) {
        return {
          status: 415,
          code: 'unsupported_media_type',
          message: `send the body as JSON with Content-Type: application/json (got ${r.contentType ?? 'none'})`,
        };
      }
    }
    return undefined;
  };
}

/** The host name of a Host header, lower case, without port or IPv6 brackets. */
function hostOnly(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}
