/**
 * `payconnect provider check --store ID`: asks the payment server to make one signed, harmless call per
 * wallet account of the store (POST /v1/stores/:id/wallets/check) and prints, per provider, whether the
 * credentials work or what is wrong in plain words (wrong key, clock skew, unknown app id, unreachable).
 * Exit 0 when every account works, 1 when one does not (or the store has none).
 */
import { Command, parse, UsageError } from './args';

interface CheckLine {
  provider: string;
  result: { ok: boolean; problem?: string; message: string };
}

const LABEL: Record<string, string> = { alipay: 'Alipay', wechat: 'WeChat Pay' };

export const providerCheck: Command = {
  usage: `payconnect provider check --store ID [--server URL]

Checks the store's wallet accounts (Alipay, WeChat Pay) with one signed call each, made by the payment
server with the key files it was given, and says what is wrong in plain words.

  --store ID      the store's id
  --server URL    the payment server (default http://127.0.0.1:8700)

Environment:
  PAYCONNECT_ADMIN_TOKEN   the server's admin token (required)`,
  async run(argv) {
    const { values } = parse(argv, { store: { type: 'string' }, server: { type: 'string' } });
    const store = values.store as string | undefined;
    if (!store) throw new UsageError('--store is required (the store id, as in the admin API)');
    const server = ((values.server as string | undefined) ?? 'http://127.0.0.1:8700').replace(/\/+$/, '');
    const token = process.env.PAYCONNECT_ADMIN_TOKEN;
    if (!token) throw new UsageError("set PAYCONNECT_ADMIN_TOKEN to the payment server's admin token");
    let res: Response;
    try {
      res = await fetch(`${server}/v1/stores/${encodeURIComponent(store)}/wallets/check`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    } catch (e) {
      process.stderr.write(
        `cannot reach the payment server at ${server} (${(e as Error).cause ?? (e as Error).message}); is it running? give --server\n`,
      );
      return 1;
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch {
        // not our error shape
      }
      process.stderr.write(
        res.status === 401
          ? `the server refused the admin token (401): check PAYCONNECT_ADMIN_TOKEN\n`
          : `the server answered ${res.status}: ${message}\n`,
      );
      return 1;
    }
    const lines = JSON.parse(text) as CheckLine[];
    if (lines.length === 0) {
      process.stdout.write(
        `store ${store} has no wallet account: its payments go to the built-in simulator. Set one with PUT /v1/stores/${store}/wallets/alipay or …/wechat (docs/providers/)\n`,
      );
      return 1;
    }
    let ok = true;
    for (const l of lines) {
      const name = LABEL[l.provider] ?? l.provider;
      if (l.result.ok) process.stdout.write(`${name}: OK — ${l.result.message}\n`);
      else {
        ok = false;
        process.stdout.write(`${name}: NOT WORKING (${l.result.problem}) — ${l.result.message}\n`);
      }
    }
    return ok ? 0 : 1;
  },
};
