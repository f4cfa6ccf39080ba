/**
 * The host-sdk adapter with the fake host SDK (native/fakesdk/) built as a Linux .so with gcc and loaded
 * into this process with koffi (options.bridge: none), both directions: orders in from GetCurrentOrder,
 * results out through SetPayResult. Skipped without gcc/make on a developer's machine, a failure under CI=true.
 */
import koffi from 'koffi';
import { FAKE_SDK_SO, makeSdk } from './support/sdk-build';
import { describeHostSdkScenarios } from './support/host-sdk-scenarios';
import { nativeGate } from './support/native-build';
import { requireSystem, systemPrerequisites } from '../support/prerequisites';

jest.setTimeout(60_000);

const built = systemPrerequisites([
  requireSystem(
    'the fake host SDK and sdk bridge (make -C native sdk)',
    () => {
      if (!nativeGate.ok) return nativeGate.missing.join('; ');
      const r = makeSdk('sdk');
      return r.status === 0 || `make -C native sdk failed: ${r.out.trim().split('\n').pop()}`;
    },
    '`apt-get install -y gcc make util-linux`',
  ),
]);

built.describe('host-sdk with koffi', () => {
  describeHostSdkScenarios('koffi in process, libfakesdk.so', () => ({
    library: FAKE_SDK_SO,
    options: (library, extra) => `{ library: "${library}", convention: cdecl${extra ? `, ${extra}` : ''} }`,
    // The library koffi loads for the adapter is this one (dlopen hands out one copy per process).
    useRegister: (register) =>
      koffi.load(FAKE_SDK_SO).func('void FakeSdk_SetDir(const char *dir)')(register.dir),
  }));
});
