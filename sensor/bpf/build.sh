#!/usr/bin/env bash
# Builds trawl's BPF object from its C source (sensor/bpf/process.bpf.o).
#
# The object is committed beside the source, so building trawl needs no clang;
# after changing process.bpf.c or vmlinux_min.h run this script and commit the
# new object together with process.bpf.o.stamp, which records the sources'
# SHA-256 and the toolchain (clang, libbpf headers) the object was built with.
#
# `.ci/run` runs `build.sh --check`, which rebuilds into a temporary file and
# fails when the committed object is stale:
#   - the sources' hash differs from the stamp's (on any toolchain);
#   - or, with the stamp's toolchain, the rebuilt object differs byte for
#     byte. Another clang emits other (equally valid) code, so on another
#     toolchain the byte comparison is skipped and said so; the source must
#     still compile there with -Werror.
# Where the kernel exposes BTF, it also compiles the program against the
# running kernel's full vmlinux.h from bpftool, which fails if a kernel field
# declared in vmlinux_min.h does not exist there.
#
# Needs Debian's clang, llvm (llvm-strip) and libbpf-dev (bpf/*.h); the
# committed object comes from Debian 12's clang 14. The flags make the object
# a function of the sources and the toolchain alone: no absolute paths
# (-fdebug-compilation-dir, -fdebug-prefix-map), DWARF stripped (the BTF and
# BTF.ext sections that CO-RE needs stay).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/process.bpf.o"
stamp="$here/process.bpf.o.stamp"
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  out="$(mktemp --suffix=.bpf.o)"
  trap 'rm -f "$out"' EXIT
fi
cd "$here"
flags=(-O2 -g -target bpf -D__TARGET_ARCH_x86 -fdebug-compilation-dir=. -Wall -Werror -I.)
clang "${flags[@]}" -fdebug-prefix-map="$here"=. -c process.bpf.c -o "$out"
llvm-strip -g "$out"

# What the object is a function of.
sources="$(cat process.bpf.c vmlinux_min.h <(printf '%s\n' "${flags[@]}") | sha256sum | cut -d' ' -f1)"
libbpf="$(awk '/define LIBBPF_(MAJOR|MINOR)_VERSION/ {v = v (v ? "." : "") $3} END {print v}' \
  /usr/include/bpf/libbpf_version.h 2>/dev/null || true)"
toolchain="$(clang --version | head -n 1); libbpf ${libbpf:-unknown}"

if [ "$check" = 0 ]; then
  printf '# Written by build.sh with process.bpf.o; read by build.sh --check.\nsources %s\ntoolchain %s\n' \
    "$sources" "$toolchain" >"$stamp"
  echo "built $out with $toolchain"
  exit 0
fi

stale() {
  echo "sensor/bpf/process.bpf.o is stale ($1): run sensor/bpf/build.sh and commit the object and its stamp" >&2
  exit 1
}
[ -r "$stamp" ] || stale "no process.bpf.o.stamp"
[ "$(sed -n 's/^sources //p' "$stamp")" = "$sources" ] || stale "its sources changed since it was built"
built_with="$(sed -n 's/^toolchain //p' "$stamp")"
if [ "$built_with" = "$toolchain" ]; then
  cmp -s "$out" "$here/process.bpf.o" || stale "rebuilding it with the same toolchain gives another object"
  echo "sensor/bpf/process.bpf.o is up to date with its sources (rebuilt byte for byte with $toolchain)"
else
  echo "sensor/bpf/process.bpf.o is up to date with its sources (stamp); byte comparison skipped:" \
    "it was built with $built_with, this machine has $toolchain (the source compiles with it)"
fi
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
