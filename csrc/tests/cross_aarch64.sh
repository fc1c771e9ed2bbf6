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
flags="-O3 -std=c99 -Wall -Wextra -Werror -fno-math-errno -D_GNU_SOURCE -Icsrc/include -Icsrc/kernels"
$cc $flags csrc/tests/test_kernels.c csrc/kernels/*.c csrc/runtime/parallel.c \
    -o "$out/test_kernels" -lm -pthread
$cc $flags csrc/tests/test_parallel.c csrc/runtime/parallel.c -o "$out/test_parallel" -pthread
export SB_TEST_QUICK=1
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/test_kernels"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/test_parallel" || \
    echo "test_parallel failed: see the note above on fork under qemu-user"
