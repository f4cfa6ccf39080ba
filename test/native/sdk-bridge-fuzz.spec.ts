/**
 * The sdk bridge's line reader fuzzed for real: the Linux build (native/bridge/sdk_bridge.c) connects to
 * this test as it connects to the adapter, and is sent request lines fast-check makes (random text, JSON
 * of every shape, requests with fields of the wrong type, split into random chunks). It must answer each
 * line with exactly one answer line the adapter can read, never die, and then still load the fake host
 * SDK and call it exactly. Skipped without gcc/make on a developer's machine, a failure under CI=true.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import fc from 'fast-check';
import { AnswerLines, BridgeAnswer, readAnswer } from '../../src/adapters/host-sdk/bridge-protocol';
import { requireSystem, systemPrerequisites } from '../support/prerequisites';
import { nativeGate } from './support/native-build';
import { BRIDGE_LINUX, FAKE_SDK_SO, makeSdk } from './support/sdk-build';

jest.setTimeout(120_000);

const built = systemPrerequisites([
  requireSystem(
    'the sdk bridge (make -C native sdk)',
    () => {
      if (!nativeGate.ok) return nativeGate.missing.join('; ');
      const r = makeSdk('sdk');
      return r.status === 0 || `make -C native sdk failed: ${r.out.trim().split('\n').pop()}`;
    },
    '`apt-get install -y gcc make util-linux`',
  ),
]);

/** The bridge, connected: send bytes, read answers. */
class Bridge {
  private readonly lines = new AnswerLines();
  private readonly answers: string[] = [];
  private wake?: () => void;

  private constructor(
    readonly child: ChildProcess,
    readonly socket: net.Socket,
    readonly hello: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.answers.push(...this.lines.push(chunk));
      this.wake?.();
    });
  }

  static async start(): Promise<Bridge> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const child = spawn(BRIDGE_LINUX, [], {
      env: {
        ...process.env,
        PAYCONNECT_BRIDGE_ADDRESS: `127.0.0.1:${port}`,
        PAYCONNECT_BRIDGE_TOKEN: 'ab12',
      },
      stdio: 'ignore',
    });
    const socket = await new Promise<net.Socket>((r) => server.once('connection', r));
    server.close();
    const hello = await new Promise<string>((r) => {
      let text = '';
      const on = (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) {
          socket.off('data', on);
          r(text);
        }
      };
      socket.on('data', on);
    });
    return new Bridge(child, socket, hello);
  }

  /** Sends the bytes in chunks; resolves with the next `n` answers. */
  async exchange(bytes: Buffer, n: number, cuts: number[] = [bytes.length || 1]): Promise<string[]> {
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const size = cuts[i % cuts.length];
      this.socket.write(bytes.subarray(at, at + size));
      at += size;
    }
    const end = Date.now() + 10_000;
    while (this.answers.length < n) {
      if (Date.now() > end || this.child.exitCode !== null)
        throw new Error(`${this.answers.length} answers of ${n}; bridge exit ${this.child.exitCode}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
    }
    return this.answers.splice(0, n);
  }

  async request(body: object): Promise<BridgeAnswer> {
    const [line] = await this.exchange(Buffer.from(`${JSON.stringify(body)}\n`), 1);
    return readAnswer(line);
  }

  stop(): void {
    this.socket.destroy();
    this.child.kill('SIGKILL');
  }
}

const garbageLine = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.json(),
    fc
      .record({
        id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.double()),
        op: fc.oneof(fc.constantFrom('load', 'resolve', 'call', 'hello', ''), fc.string()),
        fn: fc.oneof(fc.integer({ min: -3, max: 12 }), fc.string()),
        args: fc.oneof(fc.string(), fc.integer()),
        params: fc.oneof(
          fc.constantFrom('b64 i4 o8', 'f8', 'b0', 'b999999', 's s s s s s s s s'),
          fc.string(),
        ),
      })
      .map((o) => JSON.stringify(o)),
  )
  .map((s) => s.replace(/\n/g, ' '));

built.describe('sdk bridge line reader, fuzzed', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await Bridge.start();
  });
  afterAll(() => bridge?.stop());

  it('says hello with the token and its width', () => {
    expect(JSON.parse(bridge.hello)).toEqual({
      bridge: 'payconnect-sdk-bridge',
      version: 1,
      token: 'ab12',
      bits: 64,
    });
  });

  it('answers every line once, with an answer the adapter reads, however it is chunked', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(garbageLine, { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }),
        async (lines, cuts) => {
          const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
          const answers = await bridge.exchange(bytes, lines.length, cuts);
          for (const a of answers) expect(() => readAnswer(a)).not.toThrow();
        },
      ),
      { numRuns: 150 },
    );
    expect(bridge.child.exitCode).toBeNull();
  });

  it('refuses an id the adapter could not read back (above 2^53-1) like a missing one (found by the fuzz above)', async () => {
    const answers = await bridge.exchange(
      Buffer.from(
        '{"id":9007199254740992,"op":"load","fn":0,"args":"","params":"b64 i4 o8"}\n{"id":9007199254740991}\n',
      ),
      2,
    );
    expect(answers.map((a) => readAnswer(a))).toEqual([
      {
        id: 0,
        ok: false,
        code: 'bad_request',
        message: 'a request needs a whole number id from 0 to 2^53-1',
      },
      {
        id: 9007199254740991,
        ok: false,
        code: 'bad_request',
        message: 'a request needs op: load, resolve or call',
      },
    ]);
  });

  it('answers a line over 1 MiB once and reads the next one', async () => {
    const answers = await bridge.exchange(Buffer.from(`${'x'.repeat(1024 * 1024 + 10)}\n{"id":5}\n`), 2);
    expect(answers.map((a) => readAnswer(a))).toEqual([
      { id: 0, ok: false, code: 'bad_request', message: 'a request line is longer than 1 MiB' },
      { id: 5, ok: false, code: 'bad_request', message: 'a request needs op: load, resolve or call' },
    ]);
  });

  it('after all that, still loads the fake SDK and calls it exactly', async () => {
    // The garbage may have loaded the library already only if it sent a valid load: it cannot (no path).
    expect(await bridge.request({ id: 1, op: 'load', library: FAKE_SDK_SO, convention: 'cdecl' })).toEqual({
      id: 1,
      ok: true,
    });
    expect(
      await bridge.request({ id: 2, op: 'resolve', fn: 0, name: 'FakeSdk_LastResult', params: 'b128 i4' }),
    ).toEqual({ id: 2, ok: true });
    // No FAKESDK_DIR in the bridge's environment: the fake answers 1 (no result) and leaves the buffer empty.
    expect(await bridge.request({ id: 3, op: 'call', fn: 0, args: '_ 128' })).toEqual({
      id: 3,
      ok: true,
      ret: 1,
      out: '- _',
    });
    expect(await bridge.request({ id: 4, op: 'call', fn: 0, args: '_ 99999999999' })).toMatchObject({
      id: 4,
      ok: false,
      code: 'bad_request',
    });
    expect(
      await bridge.request({ id: 5, op: 'resolve', fn: 1, name: 'GetCurrentOrder', params: 'b64 i4 d8' }),
    ).toMatchObject({ id: 5, ok: false, code: 'bad_signature' });
    expect(
      await bridge.request({ id: 6, op: 'resolve', fn: 1, name: 'NoSuchFunction', params: '' }),
    ).toMatchObject({
      id: 6,
      ok: false,
      code: 'no_symbol',
      message: expect.stringContaining('NoSuchFunction'),
    });
  });
});
