import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { lanKeyToJson } from '../lan/lan-keyring';
import { Command, intOption, parse } from './args';

export const lanKeygen: Command = {
  usage: `payconnect lan keygen --out FILE [--id N] [--version N]

Writes a new random 32-byte store LAN key as JSON {id, version, key}, readable only by its owner. Normally
the payment server hands each registered device its store's key; this is for bench tests and the LAN tools.`,
  async run(argv) {
    const { values } = parse(argv, {
      out: { type: 'string' },
      id: { type: 'string' },
      version: { type: 'string' },
    });
    const key = {
      id: intOption(values.id as string | undefined, 'id', randomBytes(4).readUInt32BE(0), 0, 0xffffffff),
      version: intOption(values.version as string | undefined, 'version', 1),
      key: randomBytes(32),
    };
    const json = JSON.stringify(lanKeyToJson(key)) + '\n';
    if (values.out) writeFileSync(values.out as string, json, { mode: 0o600 });
    else process.stdout.write(json);
    return 0;
  },
};
