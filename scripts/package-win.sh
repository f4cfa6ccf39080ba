#!/usr/bin/env bash
# `npm run package:win`: the Windows install zip for register PCs, var/package/payconnect-win-x64.zip.
#
# Unzips to one folder, payconnect\, which install.ps1 copies to Program Files\payconnect:
#   node.exe                    Node.js 22 for Windows, pinned and checked (scripts/fetch-node-win.sh)
#   app\                        the package as npm would install it: package.json, bin\, dist\ (built here),
#                               manifests\ and the production node_modules for win32-x64
#   hook\                       payconnect-x64.dll, payconnect-x86.dll (MinGW, native/) and payconnect.h
#   app\native\build\windows\   sdk-bridge-x64.exe, sdk-bridge-x86.exe: the host-sdk adapter's bridges
#   payconnect.cmd              runs node.exe with the app: `payconnect.cmd plugin --help`
#   payconnect-service.exe      the Windows service wrapper install.ps1 registers as service "payconnect"
#                               (native/service/payconnect_service.c); it runs node.exe with the app
#   install.ps1, uninstall.ps1, README-windows.txt   (packaging/)
#
# The app is dist/ plus a pruned copy of node_modules, not a bundle: esbuild is not a dependency here, and
# the native addons (serialport, koffi) must stay loadable files anyway. Nothing is built on the target:
#   - better-sqlite3 is left out (a Linux addon; it is optional): the journals run on node:sqlite, and
#     payconnect.cmd sets PAYCONNECT_SQLITE=node so a Node without it says so instead of half-working;
#   - serialport keeps only its win32-x64 prebuild (and no build\ folder, which node-gyp-build would prefer);
#   - koffi's Linux binary package is swapped for @koromix/koffi-win32-x64 at the version and integrity
#     package-lock.json pins (npm pack: it is marked os=win32 and cannot be installed here);
#   - a check at the end refuses the zip if any ELF file or .node addon other than win32-x64 is left.
#
# Needs: npm, make and Debian's MinGW-w64 (the DLLs), zip. Prints the zip's path and size.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s.%N)

OUT_DIR=var/package
ZIP=$OUT_DIR/payconnect-win-x64.zip
STAGE=$OUT_DIR/stage
ROOT=$STAGE/payconnect
APP=$ROOT/app

command -v zip >/dev/null || { echo "package-win: zip not found (apt-get install -y zip)" >&2; exit 1; }

npm run --silent build
make -s -C native windows sdk-windows service
node_exe=$(bash scripts/fetch-node-win.sh)

rm -rf "$STAGE" "$ZIP"
mkdir -p "$APP" "$ROOT/hook"

cp "$node_exe" "$ROOT/node.exe"
cp package.json "$APP/"
cp -r bin dist manifests "$APP/"
cp native/build/windows/payconnect-x64.dll native/build/windows/payconnect-x86.dll \
  native/include/payconnect.h "$ROOT/hook/"
# The host-sdk adapter's bridges for vendor SDK DLLs, where the adapter looks by default
# (app\native\build\windows\sdk-bridge-x86.exe for a 32-bit SDK; docs/adapters/host-sdk.md).
mkdir -p "$APP/native/build/windows"
cp native/build/windows/sdk-bridge-x64.exe native/build/windows/sdk-bridge-x86.exe "$APP/native/build/windows/"
cp native/build/windows/payconnect-service.exe "$ROOT/"
cp packaging/payconnect.cmd packaging/install.ps1 packaging/uninstall.ps1 packaging/README-windows.txt "$ROOT/"

# Production dependencies, as npm resolved them (nested copies included), without optional ones
# (better-sqlite3). Paths are copied with their node_modules/ prefix so the tree keeps its shape.
npm ls --omit=dev --omit=optional --all --parseable 2>/dev/null |
  sed -n "s|^$(pwd)/||p" | grep '^node_modules/' | sort -u |
  while read -r dep; do
    [ -e "$APP/$dep" ] || cp -r --parents "$dep" "$APP/"
  done
nm=$APP/node_modules
rm -rf "$nm/better-sqlite3" "$nm/.bin" "$nm"/@koromix/koffi-*
# serialport's addon: the win32-x64 prebuild only; no Linux build, no sources.
bindings=$nm/@serialport/bindings-cpp
find "$bindings/prebuilds" -mindepth 1 -maxdepth 1 ! -name win32-x64 -exec rm -rf {} +
rm -rf "$bindings/build" "$bindings/src" "$bindings/binding.gyp"
# What Node never loads at run time: type declarations, source maps, TypeScript sources, the packages'
# read-me and change logs (licences stay), @types/* (declarations only), and rxjs's ES-module builds
# (its package.json sends Node's require to dist/cjs). About half of the files: the install copies the rest
# (a reseller's install and upgrade take half the time; test/windows/ checks the app still runs).
find "$nm" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' \
  -o -name '*.markdown' -o -iname 'readme' -o -iname 'readme.*' -o -iname 'changelog*' -o -iname 'history.md' \) \
  ! -iname 'licen[cs]e*' -delete
rm -rf "$nm/@types" "$nm/rxjs/src" "$nm/rxjs/dist/esm" "$nm/rxjs/dist/esm5" "$nm/rxjs/dist/bundles" "$nm/rxjs/dist/types"
find "$nm" -type d -empty -delete

# koffi's binary for Windows x64, pinned by package-lock.json.
koffi_version=$(node -p 'require("./package-lock.json").packages["node_modules/@koromix/koffi-win32-x64"].version')
koffi_integrity=$(node -p 'require("./package-lock.json").packages["node_modules/@koromix/koffi-win32-x64"].integrity')
# Kept in var/package/cache/ once checked, so a second build needs no registry.
sha512() {
  node -e 'const c = require("node:crypto").createHash("sha512");
c.update(require("node:fs").readFileSync(process.argv[1]));
console.log("sha512-" + c.digest("base64"));' "$1"
}
mkdir -p "$OUT_DIR/cache"
tgz=$OUT_DIR/cache/koromix-koffi-win32-x64-$koffi_version.tgz
if ! [ -f "$tgz" ] || [ "$(sha512 "$tgz")" != "$koffi_integrity" ]; then
  npm pack "@koromix/koffi-win32-x64@$koffi_version" --pack-destination "$OUT_DIR/cache" --silent \
    --no-audit --no-fund >/dev/null
fi
got=$(sha512 "$tgz")
if [ "$got" != "$koffi_integrity" ]; then
  rm -f "$tgz"
  echo "package-win: @koromix/koffi-win32-x64@$koffi_version has integrity $got, package-lock.json says $koffi_integrity" >&2
  exit 1
fi
mkdir -p "$nm/@koromix/koffi-win32-x64"
tar -xzf "$tgz" -C "$nm/@koromix/koffi-win32-x64" --strip-components=1

# Nothing for Linux, nothing to build: every addon is a win32-x64 one, no ELF file anywhere.
bad=$(find "$ROOT" -type f \( -name '*.node' ! -path '*win32-x64*' \) -print)
elf=$(node -e 'const fs = require("node:fs"), path = require("node:path");
for (const f of fs.readdirSync(process.argv[1], { recursive: true })) {
  const p = path.join(process.argv[1], f);
  if (!fs.statSync(p).isFile()) continue;
  const b = Buffer.alloc(4), fd = fs.openSync(p, "r");
  fs.readSync(fd, b, 0, 4, 0);
  fs.closeSync(fd);
  if (b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) console.log(p);
}' "$ROOT")
if [ -n "$bad$elf" ]; then
  echo "package-win: files for another platform in the package:" >&2
  printf '%s\n' $bad $elf >&2
  exit 1
fi

(cd "$STAGE" && zip -q -r -X "$OLDPWD/$ZIP" payconnect)
rm -rf "$STAGE"
size=$(stat -c %s "$ZIP")
seconds=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $started }")
echo "package-win: $ZIP, $((size / 1024)) KiB, built in ${seconds} s" >&2
echo "$ZIP"
