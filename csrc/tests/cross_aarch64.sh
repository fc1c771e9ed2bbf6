#!/bin/sh
# Builds the C kernels and the thread pool for aarch64 and runs their C tests
# under qemu-user: the portable path as an ARM machine runs it. A check by
# hand, not part of CI (it needs Debian's gcc-aarch64-linux-gnu and
# qemu-user: apt-get install gcc-aarch64-linux-gnu qemu-user).
#
#   sh csrc/tests/cross_aarch64.sh          # from the repository root
#
# Known: the fork checks of test_parallel fail under qemu-user 7.2 with
# "cpu_exec: assertion failed: (cpu == current_cpu)": qemu-user's own
# limitation (any program that forks while another thread runs trips it).
set -eu
out=${TMPDIR:-/tmp}/skipblocks-aarch64
mkdir -p "$out"
cc=aarch64-linux-gnu-gcc
# setup.py's warning set (it allows unused parameters), as errors
flags="-O3 -std=c99 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror -fno-math-errno -D_GNU_SOURCE -Icsrc/include -Icsrc/kernels"
# the operator programs (every test_*.c but the pool's and the harness),
# each with the kernels, the operator tier when there is one, the pool and
# the harness -- as tests/ops/test_c_kernels.py builds them
lib="csrc/kernels/*.c csrc/runtime/parallel.c csrc/tests/test_harness.c"
if ls csrc/ops/*.c >/dev/null 2>&1; then lib="$lib csrc/ops/*.c"; fi
programs=""
for src in csrc/tests/test_*.c; do
    name=$(basename "$src" .c)
    case $name in test_parallel|test_harness) continue ;; esac
    # shellcheck disable=SC2086 # $lib holds globs, expanded on purpose
    $cc $flags "$src" $lib -o "$out/$name" -lm -pthread
    programs="$programs $name"
done
$cc $flags csrc/tests/test_parallel.c csrc/runtime/parallel.c -o "$out/test_parallel" -pthread
export SB_TEST_QUICK=1
for name in $programs; do
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/$name"
done
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/test_parallel" || \
    echo "test_parallel failed: see the note above on fork under qemu-user"
