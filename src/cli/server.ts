import { createServerApp } from '../server/server-app';
import { parseDbUrl, redactDbUrl } from '../server/storage/db';
import { Command, intOption, parse, UsageError } from './args';
import { untilStopped } from './lan-options';

export const server: Command = {
  usage: `payconnect server [--port P] [--host ADDR] [--db URL]

Runs the payment server: device registration, payments through the wallet providers (Alipay and WeChat
Pay for stores with wallet accounts, the built-in simulator for the others), signed results pushed to
devices, reports. Stops on Ctrl-C (or Ctrl+Break, SIGTERM).

  --port P        HTTP port (default 8700)
  --host ADDR     address to listen on (default 127.0.0.1; 0.0.0.0 to serve the shop network)
  --db URL        sqlite:PATH (default sqlite:./var/server.db) or postgres://user@host:port/db

Environment:
  PAYCONNECT_ADMIN_TOKEN   the admin token; when unset, one is generated on first start and printed once
  PAYCONNECT_SIM_SPEED     divides the simulator's delays (tests use a large factor; default 1)
  PAYCONNECT_WALLET_SPEED  divides Alipay's and WeChat Pay's timing rules: ONLY against the local gateways
                           (payconnect gateway) in tests and demos; never set it with real providers`,
  async run(argv) {
    const { values } = parse(argv, {
      port: { type: 'string' },
      host: { type: 'string' },
      db: { type: 'string' },
    });
    const port = intOption(values.port as string | undefined, 'port', 8700, 0);
    let db;
    try {
      db = parseDbUrl((values.db as string | undefined) ?? 'sqlite:./var/server.db');
    } catch (e) {
      throw new UsageError(`--db: ${(e as Error).message}`);
    }
    const speedText = process.env.PAYCONNECT_SIM_SPEED;
    const simSpeed = speedText === undefined ? 1 : Number(speedText);
    if (!(simSpeed > 0) || !Number.isFinite(simSpeed))
      throw new UsageError(`PAYCONNECT_SIM_SPEED must be a number above 0, got "${speedText}"`);
    const walletText = process.env.PAYCONNECT_WALLET_SPEED;
    const walletTimeScale = walletText === undefined ? 1 : Number(walletText);
    if (!(walletTimeScale > 0) || !Number.isFinite(walletTimeScale))
      throw new UsageError(`PAYCONNECT_WALLET_SPEED must be a number above 0, got "${walletText}"`);
    if (walletTimeScale !== 1)
      process.stderr.write(
        `warning: PAYCONNECT_WALLET_SPEED=${walletText} shortens the wallet providers' timing rules: for local gateways only, never with real Alipay or WeChat Pay\n`,
      );
    const running = await createServerApp({
      port,
      host: values.host as string | undefined,
      db,
      adminToken: process.env.PAYCONNECT_ADMIN_TOKEN || undefined,
      simSpeed,
      walletTimeScale,
    });
    const where = db.kind === 'sqlite' ? `sqlite:${db.path}` : redactDbUrl(db.url);
    process.stdout.write(`payconnect server listening on ${running.url} (database ${where})\n`);
    if (running.generatedAdminToken) {
      process.stdout.write(
        `admin token (shown this once; keep it safe, or set PAYCONNECT_ADMIN_TOKEN): ${running.generatedAdminToken}\n`,
      );
    }
    await untilStopped(() => running.close());
    return 0;
  },
};
