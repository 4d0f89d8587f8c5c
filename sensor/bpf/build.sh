#!/usr/bin/env bash
# Builds trawl's BPF object from its C source (sensor/bpf/process.bpf.o).
#
# The object is committed beside the source, so building trawl needs no clang;
# after changing process.bpf.c or vmlinux_min.h run this script and commit the
# new object. `.ci/run` runs `build.sh --check`, which rebuilds into a
# temporary file and fails when the committed object differs (stale), and
# (where the kernel exposes BTF) also compiles the program against the
# running kernel's full vmlinux.h from bpftool, which fails if a kernel field
# declared in vmlinux_min.h does not exist there.
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
  if [ -r /sys/kernel/btf/vmlinux ]; then
    full="$(mktemp -d)"
    trap 'rm -f "$out"; rm -rf "$full"' EXIT
    "$(command -v bpftool || echo /usr/sbin/bpftool)" btf dump file /sys/kernel/btf/vmlinux format c >"$full/vmlinux.h"
    clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -DTRAWL_FULL_VMLINUX -I"$full" -I. \
      -Wall -Werror -c process.bpf.c -o "$full/process.bpf.o"
    echo "process.bpf.c compiles against this kernel's vmlinux.h ($(uname -r))"
  else
    echo "(no /sys/kernel/btf/vmlinux: kernel type check skipped)"
  fi
fi
