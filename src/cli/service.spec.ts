/**
 * service install|uninstall against a fake Windows (FakeWindows: sc.exe's services, netsh, icacls,
 * schtasks), on Linux: the exact commands, above all those Wine only stubs (the firewall rule, the code
 * file's ACL, sc failure), the order of the steps and each step's error. The real run is
 * test/windows/service-install-wine.spec.ts.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CommandResult,
  FIREWALL_RULE,
  InstallOptions,
  installService,
  ServiceLayout,
  ServiceStepError,
  uninstallService,
  WindowsSystem,
} from './service';

class FakeWindows implements WindowsSystem {
  state: 'none' | 'STOPPED' | 'RUNNING' = 'none';
  calls: string[] = [];
  failing = new Map<string, CommandResult>();

  async run(exe: string, args: string[]): Promise<CommandResult> {
    const line = `${exe} ${args.join(' ')}`;
    this.calls.push(line);
    for (const [prefix, result] of this.failing) if (line.startsWith(prefix)) return result;
    if (exe === 'sc.exe') {
      const [verb] = args;
      if (verb === 'query')
        return this.state === 'none'
          ? { code: 1060, out: 'The specified service does not exist as an installed service.' }
          : { code: 0, out: `STATE              : ${this.state === 'RUNNING' ? 4 : 1}  ${this.state}` };
      if (verb === 'create') this.state = 'STOPPED';
      if (verb === 'start') this.state = 'RUNNING';
      if (verb === 'stop') this.state = 'STOPPED';
      if (verb === 'delete') this.state = 'none';
      return { code: 0, out: '' };
    }
    if (exe === 'schtasks.exe') return { code: 1, out: 'ERROR: The system cannot find the file specified.' };
    return { code: 0, out: '' };
  }

  async sleep(): Promise<void> {}
}

describe('service install / uninstall', () => {
  let tmp: string;
  let layout: ServiceLayout;
  let sys: FakeWindows;
  const said: string[] = [];
  const say = (l: string) => void said.push(l);
  const options = (o: Partial<InstallOptions> = {}): InstallOptions => ({
    manifest: 'demo',
    server: 'https://pay.example.com',
    lanInterface: '192.168.1.20',
    port: 8701,
    lanPort: 47810,
    pluginPort: 47811,
    nodeOptions: [],
    logMaxBytes: 10485760,
    logKeep: 5,
    ...o,
  });

  beforeEach(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'payconnect-service-'));
    const pkg = path.join(tmp, 'unzipped', 'payconnect');
    mkdirSync(path.join(pkg, 'app', 'bin'), { recursive: true });
    mkdirSync(path.join(pkg, 'app', 'manifests'), { recursive: true });
    for (const f of ['node.exe', 'payconnect-service.exe', 'app/bin/payconnect.js'])
      writeFileSync(path.join(pkg, f), '');
    copyFileSync(
      path.join(__dirname, '..', '..', 'manifests', 'demo.yaml'),
      path.join(pkg, 'app', 'manifests', 'demo.yaml'),
    );
    layout = {
      packageDir: pkg,
      installDir: path.join(tmp, 'Program Files', 'payconnect'),
      dataRoot: path.join(tmp, 'ProgramData', 'payconnect'),
    };
    sys = new FakeWindows();
    said.length = 0;
  });

  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('a first install creates and starts the service, opens the firewall for the plugin port only', async () => {
    await installService(layout, options({ registrationCode: 'ABCD-1234' }), sys, say);
    const exe = path.join(layout.installDir, 'payconnect-service.exe');
    const node = path.join(layout.installDir, 'node.exe');
    expect(sys.calls.filter((c) => !c.startsWith('sc.exe query'))).toEqual([
      'schtasks.exe /Query /TN payconnect',
      `icacls.exe ${path.join(layout.dataRoot, 'data', 'registration-code')} /inheritance:r /grant:r *S-1-5-18:F`,
      `sc.exe create payconnect binPath= "${exe}" start= auto DisplayName= payconnect`,
      'sc.exe description payconnect payconnect plugin for this register',
      'sc.exe failure payconnect reset= 86400 actions= restart/5000/restart/10000/restart/60000',
      `netsh.exe advfirewall firewall delete rule name=${FIREWALL_RULE}`,
      `netsh.exe advfirewall firewall add rule name=${FIREWALL_RULE} dir=in action=allow protocol=UDP localport=47811 program=${node} profile=any enable=yes`,
      'sc.exe start payconnect',
    ]);
    expect(sys.state).toBe('RUNNING');
    expect(existsSync(node)).toBe(true);
    expect(readFileSync(path.join(layout.dataRoot, 'data', 'registration-code'), 'utf8').trim()).toBe(
      'ABCD-1234',
    );
    const conf = readFileSync(path.join(layout.installDir, 'payconnect-service.conf'), 'utf8');
    expect(conf).not.toContain('ABCD-1234');
    expect(conf.split('\r\n')).toEqual(
      expect.arrayContaining([
        'arg=--manifest',
        `arg=${path.join(layout.installDir, 'app', 'manifests', 'demo.yaml')}`,
        'arg=--registration-code-file',
        `arg=${path.join(layout.dataRoot, 'data', 'registration-code')}`,
        'log-max-bytes=10485760',
        'log-keep=5',
      ]),
    );
  });

  it('an upgrade stops the service first, keeps the data and the service, and starts it again', async () => {
    await installService(layout, options({ registrationCode: 'ABCD-1234' }), sys, say);
    writeFileSync(path.join(layout.dataRoot, 'data', 'journal.db'), 'orders');
    sys.calls = [];
    await installService(layout, options(), sys, say);
    expect(sys.calls.indexOf('sc.exe stop payconnect')).toBe(1);
    expect(sys.calls.some((c) => c.startsWith('sc.exe create'))).toBe(false);
    expect(sys.calls.some((c) => c.startsWith('icacls.exe'))).toBe(false);
    expect(readFileSync(path.join(layout.dataRoot, 'data', 'journal.db'), 'utf8')).toBe('orders');
    expect(sys.state).toBe('RUNNING');
  });

  it('a bad manifest fails before anything is touched, naming the step', async () => {
    sys.state = 'RUNNING';
    const err = await installService(layout, options({ manifest: 'no-such-register' }), sys, say).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(ServiceStepError);
    expect(err.message).toMatch(
      /^validate the manifest failed: there is no manifest .*no-such-register\.yaml\. Give a name/,
    );
    expect(sys.calls).toEqual([]);
    expect(sys.state).toBe('RUNNING');
  });

  it('a firewall that refuses the rule fails the install, naming the step and the port', async () => {
    sys.failing.set('netsh.exe advfirewall firewall add', {
      code: 1,
      out: 'The service has not been started.',
    });
    const err = await installService(layout, options(), sys, say).catch((e) => e);
    expect(err.message).toBe(
      'open the firewall failed: netsh advfirewall: The service has not been started.. Is the Windows Firewall service running? Add an inbound rule for UDP 47811 by hand, or run this again',
    );
  });

  it('uninstall deletes the service, the rule by its name and the program files, keeping data', async () => {
    await installService(layout, options(), sys, say);
    sys.calls = [];
    await uninstallService(layout, { removeData: false }, sys, say);
    expect(sys.calls.filter((c) => !c.startsWith('sc.exe query') && !c.startsWith('schtasks'))).toEqual([
      'sc.exe stop payconnect',
      'sc.exe delete payconnect',
      `netsh.exe advfirewall firewall delete rule name=${FIREWALL_RULE}`,
    ]);
    expect(existsSync(layout.installDir)).toBe(false);
    expect(existsSync(path.join(layout.dataRoot, 'data'))).toBe(true);
    await uninstallService(layout, { removeData: true }, sys, say);
    expect(existsSync(layout.dataRoot)).toBe(false);
  });
});
