#!/usr/bin/env node
// The `payconnect` command. It runs the compiled code in dist/, which `npm install` builds (the
// package's `prepare` script); from a checkout without dist/, say how to get it.
'use strict';
let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main')) {
    process.stderr.write(
      'payconnect is not built yet: run `npm install` (or `npm run build`) in the payconnect folder.\n',
    );
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`payconnect: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
