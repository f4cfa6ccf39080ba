/**
 * Who is calling: the admin (the reseller's tooling, with the admin token) or a registered device (its
 * own bearer token). Guards attach the device to the request; controllers read it with @CurrentDevice().
 */
import { CanActivate, createParamDecorator, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { FastifyRequest } from 'fastify';
import { ApiError } from '../api-error';
import { sameHash, sha256 } from '../server-crypto';
import { Device } from '../stores.service';
import { SERVER_CONTEXT, ServerContext } from './server-context';

/** Who is calling, for a route open to the admin and to devices. */
export type Caller = { kind: 'admin' } | { kind: 'device'; device: Device };

type Req = FastifyRequest & { device?: Device; caller?: Caller };

export function bearer(req: { headers: Record<string, string | string[] | undefined> }): string | undefined {
  const h = req.headers.authorization;
  const value = Array.isArray(h) ? h[0] : h;
  const m = /^Bearer\s+(\S+)$/i.exec(value ?? '');
  return m?.[1];
}

@Injectable()
export class AdminGuard implements CanActivate {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  canActivate(context: ExecutionContext): boolean {
    const token = bearer(context.switchToHttp().getRequest<Req>());
    if (!token)
      throw ApiError.unauthorized('this call needs the admin token: Authorization: Bearer <admin token>');
    if (!sameHash(sha256(token), this.ctx.adminTokenHash))
      throw ApiError.unauthorized('the admin token is not valid');
    return true;
  }
}

@Injectable()
export class DeviceGuard implements CanActivate {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Req>();
    const token = bearer(req);
    if (!token) throw ApiError.unauthorized();
    const device = await this.ctx.stores.authenticate(token);
    if (!device) throw ApiError.unauthorized('the device token is not valid; register the device again');
    req.device = device;
    return true;
  }
}

/** Lets in the admin and any registered device, and says which (read it with @CurrentCaller()). */
@Injectable()
export class AdminOrDeviceGuard implements CanActivate {
  constructor(@Inject(SERVER_CONTEXT) private readonly ctx: ServerContext) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Req>();
    const token = bearer(req);
    if (!token) throw ApiError.unauthorized();
    if (sameHash(sha256(token), this.ctx.adminTokenHash)) {
      req.caller = { kind: 'admin' };
      return true;
    }
    const device = await this.ctx.stores.authenticate(token);
    if (!device) throw ApiError.unauthorized('the token is not valid');
    req.device = device;
    req.caller = { kind: 'device', device };
    return true;
  }
}

export const CurrentCaller = createParamDecorator((_: unknown, context: ExecutionContext): Caller => {
  return context.switchToHttp().getRequest<Req>().caller!;
});

export const CurrentDevice = createParamDecorator((_: unknown, context: ExecutionContext): Device => {
  return context.switchToHttp().getRequest<Req>().device!;
});
