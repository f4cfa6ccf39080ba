import { holdPort, portHolder } from './held-ports';

describe('held ports', () => {
  it('knows a held serial port and its holder until released; COM names in any case', () => {
    const release = holdPort({ serial: 'COM3' }, 'serial-display options.input');
    expect(portHolder({ serial: 'COM3' })).toBe('serial-display options.input');
    expect(portHolder({ serial: 'com3' })).toBe('serial-display options.input');
    expect(portHolder({ serial: '\\\\.\\COM3' })).toBe('serial-display options.input');
    expect(portHolder({ serial: 'COM4' })).toBeUndefined();
    release();
    expect(portHolder({ serial: 'COM3' })).toBeUndefined();
  });

  it('keeps a port held twice until both release; a second release does nothing', () => {
    const a = holdPort({ serial: '/dev/ttyS0' }, 'printer-tap a');
    const b = holdPort({ serial: '/dev/ttyS0' }, 'printer-tap b');
    a();
    a();
    expect(portHolder({ serial: '/dev/ttyS0' })).toBe('printer-tap b');
    expect(portHolder({ serial: '/dev/TTYS0' })).toBeUndefined(); // device paths are case-sensitive
    b();
    expect(portHolder({ serial: '/dev/ttyS0' })).toBeUndefined();
  });

  it('TCP: the same port on the same host, or on a wildcard host on either side; never port 0', () => {
    const release = holdPort({ tcp: { host: '127.0.0.1', port: 9100 } }, 'printer-tap options.listen');
    expect(portHolder({ tcp: { host: '127.0.0.1', port: 9100 } })).toBe('printer-tap options.listen');
    expect(portHolder({ tcp: { host: '0.0.0.0', port: 9100 } })).toBe('printer-tap options.listen');
    expect(portHolder({ tcp: { host: '127.0.0.1', port: 9101 } })).toBeUndefined();
    expect(portHolder({ tcp: { host: '127.0.0.2', port: 9100 } })).toBeUndefined();
    expect(portHolder({ serial: '9100' })).toBeUndefined();
    release();
    const wildcard = holdPort({ tcp: { host: '::', port: 47812 } }, 'native-hook options.listen');
    expect(portHolder({ tcp: { host: '[::1]', port: 47812 } })).toBe('native-hook options.listen');
    expect(portHolder({ tcp: { host: 'localhost', port: 47812 } })).toBe('native-hook options.listen');
    wildcard();
    const zero = holdPort({ tcp: { host: '127.0.0.1', port: 0 } }, 'x');
    expect(portHolder({ tcp: { host: '127.0.0.1', port: 0 } })).toBeUndefined();
    zero();
  });
});
