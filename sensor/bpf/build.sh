#!/usr/bin/env bash
# Builds trawl's BPF object from its C source (sensor/bpf/process.bpf.o).
#
# The object is committed beside the source, so building trawl needs no clang;
# after changing process.bpf.c or vmlinux_min.h run this script and commit the
# new object. `.ci/run` runs `build.sh --check`, which rebuilds into a
# temporary file and fails when the committed object differs (stale).
#
# Needs Debian's clang (14), llvm (llvm-strip) and libbpf-dev (bpf/*.h). The
# flags make the object a function of the sources alone: no absolute paths
# (-fdebug-compilation-dir, -fdebug-prefix-map), DWARF stripped (the BTF and
# BTF.ext sections that CO-RE needs stay).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/process.bpf.o"
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  out="$(mktemp --suffix=.bpf.o)"
  trap 'rm -f "$out"' EXIT
fi
cd "$here"
clang -O2 -g -target bpf -D__TARGET_ARCH_x86 \
  -fdebug-compilation-dir=. -fdebug-prefix-map="$here"=. \
  -Wall -Werror -I. -c process.bpf.c -o "$out"
llvm-strip -g "$out"
if [ "$check" = 1 ]; then
  if ! cmp -s "$out" "$here/process.bpf.o"; then
    echo "sensor/bpf/process.bpf.o is stale: run sensor/bpf/build.sh and commit the object" >&2
    exit 1
  fi
  echo "sensor/bpf/process.bpf.o is up to date with its sources"
fi
