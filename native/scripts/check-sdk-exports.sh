#!/bin/sh
# Checks the Windows builds of the host-sdk parts in a folder (native/build/windows): the fake host SDK
# DLLs export exactly its five functions under their plain names (a 32-bit __stdcall DLL whose names came
# out decorated, GetCurrentOrder@12, is what a vendor's looks like without a .def file: the adapter's
# manifests name plain symbols), and every file is of its width and needs nothing beyond what every Windows
# has (KERNEL32, msvcrt, WS2_32). Reads the PE headers with objdump -p. Exits 1 naming what is wrong.
#
#   sh native/scripts/check-sdk-exports.sh native/build/windows
set -eu
dir=${1:?usage: check-sdk-exports.sh FOLDER}
expected="FakeSdk_LastResult
FakeSdk_PushOrder
FakeSdk_SetDir
GetCurrentOrder
SetPayResult"
status=0
for f in fakesdk-x64.dll fakesdk-x86.dll sdk-bridge-x64.exe sdk-bridge-x86.exe; do
  file="$dir/$f"
  if [ ! -f "$file" ]; then
    echo "check-sdk-exports: $file does not exist (make -C native sdk-windows builds it)" >&2
    status=1
    continue
  fi
  table=$(objdump -p "$file")
  format=$(printf '%s\n' "$table" | sed -n 's/.*file format \(.*\)$/\1/p' | head -1)
  case "$f" in
    *-x86.*) want=pei-i386 ;;
    *) want=pei-x86-64 ;;
  esac
  imports=$(printf '%s\n' "$table" | sed -n 's/^[[:space:]]*DLL Name: *\(.*\)$/\1/p' | sort -u)
  foreign=$(printf '%s\n' "$imports" | grep -viE '^(kernel32|msvcrt|ws2_32)\.dll$' || true)
  problems=""
  if [ "$format" != "$want" ]; then problems="$problems
  is $format; $f must be $want"; fi
  if [ -n "$foreign" ]; then problems="$problems
  needs $(echo $foreign) beside it (link statically)"; fi
  case "$f" in
    *.dll)
      actual=$(printf '%s\n' "$table" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' |
        sed -n 's/^[[:space:]]*\[[[:space:]]*[0-9]*\][[:space:]]*\(.*\)$/\1/p' | sort)
      if [ "$actual" != "$expected" ]; then problems="$problems
  exports $(echo $actual); expected $(echo $expected)"; fi
      ;;
  esac
  if [ -n "$problems" ]; then
    echo "check-sdk-exports: $file is wrong:$problems" >&2
    status=1
  else
    echo "check-sdk-exports: $file ($format): imports $(echo $imports)"
  fi
done
exit $status
