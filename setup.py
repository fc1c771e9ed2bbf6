"""Build script for the C extension skipblocks._C.

Only portable flags (no CPU-specific -march option), so a wheel built here runs on any
x86-64 (and the same sources build on ARM). CPU-specific code paths are
chosen at run time, never at build time.

SKIPBLOCKS_SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer
(GCC or Clang), every finding fatal (-fno-sanitize-recover=all). Such a build only
loads in a process that starts with the ASan runtime: .ci/sanitize shows how
(LD_PRELOAD). skipblocks._C.build_info() reports the flags and the switch.
"""
import glob
import os
import sys

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def c_sources():
    parts = ("glue", "ops", "runtime", "kernels")
    return [f for part in parts for f in sorted(glob.glob(os.path.join("csrc", part, "*.c")))]


def c_depends():
    """Headers and included kernel bodies: listed so that an in-place rebuild
    (build_ext --inplace) recompiles when one of them changes, not only when
    a .c file does."""
    return sorted(glob.glob(os.path.join("csrc", "*", "*.h")) +
                  glob.glob(os.path.join("csrc", "*", "*.inc")))


if sys.platform == "win32":
    extra_compile_args = ["/O2"]
    extra_link_args = []
else:
    # -fno-math-errno lets sqrt/exp inline; no -ffast-math: NaN and inf must
    # propagate exactly as they do in torch.
    extra_compile_args = ["-O3", "-std=c99", "-fno-math-errno", "-pthread", "-Wall", "-Wextra",
                          "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    extra_link_args = ["-pthread"]

_sanitize = os.environ.get("SKIPBLOCKS_SANITIZE", "0")
if _sanitize not in ("", "0", "1"):
    sys.exit(f"SKIPBLOCKS_SANITIZE={_sanitize!r}: expected 1 (sanitizer build) or 0")
SANITIZE = _sanitize == "1"
if SANITIZE:
    if sys.platform == "win32":
        sys.exit("SKIPBLOCKS_SANITIZE=1: the sanitizer build needs GCC or Clang (not MSVC)")
    # -O1 -g: stack traces with lines; frame pointers for ASan's fast unwinder.
    # -fno-wrapv: CPython's own flags (sysconfig) carry -fwrapv, which defines
    # signed overflow and so silences UBSan's check of it; later flags win.
    # float-cast-overflow (a float to an integer it does not fit) is not part
    # of GCC's -fsanitize=undefined.
    sanitize_flags = ["-fsanitize=address,undefined,float-cast-overflow",
                      "-fno-sanitize-recover=all", "-fno-wrapv",
                      "-fno-omit-frame-pointer", "-g", "-O1"]
    extra_compile_args = [f for f in extra_compile_args if f != "-O3"] + sanitize_flags
    extra_link_args = extra_link_args + ["-fsanitize=address,undefined,float-cast-overflow"]

define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_23_API_VERSION"),
                 ("SB_SANITIZE", "1" if SANITIZE else "0")]
if sys.platform != "win32":
    # reported by skipblocks._C.build_info() (MSVC's command line would need
    # other quoting; there it says "unknown")
    define_macros.append(("SB_BUILD_FLAGS", '"' + " ".join(extra_compile_args) + '"'))

extension = Extension(
    "skipblocks._C",
    sources=c_sources(),
    depends=c_depends(),
    include_dirs=[os.path.join("csrc", "include"), numpy.get_include()],
    define_macros=define_macros,
    extra_compile_args=extra_compile_args,
    extra_link_args=extra_link_args,
)

setup(ext_modules=[extension])
