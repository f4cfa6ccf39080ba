/** `payconnect service install|uninstall` (Windows): placeholder until the install logic moves here. */
import { Command } from './args';

export const serviceInstall: Command = {
  usage: 'payconnect service install',
  async run() {
    process.stderr.write('payconnect service install: not built yet\n');
    return 1;
  },
};

export const serviceUninstall: Command = {
  usage: 'payconnect service uninstall',
  async run() {
    process.stderr.write('payconnect service uninstall: not built yet\n');
    return 1;
  },
};
