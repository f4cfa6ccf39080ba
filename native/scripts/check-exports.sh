#!/bin/sh
# Checks that each payconnect DLL exports every function of payconnect.h under its plain C name, and
# nothing else: a 32-bit DLL whose names came out decorated (_pc_open, pc_open@8 from __stdcall) or a
# missing export would load in a register and then fail at its first call. Reads the export table with
# objdump -p (binutils reads PE files of both widths). Exits 1 naming what is wrong.
#
#   sh native/scripts/check-exports.sh build/windows/payconnect-x64.dll build/windows/payconnect-x86.dll
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
header="$here/include/payconnect.h"
# The functions the header declares: every "PC_API <type> PC_CALL name(".
expected=$(sed -n 's/^PC_API .*PC_CALL \([a-z_]*\)(.*/\1/p' "$header" | sort)
if [ -z "$expected" ]; then
  echo "check-exports: no PC_API functions found in $header" >&2
  exit 1
fi
objdump=objdump
status=0
for dll in "$@"; do
  if [ ! -f "$dll" ]; then
    echo "check-exports: $dll does not exist (make -C native windows builds it)" >&2
    status=1
    continue
  fi
  # The export table: after "[Ordinal/Name Pointer] Table", lines like "\t[   0] pc_cancel".
  table=$($objdump -p "$dll")
  actual=$(printf '%s\n' "$table" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' |
    sed -n 's/^[[:space:]]*\[[[:space:]]*[0-9]*\][[:space:]]*\(.*\)$/\1/p' | sort)
  format=$(printf '%s\n' "$table" | sed -n 's/.*file format \(.*\)$/\1/p' | head -1)
  case "$dll" in
    *-x86.dll) want=pei-i386 ;;
    *-x64.dll) want=pei-x86-64 ;;
    *) want=$format ;;
  esac
  # Only what every Windows has: no MinGW runtime DLL (libgcc_s, libwinpthread) to ship beside it.
  imports=$(printf '%s\n' "$table" | sed -n 's/^[[:space:]]*DLL Name: *\(.*\)$/\1/p' | sort -u)
  foreign=$(printf '%s\n' "$imports" | grep -viE '^(kernel32|msvcrt|ws2_32)\.dll$' || true)
  missing=$(printf '%s\n' "$expected" | grep -vxF -e "$actual" || true)
  extra=$(printf '%s\n' "$actual" | grep -vxF -e "$expected" || true)
  if [ -n "$missing" ] || [ -n "$extra" ] || [ "$format" != "$want" ] || [ -n "$foreign" ]; then
    echo "check-exports: $dll ($format) is wrong:" >&2
    if [ -n "$missing" ]; then printf '  missing (or decorated): %s\n' $missing >&2; fi
    if [ -n "$extra" ]; then printf '  not in payconnect.h: %s\n' $extra >&2; fi
    if [ "$format" != "$want" ]; then printf '  is %s; a DLL named %s must be %s\n' "$format" "${dll##*/}" "$want" >&2; fi
    if [ -n "$foreign" ]; then printf '  needs %s beside it (link statically)\n' $foreign >&2; fi
    status=1
  else
    echo "check-exports: $dll ($format): $(printf '%s\n' "$actual" | wc -l) exports, undecorated; imports $(echo $imports)"
  fi
done
exit $status
