/**
 * `payconnect capture watch` as a reseller runs it at the shop: the real command, a real manifest, real
 * files. It prints each captured order as one JSON line (amount in minor units) and each rejected input on
 * stderr, with no payment server and no LAN; --input points it elsewhere; an http-hook manifest is refused.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as iconv from 'iconv-lite';
import { ChildProc, freeTcpPort, killAllChildren, REPO_ROOT } from '../support/child-process';
import { systemPrerequisites } from '../support/prerequisites';
import { HookClient } from '../support/hook-client';
import { FarEnd, PtyPair } from '../support/pty';
import { waitFor } from '../support/wait';
import { writeFileDropManifest, writeHookManifest } from '../plugin/support/plugin-harness';

jest.setTimeout(30_000);

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-capture-cli-'));
});
afterAll(async () => {
  await killAllChildren();
  rmSync(tmp, { recursive: true, force: true });
});

const order = (no: string, amount: string) =>
  iconv.encode(
    JSON.stringify({ 单号: no, 金额: amount, 商品: [{ 名称: '拿铁', 数量: 1, 小计: amount }] }),
    'gb18030',
  );

it('prints each captured order as a JSON line and each rejected input on stderr, until stopped', async () => {
  const inbox = path.join(tmp, 'inbox');
  const elsewhere = path.join(tmp, 'elsewhere');
  mkdirSync(inbox);
  mkdirSync(elsewhere);
  mkdirSync(path.join(tmp, 'out'));
  const manifest = writeFileDropManifest(tmp, { id: 'watch-files', inbox, outbox: path.join(tmp, 'out') });
  // --input points the watch at another folder than the manifest's.
  writeFileSync(path.join(elsewhere, 'A.json'), order('销售-0001', '12.50'));
  writeFileSync(path.join(elsewhere, 'bad.json'), 'not json at all');
  writeFileSync(path.join(inbox, 'ignored.json'), order('IGNORED', '1.00'));
  const watch = ChildProc.spawn('capture', [
    'capture',
    'watch',
    '--manifest',
    manifest,
    '--input',
    elsewhere,
  ]);
  await waitFor(
    'the captured order line',
    () => watch.output.includes('"orderId":"销售-0001"'),
    15_000,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}; output: ${watch.output}`);
  });
  await waitFor('the rejected file line', () => /rejected .*bad\.json/.test(watch.output), 15_000);
  const line = watch.output.split('\n').find((l) => l.startsWith('{'))!;
  expect(JSON.parse(line)).toEqual({ orderId: '销售-0001', amount: 1250, currency: 'CNY', source: 'A.json' });
  expect(watch.output).not.toContain('IGNORED');
  await watch.stop();
  expect(watch.output).not.toMatch(/internal error/);
});

it('refuses an http-hook manifest (nothing to watch) and a bad manifest, naming why', async () => {
  const hook = writeHookManifest(tmp, {
    id: 'watch-hook',
    callback: 'http://127.0.0.1:9/cb',
    secret: 'x'.repeat(32),
  });
  const a = ChildProc.spawn('capture-hook', [
    'capture',
    'watch',
    '--manifest',
    hook,
    '--input',
    'tcp://127.0.0.1:9100',
  ]);
  expect((await a.waitExit(15_000)).code).toBe(2);
  expect(a.output).toMatch(/http-hook manifest has nothing to watch/);
  const b = ChildProc.spawn('capture-missing', [
    'capture',
    'watch',
    '--manifest',
    path.join(tmp, 'nope.yaml'),
  ]);
  expect((await b.waitExit(15_000)).code).toBe(1);
  expect(b.output).toMatch(/cannot read the manifest .*nope\.yaml/);
});

/** The bytes of an annotated hex fixture (`# comments`, hex pairs). */
function hexFixture(name: string): Buffer {
  const text = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'printer-tap', name), 'utf8');
  return Buffer.from(
    text
      .split('\n')
      .map((l) => l.replace(/#.*$/, ''))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}

/** `capture watch` on the shipped printer-tap-no-printer manifest, listening at `input` instead. */
function watchTap(name: string, input: string): ChildProc {
  const manifest = path.join(REPO_ROOT, 'manifests', 'printer-tap-no-printer.yaml');
  return ChildProc.spawn(name, ['capture', 'watch', '--manifest', manifest, '--input', input]);
}

it('reads the amount due off a Chinese receipt printed to the shipped printer-tap manifest', async () => {
  const port = await freeTcpPort();
  const watch = watchTap('capture-tap', `tcp://127.0.0.1:${port}`);
  await waitFor('the tap to listen', () => watch.output.includes('watching printer-tap-no-printer'), 15_000);
  // The register prints, in small pieces, and hangs up.
  const receipt = hexFixture('chinese-80mm.hex');
  await new Promise<void>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', async () => {
      for (let i = 0; i < receipt.length; i += 7) s.write(receipt.subarray(i, i + 7));
      s.end();
    });
    s.on('close', () => resolve());
    s.on('error', reject);
    s.resume();
  });
  await waitFor('the captured receipt line', () => watch.output.includes('"amount":8650'), 15_000);
  const line = watch.output.split('\n').find((l) => l.includes('"amount":8650'))!;
  expect(JSON.parse(line)).toMatchObject({ orderId: '20261129-0042', amount: 8650, currency: 'CNY' });
  await watch.stop();
});

const serialSys = systemPrerequisites(['socat']);

serialSys.describe('capture watch on a serial printer line', () => {
  it('reads a receipt printed to the printer-tap manifest through --input serial:PATH?baud=9600', async () => {
    const pair = await PtyPair.open(tmp, 'TAPREG');
    let register: FarEnd | undefined;
    const watch = watchTap('capture-tap-serial', `serial:${pair.near}?baud=9600&parity=none`);
    try {
      await waitFor(
        'the tap to open the port',
        () => watch.output.includes('watching printer-tap-no-printer'),
        15_000,
      );
      register = await FarEnd.open(pair.far);
      // A status poll first: with no printer the tap answers "online" itself.
      await register.write(Buffer.from([0x10, 0x04, 0x01]));
      expect([...(await register.waitFor(1))]).toEqual([0x12]);
      const receipt = hexFixture('chinese-80mm.hex');
      for (let i = 0; i < receipt.length; i += 7) await register.write(receipt.subarray(i, i + 7));
      await waitFor('the captured receipt line', () => watch.output.includes('"amount":8650'), 15_000);
      const line = watch.output.split('\n').find((l) => l.includes('"amount":8650'))!;
      expect(JSON.parse(line)).toEqual({
        orderId: '20261129-0042',
        amount: 8650,
        currency: 'CNY',
        source: `serial:${pair.near} job 1`,
      });
    } finally {
      await watch.stop();
      await register?.close();
      await pair.stop();
    }
  });
});

it('takes an order from the hook library with the token kept in --data, and says where the token is', async () => {
  const port = await freeTcpPort();
  const data = path.join(tmp, 'hook-data');
  const watch = ChildProc.spawn('capture-hook', [
    'capture',
    'watch',
    '--manifest',
    path.join(REPO_ROOT, 'manifests', 'native-hook.yaml'),
    '--input',
    `tcp://127.0.0.1:${port}`,
    '--data',
    data,
  ]);
  const tokenFile = path.join(data, 'native-hook.token');
  await waitFor(
    'the token line',
    () => watch.output.includes(`the hook library's token is ${tokenFile}`),
    15_000,
  );
  const client = await HookClient.connect(port);
  try {
    expect(
      await client.request({ op: 'hello', token: readFileSync(tokenFile, 'utf8').trim() }),
    ).toMatchObject({
      ok: true,
    });
    expect(
      await client.request({ op: 'submit', order: { orderId: '收银-0007', amount: '23.40' } }),
    ).toMatchObject({ ok: true });
  } finally {
    client.close();
  }
  await waitFor('the captured order line', () => watch.output.includes('"orderId":"收银-0007"'), 15_000);
  const line = watch.output.split('\n').find((l) => l.includes('收银-0007'))!;
  expect(JSON.parse(line)).toMatchObject({ orderId: '收银-0007', amount: 2340, currency: 'CNY' });
  await watch.stop();
  // The folder given with --data is the register's to keep: the token stays.
  expect(readFileSync(tokenFile, 'utf8')).toMatch(/^[0-9a-f]{64}/);
});
